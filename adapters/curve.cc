// CURVE key files.
#include "adapters/curve.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace enoki::adapters {
namespace {

constexpr size_t kZ85KeyChars = 40;

}  // namespace

core::Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, mode);
  if (fd < 0) {
    return core::Status::IOError("cannot create " + path + ": " + std::strerror(errno) +
                                 (errno == EEXIST ? " (remove it first to make a new one)" : ""));
  }
  ::fchmod(fd, mode);  // whatever the umask says
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return core::Status::IOError("cannot write " + path + ": " + std::strerror(err));
  }
  return core::Status::Ok();
}

bool IsKeyText(const std::string& s) {
  if (s.size() != kZ85KeyChars) return false;
  uint8_t out[32];
  return zmq_z85_decode(out, s.c_str()) != nullptr;
}

core::Result<KeyPair> GenerateKeyPair() {
  char pub[kZ85KeyChars + 1];
  char sec[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return core::Status::Internal(std::string("cannot make a CURVE key pair: ") +
                                  zmq_strerror(zmq_errno()) +
                                  " (is libzmq built with CURVE support?)");
  }
  return KeyPair{pub, sec};
}

core::Status WriteKeyFiles(const std::string& base, const std::string& name, const KeyPair& keys) {
  std::string secret_path = base + ".key";
  std::string public_path = base + ".pub";
  std::error_code ec;
  if (std::filesystem::exists(public_path, ec)) {
    return core::Status::IOError("cannot create " + public_path +
                                 ": File exists (remove it first to make a new key)");
  }
  ENOKI_RETURN_IF_ERROR(
      WriteNewFile(secret_path,
                   "# enoki key pair '" + name +
                       "': keep this file secret (enoki node --key, a client's --identity)\n"
                       "public " +
                       keys.public_key + "\nsecret " + keys.secret_key + "\n",
                   0600));
  return WriteNewFile(public_path,
                      "# enoki public key '" + name + "': hand it to whoever must admit '" + name +
                          "'\npublic " + keys.public_key + "\n",
                      0644);
}

core::Result<KeyPair> ReadKeyPair(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return core::Status::IOError("cannot read key file " + path + ": " + std::strerror(errno));
  KeyPair keys;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream words(line);
    std::string field, value, extra;
    if (!(words >> field) || field[0] == '#') continue;
    std::string where = path + ":" + std::to_string(n) + ": ";
    if (!(words >> value) || (words >> extra)) {
      return core::Status::InvalidArgument(where + "expected 'public KEY' or 'secret KEY'");
    }
    if (field != "public" && field != "secret") {
      return core::Status::InvalidArgument(where + "unknown field '" + field +
                                           "' (expected public or secret)");
    }
    if (!IsKeyText(value)) {
      return core::Status::InvalidArgument(where + field + " key is not 40 characters of Z85");
    }
    std::string& slot = field == "public" ? keys.public_key : keys.secret_key;
    if (!slot.empty()) return core::Status::InvalidArgument(where + field + " is given twice");
    slot = value;
  }
  if (keys.public_key.empty()) {
    return core::Status::InvalidArgument(path + ": no 'public' line");
  }
  if (!keys.secret_key.empty()) {
    // A key pair that others may read is no secret.
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 0777);
      return core::Status::InvalidArgument(std::string("key file ") + path +
                                           " holds a secret key but its permissions " + mode +
                                           " let others read it: chmod 600 " + path);
    }
    char derived[kZ85KeyChars + 1];
    if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0 || keys.public_key != derived) {
      return core::Status::InvalidArgument(path + ": the public key is not the secret key's");
    }
  }
  return keys;
}

core::Result<std::string> ReadPublicKey(const std::string& text_or_path) {
  std::error_code ec;
  if (IsKeyText(text_or_path) && !std::filesystem::exists(text_or_path, ec)) return text_or_path;
  auto keys = ReadKeyPair(text_or_path);
  if (!keys.ok()) return keys.status();
  return keys->public_key;
}

core::Result<ClientKeys> LoadClientKeys(const std::string& key_file,
                                        const std::string& server_key) {
  std::string key = key_file;
  std::string server = server_key;
  if (key.empty()) {
    if (const char* env = std::getenv("ENOKI_IDENTITY")) key = env;
  }
  if (server.empty()) {
    if (const char* env = std::getenv("ENOKI_SERVER_KEY")) server = env;
  }
  if (key.empty() && server.empty()) return ClientKeys{};
  if (key.empty() || server.empty()) {
    return core::Status::InvalidArgument(
        key.empty() ? "a server key (--server-key, ENOKI_SERVER_KEY) needs this client's key pair "
                      "too (--identity, ENOKI_IDENTITY)"
                    : "a key pair (--identity, ENOKI_IDENTITY) needs the node's public key too "
                      "(--server-key, ENOKI_SERVER_KEY)");
  }
  ClientKeys out;
  auto own = ReadKeyPair(key);
  if (!own.ok()) return own.status();
  if (own->secret_key.empty()) {
    return core::Status::InvalidArgument(key +
                                         ": holds no 'secret' line (a .pub file? give the "
                                         ".key file)");
  }
  out.own = *own;
  auto pub = ReadPublicKey(server);
  if (!pub.ok()) return pub.status();
  out.server_public_key = *pub;
  return out;
}

void UseClientKeys(zmq::socket_t& socket, const ClientKeys& keys) {
  if (!keys.enabled()) return;
  socket.set(zmq::sockopt::curve_serverkey, keys.server_public_key);
  socket.set(zmq::sockopt::curve_publickey, keys.own.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.own.secret_key);
}

bool IsLoopbackHost(std::string host) {
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

bool IsLocalEndpoint(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string rest = endpoint.substr(6);
  return IsLoopbackHost(rest.substr(0, rest.rfind(':')));
}

}  // namespace enoki::adapters
