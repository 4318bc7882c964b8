// A non-blocking connect() bounded by poll().
#include "adapters/endpoint_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace enoki::adapters {
namespace {

// Connects `fd` to `addr` within `timeout`: 0, or the errno that refused it (ETIMEDOUT when
// nothing answered in time).
int ConnectWithin(int fd, const sockaddr* addr, socklen_t len, std::chrono::milliseconds timeout) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (::connect(fd, addr, len) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{fd, POLLOUT, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready <= 0) return ETIMEDOUT;
  int error = 0;
  socklen_t error_len = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len);
  return error;
}

ProbeResult Describe(int error, const std::string& where, std::chrono::milliseconds timeout) {
  switch (error) {
    case 0:
      return {true, "something listens at " + where};
    case ECONNREFUSED:
      return {false, "nothing listens at " + where + " (connection refused)"};
    case ENOENT:
      return {false, "nothing listens at " + where + " (no such socket file)"};
    case ETIMEDOUT:
      return {false, where + " accepted no connection within " + std::to_string(timeout.count()) +
                         " ms (a host that is down, or a firewall?)"};
    default:
      return {false, "cannot connect to " + where + ": " + std::strerror(error)};
  }
}

ProbeResult ProbeIpc(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return {false, "the path " + path + " is too long"};
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {false, std::string("socket: ") + std::strerror(errno)};
  int error = ConnectWithin(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr, timeout);
  ::close(fd);
  return Describe(error, path, timeout);
}

// A socket connected to HOST:PORT within `timeout` (non-blocking), or -1 with `*why` set.
int OpenTcp(const std::string& host_port, std::chrono::milliseconds timeout, std::string* why) {
  auto colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon);
  std::string port = host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    *why = "the host '" + host + "' is not known (" + ::gai_strerror(rc) + ")";
    return -1;
  }
  int error = EHOSTUNREACH;
  int connected = -1;
  for (addrinfo* a = found; a != nullptr && connected < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    error = ConnectWithin(fd, a->ai_addr, a->ai_addrlen, timeout);
    if (error == 0) {
      connected = fd;
    } else {
      ::close(fd);
    }
  }
  ::freeaddrinfo(found);
  if (connected < 0) *why = Describe(error, host_port, timeout).text;
  return connected;
}

ProbeResult ProbeTcp(const std::string& host_port, std::chrono::milliseconds timeout) {
  std::string why;
  int fd = OpenTcp(host_port, timeout, &why);
  if (fd < 0) return {false, why};
  ::close(fd);
  return Describe(0, host_port, timeout);
}

}  // namespace

ProbeResult ProbeEndpoint(const std::string& endpoint, std::chrono::milliseconds timeout) {
  if (endpoint.starts_with("ipc://")) return ProbeIpc(endpoint.substr(6), timeout);
  if (endpoint.starts_with("tcp://")) return ProbeTcp(endpoint.substr(6), timeout);
  return {false, ""};
}

int ConnectTcp(const std::string& endpoint, std::chrono::milliseconds timeout, std::string* why) {
  if (!endpoint.starts_with("tcp://")) {
    *why = endpoint + " is not a tcp:// endpoint";
    return -1;
  }
  int fd = OpenTcp(endpoint.substr(6), timeout, why);
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace enoki::adapters
