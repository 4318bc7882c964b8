// Endpoint syntax: the schemes a node speaks and what each needs.
#include "net/endpoint.h"

#include <charconv>

namespace enoki::net {
namespace {

// The longest ipc path: sockaddr_un's sun_path holds 108 bytes with the terminating zero.
constexpr size_t kMaxIpcPath = 107;

}  // namespace

core::Result<std::string> ParseEndpoint(std::string_view text, const std::string& what,
                                        EndpointUse use) {
  std::string given(text);
  std::string prefix = what.empty() ? "" : what + ": ";
  auto wrong = [&](const std::string& why) {
    return core::Status::InvalidArgument(prefix + "'" + given + "': " + why);
  };
  if (text.empty()) return wrong("empty: give tcp://HOST:PORT or ipc://PATH");
  std::string full = given;
  auto scheme_end = full.find("://");
  if (scheme_end == std::string::npos) {
    if (full.find(':') == std::string::npos) {
      return wrong("not an endpoint: give tcp://HOST:PORT, HOST:PORT or ipc://PATH");
    }
    full = "tcp://" + given;
    scheme_end = 3;
  }
  std::string_view scheme = std::string_view(full).substr(0, scheme_end);
  std::string_view rest = std::string_view(full).substr(scheme_end + 3);
  if (scheme == "ipc") {
    if (rest.empty()) return wrong("no path after ipc://");
    if (rest.size() > kMaxIpcPath) {
      return wrong("the path is " + std::to_string(rest.size()) + " bytes, over the " +
                   std::to_string(kMaxIpcPath) +
                   " a Unix socket's address holds: use a shorter "
                   "one");
    }
    return full;
  }
  if (scheme != "tcp") {
    return wrong("a node speaks tcp:// and ipc://, not " + std::string(scheme) +
                 "://; give tcp://HOST:PORT or ipc://PATH");
  }
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return wrong("no port: give tcp://HOST:PORT");
  std::string_view host = rest.substr(0, colon);
  std::string_view port = rest.substr(colon + 1);
  if (host.empty()) return wrong("no host before the port: give tcp://HOST:PORT");
  if (host.find(':') != std::string_view::npos &&
      !(host.size() > 2 && host.front() == '[' && host.back() == ']')) {
    return wrong("the host '" + std::string(host) +
                 "' has a ':': write an IPv6 address in brackets, tcp://[ADDRESS]:PORT");
  }
  if (host == "*" && use == EndpointUse::kConnect) {
    return wrong("'*' (every interface) is for listening: give the host to connect to");
  }
  int p = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  int lowest = use == EndpointUse::kListen ? 0 : 1;
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < lowest ||
      p > 65535) {
    return wrong("the port '" + std::string(port) + "' is not a number from " +
                 std::to_string(lowest) + " to 65535" +
                 (use == EndpointUse::kListen ? " (0: any free port)" : ""));
  }
  return full;
}

}  // namespace enoki::net
