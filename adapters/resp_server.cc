// The Redis front end: its listener and connections on the event loop, and its commands.
#include "adapters/resp_server.h"

#include <fnmatch.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>

#include <spdlog/spdlog.h>

#include "adapters/tls.h"
#include "enoki_version.h"
#include "node/version.h"

namespace enoki::adapters {

namespace {

// Commands a connection runs ahead of its replies, and output it holds for a client that does
// not read: beyond either, the connection is not read from until the client catches up.
constexpr size_t kMaxOwed = 1024;
constexpr size_t kMaxOutput = 4 << 20;
constexpr size_t kReadChunk = 64 << 10;
// Cursors of SCAN kept (the oldest is forgotten beyond): any connection may go on with one, as
// a client library's pool of connections does.
constexpr size_t kMaxCursors = 4096;
// How often SET ... XX tries again when the key changed between its read and its write.
constexpr int kXxAttempts = 8;

bool Is(std::string_view arg, std::string_view upper) {
  return arg.size() == upper.size() &&
         std::equal(arg.begin(), arg.end(), upper.begin(),
                    [](char a, char b) { return (a >= 'a' && a <= 'z' ? a - 32 : a) == b; });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string Reply(int protocol, const std::function<void(net::resp::Writer&)>& write) {
  std::string out;
  net::resp::Writer w(out, protocol);
  write(w);
  return out;
}

// Nil, as the connection's protocol writes it (Writer::Null).
std::string NullReply(int protocol) {
  return Reply(protocol, [](net::resp::Writer& w) { w.Null(); });
}

std::string ErrorReply(std::string_view error) {
  return Reply(2, [&](net::resp::Writer& w) { w.Error(error); });
}

// A node's answer that is not OK, in Redis's form: its code word, then the node's sentence.
std::string ErrorReply(const proto::Response& r) {
  switch (r.code()) {
    case proto::PERMISSION_DENIED:
      return ErrorReply("NOPERM " + r.error());
    default:
      return ErrorReply("ERR " + r.error());
  }
}

std::string WrongArity(std::string_view command) {
  return ErrorReply("ERR wrong number of arguments for '" + Lower(command) + "' command");
}

const std::string kOk = "+OK\r\n";

}  // namespace

struct RespServer::Connection {
  ~Connection() {
    if (ssl != nullptr) SSL_free(ssl);
  }
  uint64_t id = 0;
  int fd = -1;
  SSL* ssl = nullptr;             // TLS over fd (tls_), or none
  bool read_wants_write = false;  // TLS: a read goes on once the socket takes output
  bool write_wants_read = false;  // TLS: a write goes on once the socket has input
  EventLoop::WatchId watch = 0;
  short events = 0;
  std::string in;  // received and not yet run, from in_pos
  size_t in_pos = 0;
  std::string out;  // replies in order, not yet written, from out_pos
  size_t out_pos = 0;
  std::deque<Owed> owed;  // replies not yet in `out`, the first for command first_seq
  uint64_t first_seq = 0;
  uint64_t next_seq = 0;
  int protocol = 2;
  std::string keygroup;
  std::string user;                        // whom it authenticated as (authenticate)
  std::optional<Permissions> permissions;  // none: not authenticated (authenticate)
  bool closing = false;                    // closed once its replies are written
  bool queued = false;                     // in to_write_
};

RespServer::RespServer(EventLoop& loop, node::Node& node, RespServerOptions options)
    : loop_(loop),
      node_(node),
      options_(std::move(options)),
      read_buffer_(std::make_unique_for_overwrite<char[]>(kReadChunk)) {
  // Up to a MiB over the node's value limit, a value is refused by the node, in its words
  // (TOO_LARGE); beyond, the connection is closed, as Redis closes it beyond its
  // proto-max-bulk-len.
  limits_.max_bulk_bytes = options_.max_value_bytes + (1 << 20);
}

RespServer::~RespServer() {
  if (accept_paused_) loop_.Cancel(accept_retry_);
  for (auto& [id, c] : connections_) {
    loop_.Unwatch(c->watch);
    ::close(c->fd);
  }
  connections_.clear();
  if (listen_watch_ != 0) loop_.Unwatch(listen_watch_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (tls_ != nullptr) SSL_CTX_free(tls_);
}

core::Status RespServer::Start() {
  if (!options_.cert_file.empty()) {
    auto ctx = LoadTls(options_.cert_file, options_.key_file);
    if (!ctx.ok()) return ctx.status();
    tls_ = *ctx;
    // OpenSSL writes with write(2), which raises SIGPIPE on a connection its client closed: that
    // is an error of the connection's to handle, not a signal that ends the node.
    ::signal(SIGPIPE, SIG_IGN);
  }
  const std::string& address = options_.address;
  auto colon = address.rfind(':');
  std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
  std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  bool port_ok = !port.empty() && port.size() <= 5 &&
                 std::all_of(port.begin(), port.end(), ::isdigit) && std::stoi(port) <= 65535;
  if (host.empty() || !port_ok) {
    return core::Status::InvalidArgument("--redis '" + address +
                                         "' must look like HOST:PORT, e.g. 127.0.0.1:6379");
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host == "*" ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return core::Status::InvalidArgument("--redis '" + address + "': host '" + host +
                                         "': " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, ::freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::Status::IOError("socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 511) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return core::Status::Unavailable("cannot listen on --redis " + address + ": " + why);
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listen_fd_ = fd;
  listen_watch_ = loop_.WatchFd(fd, ZMQ_POLLIN, [this](short) { OnAccept(); });
  return core::Status::Ok();
}

void RespServer::SetAccess(const std::map<std::string, AccessEntry>& clients) {
  tokens_.clear();
  std::map<std::string, const Permissions*> by_name;
  for (const auto& [name, entry] : clients) {
    if (entry.token_digest.empty()) continue;
    tokens_[entry.token_digest] = {name, entry.permissions};
    by_name[name] = &tokens_[entry.token_digest].second;
  }
  for (auto& [id, c] : connections_) {
    if (!c->permissions) continue;
    auto it = by_name.find(c->user);
    c->permissions = it == by_name.end() ? Permissions{} : *it->second;
  }
}

void RespServer::OnAccept() {
  // A bounded number per round, so that a flood of connections does not starve the others.
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) {
        // None queued: those that waited for a descriptor have one.
        if (out_of_descriptors_since_) {
          spdlog::warn(
              "node {}: the Redis front end took the connections that waited (it could not take "
              "them for {} ms)",
              node_.id(),
              std::chrono::duration_cast<std::chrono::milliseconds>(loop_.Now() -
                                                                    *out_of_descriptors_since_)
                  .count());
          out_of_descriptors_since_.reset();
        }
        return;
      }
      if (ConnectionsOwnError(error)) continue;
      PauseAccepting(error);
      return;
    }
    if (connections_.size() >= options_.max_connections) {
      // Told so in plain text (a TLS client would not read it: closed only).
      static const char kFull[] = "-ERR max number of clients reached\r\n";
      if (tls_ == nullptr) (void)!::send(fd, kFull, sizeof kFull - 1, MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Connection>();
    if (tls_ != nullptr) {
      c->ssl = SSL_new(tls_);
      if (c->ssl == nullptr || SSL_set_fd(c->ssl, fd) != 1) {
        spdlog::warn("node {}: the Redis front end cannot start TLS on a connection: {}",
                     node_.id(), SslError());
        ::close(fd);
        continue;
      }
      SSL_set_accept_state(c->ssl);  // the handshake runs within the first reads and writes
    }
    c->id = next_id_++;
    c->fd = fd;
    c->keygroup = options_.keygroup;
    if (!options_.authenticate) c->permissions = Permissions{};
    uint64_t id = c->id;
    c->events = ZMQ_POLLIN;
    c->watch = loop_.WatchFd(fd, ZMQ_POLLIN, [this, id](short revents) { OnReady(id, revents); });
    connections_.emplace(id, std::move(c));
  }
}

void RespServer::OnReady(uint64_t id, short revents) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  bool read = (revents & (ZMQ_POLLIN | ZMQ_POLLERR)) != 0;
  bool write = (revents & ZMQ_POLLOUT) != 0;
  // TLS may need the other direction to go on (a handshake's message, a key update).
  read = read || (write && c.read_wants_write);
  write = write || (read && c.write_wants_read);
  if (write) {
    WriteTo(c);
    if (!connections_.contains(id)) return;
  }
  if (read) ReadFrom(c);
}

bool RespServer::InputFull(const Connection& c) const {
  return c.in.size() - c.in_pos >= limits_.max_bulk_bytes + kReadChunk;
}

bool RespServer::ReadTls(Connection& c) {
  c.read_wants_write = false;
  while (!c.closing) {
    if (InputFull(c) && SSL_pending(c.ssl) == 0) break;
    ERR_clear_error();
    int n = SSL_read(c.ssl, read_buffer_.get(), static_cast<int>(kReadChunk));
    if (n > 0) {
      c.in.append(read_buffer_.get(), static_cast<size_t>(n));
      continue;
    }
    switch (SSL_get_error(c.ssl, n)) {
      case SSL_ERROR_WANT_READ:
        return true;
      case SSL_ERROR_WANT_WRITE:
        c.read_wants_write = true;
        return true;
      case SSL_ERROR_ZERO_RETURN:  // the client ended TLS: answer what it sent, then close
        c.closing = true;
        return true;
      default:  // not TLS, a failed handshake, or the connection cut without ending TLS
        ERR_clear_error();
        return false;
    }
  }
  return true;
}

void RespServer::ReadFrom(Connection& c) {
  if (c.ssl != nullptr) {
    if (!ReadTls(c)) return Close(c.id);
  } else if (!c.closing && !InputFull(c)) {
    // Into a buffer that is not cleared first (a resize would zero 64 KiB per read).
    ssize_t n = ::recv(c.fd, read_buffer_.get(), kReadChunk, 0);
    if (n > 0) {
      c.in.append(read_buffer_.get(), static_cast<size_t>(n));
    } else if (n == 0) {
      c.closing = true;  // the client is done sending: answer what it sent, then close
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return Close(c.id);
    }
  }
  uint64_t id = c.id;
  std::vector<std::string_view> args;
  std::string error;
  while (c.in_pos < c.in.size() && c.owed.size() < kMaxOwed) {
    size_t used = 0;
    std::string_view pending(c.in.data() + c.in_pos, c.in.size() - c.in_pos);
    net::resp::Parsed parsed = net::resp::ParseCommand(pending, limits_, args, used, error);
    if (parsed == net::resp::Parsed::kIncomplete) break;
    uint64_t seq = c.next_seq++;
    c.owed.emplace_back();
    if (parsed == net::resp::Parsed::kError) {
      c.closing = true;
      c.in_pos = c.in.size();
      Finish(id, seq, ErrorReply("ERR " + error));
      break;
    }
    c.in_pos += used;
    if (!args.empty()) {
      ++commands_;
      Run(c, seq, args);
    } else {
      Finish(id, seq, "");  // an empty line: nothing to answer
    }
    if (!connections_.contains(id)) return;
  }
  if (c.in_pos == c.in.size()) {
    c.in.clear();
    c.in_pos = 0;
  } else if (c.in_pos > c.in.size() / 2) {
    c.in.erase(0, c.in_pos);
    c.in_pos = 0;
  }
  if (c.closing && c.owed.empty() && c.out_pos == c.out.size()) return Close(id);
  Watch(c);
}

void RespServer::Finish(uint64_t id, uint64_t seq, std::string bytes) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (seq == c.first_seq) {  // the usual case: in order
    c.out += bytes;
    c.owed.pop_front();
    ++c.first_seq;
  } else {
    Owed& r = c.owed[seq - c.first_seq];
    r.done = true;
    r.bytes = std::move(bytes);
  }
  while (!c.owed.empty() && c.owed.front().done) {
    c.out += c.owed.front().bytes;
    c.owed.pop_front();
    ++c.first_seq;
  }
  if (c.queued) return;
  c.queued = true;
  to_write_.push_back(id);
  if (!write_armed_) {
    write_armed_ = true;
    loop_.AtEndOfRound([this] { WriteAll(); });
  }
}

void RespServer::WriteAll() {
  write_armed_ = false;
  std::vector<uint64_t> ids;
  ids.swap(to_write_);
  for (uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    it->second->queued = false;
    WriteTo(*it->second);
  }
}

void RespServer::WriteTo(Connection& c) {
  c.write_wants_read = false;
  while (c.out_pos < c.out.size()) {
    const char* data = c.out.data() + c.out_pos;
    size_t size = c.out.size() - c.out_pos;
    if (c.ssl != nullptr) {
      ERR_clear_error();
      int n = SSL_write(c.ssl, data, static_cast<int>(std::min<size_t>(size, INT_MAX)));
      if (n > 0) {
        c.out_pos += static_cast<size_t>(n);
        continue;
      }
      int e = SSL_get_error(c.ssl, n);
      if (e == SSL_ERROR_WANT_WRITE) break;
      if (e == SSL_ERROR_WANT_READ) {
        c.write_wants_read = true;
        break;
      }
      ERR_clear_error();
      return Close(c.id);
    }
    ssize_t n = ::send(c.fd, data, size, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return Close(c.id);
    }
  }
  if (c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
    if (c.closing && c.owed.empty()) return Close(c.id);
    // Commands held back while too many replies were owed.
    if (c.in_pos < c.in.size() && c.owed.size() < kMaxOwed) return ReadFrom(c);
  } else if (c.out_pos > c.out.size() / 2) {
    // What a slow reader took, let go of: replies keep coming behind it.
    c.out.erase(0, c.out_pos);
    c.out_pos = 0;
  }
  Watch(c);
}

void RespServer::Watch(Connection& c) {
  short events = 0;
  if (!c.closing && c.owed.size() < kMaxOwed && c.out.size() - c.out_pos < kMaxOutput) {
    events |= ZMQ_POLLIN;
  }
  if (c.out_pos < c.out.size() || c.read_wants_write) events |= ZMQ_POLLOUT;
  if (c.write_wants_read) events |= ZMQ_POLLIN;
  if (events != c.events) {
    c.events = events;
    loop_.SetFdEvents(c.watch, events);
  }
}

bool RespServer::ConnectionsOwnError(int error) {
  // A connection its client aborted while it was queued, or a network error that accept(2)
  // passes on from the connection (accept(2), "Error handling").
  switch (error) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

void RespServer::PauseAccepting(int error) {
  // Out of descriptors (or memory): the connection stays queued and the listener readable, so it
  // is not watched until a connection of ours closes or 100 ms passed, instead of being polled in
  // vain every round. Said once until the queue is empty again, not at every try.
  if (!out_of_descriptors_since_) {
    out_of_descriptors_since_ = loop_.Now();
    spdlog::warn(
        "node {}: the Redis front end cannot take a connection ({}): connections wait in "
        "the listener's queue until it can",
        node_.id(), std::strerror(error));
  }
  loop_.SetFdEvents(listen_watch_, 0);
  accept_paused_ = true;
  accept_retry_ = loop_.Schedule(std::chrono::milliseconds(100), [this] { ResumeAccepting(); });
}

void RespServer::ResumeAccepting() {
  accept_paused_ = false;
  loop_.SetFdEvents(listen_watch_, ZMQ_POLLIN);
}

void RespServer::Close(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  // TLS ended politely when its client asked for the end or the replies are all out (one try,
  // without waiting for the client's answer).
  if (c.ssl != nullptr && c.closing && c.out_pos == c.out.size()) SSL_shutdown(c.ssl);
  ERR_clear_error();
  loop_.Unwatch(c.watch);
  ::close(c.fd);
  connections_.erase(it);
  if (accept_paused_) {  // a descriptor is free: a queued connection can have it
    loop_.Cancel(accept_retry_);
    ResumeAccepting();
  }
}

void RespServer::Serve(Connection& c, proto::Request request, node::Done then) {
  if (options_.authenticate) {
    core::Status st = Authorize(c.user, *c.permissions, request);
    if (!st.ok()) {
      proto::Response denied;
      denied.set_code(proto::PERMISSION_DENIED);
      denied.set_error(st.message());
      return then(std::move(denied));
    }
  }
  net::Caller caller;
  caller.name = c.user;
  node_.Serve(caller, std::move(request), std::move(then));
}

bool RespServer::KeyAbsent(const proto::Response& r, const std::string& keygroup) const {
  return r.code() == proto::NOT_FOUND && node_.HasKeygroup(keygroup);
}

bool RespServer::HasKeygroup(Connection& c, uint64_t seq) {
  if (!c.keygroup.empty()) return true;
  Finish(c.id, seq,
         ErrorReply("ERR no keygroup selected: SELECT one, or start the node with "
                    "--redis-keygroup"));
  return false;
}

void RespServer::Run(Connection& c, uint64_t seq, const Args& args) {
  std::string_view cmd = args[0];
  size_t n = args.size();
  uint64_t id = c.id;
  auto arity = [&](bool ok) {
    if (!ok) Finish(id, seq, WrongArity(cmd));
    return ok;
  };
  if (!c.permissions && !Is(cmd, "AUTH") && !Is(cmd, "HELLO") && !Is(cmd, "QUIT")) {
    return Finish(id, seq, ErrorReply("NOAUTH Authentication required."));
  }
  if (Is(cmd, "GET")) {
    if (arity(n == 2) && HasKeygroup(c, seq)) Get(c, seq, args, false);
  } else if (Is(cmd, "SET")) {
    if (arity(n >= 3) && HasKeygroup(c, seq)) Set(c, seq, args);
  } else if (Is(cmd, "MGET")) {
    if (arity(n >= 2) && HasKeygroup(c, seq)) MGet(c, seq, args);
  } else if (Is(cmd, "MSET")) {
    if (arity(n >= 3 && n % 2 == 1) && HasKeygroup(c, seq)) MSet(c, seq, args);
  } else if (Is(cmd, "DEL") || Is(cmd, "UNLINK")) {
    if (arity(n >= 2) && HasKeygroup(c, seq)) DelOrExists(c, seq, args, true);
  } else if (Is(cmd, "EXISTS")) {
    if (arity(n >= 2) && HasKeygroup(c, seq)) DelOrExists(c, seq, args, false);
  } else if (Is(cmd, "GETVERSION")) {
    if (arity(n == 2) && HasKeygroup(c, seq)) Get(c, seq, args, true);
  } else if (Is(cmd, "SCAN")) {
    if (arity(n >= 2) && HasKeygroup(c, seq)) Scan(c, seq, args);
  } else if (Is(cmd, "PING")) {
    if (!arity(n <= 2)) return;
    Finish(id, seq, n == 1 ? "+PONG\r\n" : Reply(c.protocol, [&](auto& w) { w.Bulk(args[1]); }));
  } else if (Is(cmd, "ECHO")) {
    if (arity(n == 2)) Finish(id, seq, Reply(c.protocol, [&](auto& w) { w.Bulk(args[1]); }));
  } else if (Is(cmd, "HELLO")) {
    Hello(c, seq, args);
  } else if (Is(cmd, "AUTH")) {
    if (!arity(n == 2 || n == 3)) return;
    std::string out;
    Auth(c, seq, n == 3 ? std::string(args[1]) : "", std::string(args[n - 1]), out);
    Finish(id, seq, out);
  } else if (Is(cmd, "SELECT")) {
    if (!arity(n == 2)) return;
    std::string name(args[1]);
    if (!node_.HasKeygroup(name)) {
      return Finish(id, seq,
                    ErrorReply("ERR keygroup '" + name +
                               "' does not exist (SELECT takes a "
                               "keygroup's name)"));
    }
    c.keygroup = std::move(name);
    Finish(id, seq, kOk);
  } else if (Is(cmd, "INFO")) {
    Info(c, seq);
  } else if (Is(cmd, "QUIT")) {
    c.closing = true;
    Finish(id, seq, kOk);
  } else if (Is(cmd, "CLIENT")) {
    // What client libraries send as they connect: their name and library, which are noted
    // nowhere; ID as Redis answers it.
    if (n >= 2 && (Is(args[1], "SETNAME") || Is(args[1], "SETINFO"))) {
      Finish(id, seq, kOk);
    } else if (n == 2 && Is(args[1], "ID")) {
      Finish(id, seq, ":" + std::to_string(id) + "\r\n");
    } else {
      Finish(id, seq, ErrorReply("ERR CLIENT: only SETNAME, SETINFO and ID are served"));
    }
  } else if (Is(cmd, "COMMAND")) {
    // Asked by redis-cli for its hints (COMMAND DOCS): nothing to describe.
    Finish(id, seq, Reply(c.protocol, [](net::resp::Writer& w) { w.Array(0); }));
  } else if (Is(cmd, "CONFIG")) {
    // Asked by redis-benchmark as it starts (CONFIG GET save, appendonly): no snapshots, and
    // every write logged before its answer, as an append-only file; nothing else is Redis's.
    if (n != 3 || !Is(args[1], "GET")) {
      return Finish(id, seq, ErrorReply("ERR CONFIG: only CONFIG GET is served"));
    }
    std::string_view value = Is(args[2], "SAVE") ? "" : Is(args[2], "APPENDONLY") ? "yes" : "-";
    Finish(id, seq, Reply(c.protocol, [&](net::resp::Writer& w) {
             w.Map(value == "-" ? 0 : 1);
             if (value != "-") {
               w.Bulk(Lower(args[2]));
               w.Bulk(value);
             }
           }));
  } else {
    std::string what = "ERR unknown command '" + std::string(cmd) + "', with args beginning with:";
    for (size_t i = 1; i < n && i < 4; ++i) what += " '" + std::string(args[i]) + "'";
    Finish(id, seq, ErrorReply(what));
  }
}

void RespServer::Get(Connection& c, uint64_t seq, const Args& args, bool with_version) {
  proto::Request request;
  auto* get = request.mutable_get();
  get->set_keygroup(c.keygroup);
  get->set_key(std::string(args[1]));
  int protocol = c.protocol;
  Serve(c, std::move(request),
        [this, id = c.id, seq, protocol, with_version, keygroup = c.keygroup](proto::Response&& r) {
          if (KeyAbsent(r, keygroup)) {
            return Finish(id, seq, NullReply(protocol));
          }
          if (r.code() != proto::OK) return Finish(id, seq, ErrorReply(r));
          Finish(id, seq, Reply(protocol, [&](net::resp::Writer& w) {
                   if (with_version) {
                     w.Array(2);
                     w.Bulk(r.get().value());
                     w.Bulk(node::Version::FromProto(r.get().version()).ToString());
                   } else {
                     w.Bulk(r.get().value());
                   }
                 }));
        });
}

void RespServer::Set(Connection& c, uint64_t seq, const Args& args) {
  bool nx = false;
  bool xx = false;
  std::optional<node::Version> if_version;
  for (size_t i = 3; i < args.size(); ++i) {
    std::string_view opt = args[i];
    if (Is(opt, "NX")) {
      nx = true;
    } else if (Is(opt, "XX")) {
      xx = true;
    } else if (Is(opt, "IFVERSION") && i + 1 < args.size()) {
      if_version = node::Version::Parse(args[++i]);
      if (!if_version) {
        return Finish(c.id, seq,
                      ErrorReply("ERR IFVERSION '" + std::string(args[i]) +
                                 "' is no version: GETVERSION shows one, e.g. "
                                 "1733300000000000.0@edge-1"));
      }
    } else if (Is(opt, "EX") || Is(opt, "PX") || Is(opt, "EXAT") || Is(opt, "PXAT") ||
               Is(opt, "KEEPTTL")) {
      return Finish(c.id, seq,
                    ErrorReply("ERR Enoki keeps no expiry times: EX, PX, EXAT, PXAT and KEEPTTL "
                               "are not served"));
    } else if (Is(opt, "GET")) {
      return Finish(c.id, seq, ErrorReply("ERR SET ... GET is not served: GET the key first"));
    } else {
      return Finish(c.id, seq, ErrorReply("ERR syntax error"));
    }
  }
  if (int(nx) + int(xx) + int(if_version.has_value()) > 1) {
    return Finish(c.id, seq,
                  ErrorReply("ERR syntax error: NX, XX and IFVERSION exclude each other"));
  }
  proto::Request request;
  auto* put = request.mutable_put();
  put->set_keygroup(c.keygroup);
  put->set_key(std::string(args[1]));
  put->set_value(std::string(args[2]));
  if (nx) put->mutable_expected();  // the empty version: absent
  if (if_version) if_version->ToProto(put->mutable_expected());
  int protocol = c.protocol;
  bool conditional = nx || if_version;
  if (!xx) {
    return Serve(c, std::move(request),
                 [this, id = c.id, seq, protocol, conditional](proto::Response&& r) {
                   if (conditional && r.code() == proto::FAILED_PRECONDITION) {
                     return Finish(id, seq, NullReply(protocol));
                   }
                   Finish(id, seq, r.code() == proto::OK ? kOk : ErrorReply(r));
                 });
  }
  SetIfExists(c.id, seq, protocol, std::move(*put), kXxAttempts);
}

void RespServer::SetIfExists(uint64_t id, uint64_t seq, int protocol, proto::PutRequest put,
                             int left) {
  auto conn = connections_.find(id);
  if (conn == connections_.end()) return;
  proto::Request get;
  get.mutable_get()->set_keygroup(put.keygroup());
  get.mutable_get()->set_key(put.key());
  Serve(*conn->second, std::move(get),
        [this, id, seq, protocol, put = std::move(put), left](proto::Response&& r) mutable {
          auto conn = connections_.find(id);
          if (conn == connections_.end()) return;
          if (r.code() != proto::OK) {
            return Finish(id, seq,
                          KeyAbsent(r, put.keygroup()) ? NullReply(protocol) : ErrorReply(r));
          }
          proto::Request write;
          *write.mutable_put() = put;
          *write.mutable_put()->mutable_expected() = r.get().version();
          Serve(*conn->second, std::move(write),
                [this, id, seq, protocol, put = std::move(put), left](proto::Response&& w) mutable {
                  if (w.code() == proto::FAILED_PRECONDITION && left > 1) {
                    return SetIfExists(id, seq, protocol, std::move(put), left - 1);
                  }
                  Finish(id, seq, w.code() == proto::OK ? kOk : ErrorReply(w));
                });
        });
}

void RespServer::DelOrExists(Connection& c, uint64_t seq, const Args& args, bool del) {
  struct Count {
    size_t left;
    int64_t found = 0;
    std::string error;
  };
  auto count = std::make_shared<Count>(Count{args.size() - 1, 0, {}});
  auto one_done = [this, id = c.id, seq, count] {
    if (--count->left > 0) return;
    Finish(id, seq,
           count->error.empty() ? ":" + std::to_string(count->found) + "\r\n" : count->error);
  };
  for (size_t i = 1; i < args.size(); ++i) {
    proto::Request get;
    get.mutable_get()->set_keygroup(c.keygroup);
    get.mutable_get()->set_key(std::string(args[i]));
    Serve(c, std::move(get),
          [this, id = c.id, count, one_done, del, keygroup = c.keygroup,
           key = std::string(args[i])](proto::Response&& r) {
            if (KeyAbsent(r, keygroup)) return one_done();
            if (r.code() != proto::OK) {
              if (count->error.empty()) count->error = ErrorReply(r);
              return one_done();
            }
            auto conn = connections_.find(id);
            if (!del || conn == connections_.end()) {
              ++count->found;
              return one_done();
            }
            proto::Request d;
            d.mutable_delete_()->set_keygroup(keygroup);
            d.mutable_delete_()->set_key(key);
            Serve(*conn->second, std::move(d), [count, one_done](proto::Response&& r) {
              if (r.code() == proto::OK) {
                ++count->found;
              } else if (count->error.empty()) {
                count->error = ErrorReply(r);
              }
              one_done();
            });
          });
  }
}

void RespServer::MGet(Connection& c, uint64_t seq, const Args& args) {
  struct Values {
    size_t left;
    std::vector<std::optional<std::string>> values;
  };
  auto values = std::make_shared<Values>(
      Values{args.size() - 1, std::vector<std::optional<std::string>>(args.size() - 1)});
  int protocol = c.protocol;
  for (size_t i = 1; i < args.size(); ++i) {
    proto::Request get;
    get.mutable_get()->set_keygroup(c.keygroup);
    get.mutable_get()->set_key(std::string(args[i]));
    // A key that cannot be read (refused, unavailable) is nil, as a key of another type is in
    // Redis.
    Serve(c, std::move(get), [this, id = c.id, seq, protocol, values, i](proto::Response&& r) {
      if (r.code() == proto::OK)
        values->values[i - 1] = std::move(*r.mutable_get()->mutable_value());
      if (--values->left > 0) return;
      Finish(id, seq, Reply(protocol, [&](net::resp::Writer& w) {
               w.Array(values->values.size());
               for (const auto& v : values->values) {
                 if (v) {
                   w.Bulk(*v);
                 } else {
                   w.Null();
                 }
               }
             }));
    });
  }
}

void RespServer::MSet(Connection& c, uint64_t seq, const Args& args) {
  struct Writes {
    size_t left;
    std::string error;
  };
  auto writes = std::make_shared<Writes>(Writes{(args.size() - 1) / 2, {}});
  for (size_t i = 1; i + 1 < args.size(); i += 2) {
    proto::Request request;
    auto* put = request.mutable_put();
    put->set_keygroup(c.keygroup);
    put->set_key(std::string(args[i]));
    put->set_value(std::string(args[i + 1]));
    Serve(c, std::move(request), [this, id = c.id, seq, writes](proto::Response&& r) {
      if (r.code() != proto::OK && writes->error.empty()) writes->error = ErrorReply(r);
      if (--writes->left > 0) return;
      Finish(id, seq, writes->error.empty() ? kOk : writes->error);
    });
  }
}

void RespServer::Scan(Connection& c, uint64_t seq, const Args& args) {
  std::string start;
  if (args[1] != "0") {
    uint64_t cursor = 0;
    auto it = cursors_.end();
    try {
      cursor = std::stoull(std::string(args[1]));
      it = cursors_.find(cursor);
    } catch (const std::exception&) {
    }
    if (it == cursors_.end()) return Finish(c.id, seq, ErrorReply("ERR invalid cursor"));
    start = it->second;  // kept: a client may ask again (a retry)
  }
  std::string match;
  uint32_t count = 10;
  bool strings = true;
  for (size_t i = 2; i < args.size(); ++i) {
    if (Is(args[i], "MATCH") && i + 1 < args.size()) {
      match = std::string(args[++i]);
    } else if (Is(args[i], "COUNT") && i + 1 < args.size()) {
      std::string text(args[++i]);
      if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), ::isdigit) ||
          std::stoul(text) == 0) {
        return Finish(c.id, seq, ErrorReply("ERR value is not an integer or out of range"));
      }
      count = static_cast<uint32_t>(std::stoul(text));
    } else if (Is(args[i], "TYPE") && i + 1 < args.size()) {
      strings = Is(args[++i], "STRING");  // every value is a string
    } else {
      return Finish(c.id, seq, ErrorReply("ERR syntax error"));
    }
  }
  proto::Request request;
  auto* scan = request.mutable_scan();
  scan->set_keygroup(c.keygroup);
  scan->set_start(start);
  scan->set_limit(count);
  int protocol = c.protocol;
  Serve(c, std::move(request),
        [this, id = c.id, seq, protocol, match = std::move(match), strings](proto::Response&& r) {
          if (!connections_.contains(id)) return;
          if (r.code() != proto::OK) return Finish(id, seq, ErrorReply(r));
          uint64_t next = 0;
          const auto& items = r.scan().items();
          if (r.scan().more() && !items.empty()) {
            next = next_cursor_++;
            // The next scan starts just after the last key returned.
            cursors_[next] = items[items.size() - 1].key() + '\0';
            if (cursors_.size() > kMaxCursors) cursors_.erase(cursors_.begin());
          }
          std::vector<const std::string*> keys;
          for (const auto& kv : items) {
            if (strings && (match.empty() || ::fnmatch(match.c_str(), kv.key().c_str(), 0) == 0)) {
              keys.push_back(&kv.key());
            }
          }
          Finish(id, seq, Reply(protocol, [&](net::resp::Writer& w) {
                   w.Array(2);
                   w.Bulk(std::to_string(next));
                   w.Array(keys.size());
                   for (const std::string* k : keys) w.Bulk(*k);
                 }));
        });
}

void RespServer::Hello(Connection& c, uint64_t seq, const Args& args) {
  int protocol = c.protocol;
  size_t i = 1;
  if (args.size() >= 2) {
    std::string v(args[1]);
    if (v != "2" && v != "3") {
      return Finish(c.id, seq, ErrorReply("NOPROTO unsupported protocol version"));
    }
    protocol = v[0] - '0';
    i = 2;
  }
  std::string out;
  for (; i < args.size(); ++i) {
    if (Is(args[i], "AUTH") && i + 2 < args.size()) {
      Auth(c, seq, std::string(args[i + 1]), std::string(args[i + 2]), out);
      if (out != kOk) return Finish(c.id, seq, out);
      i += 2;
    } else if (Is(args[i], "SETNAME") && i + 1 < args.size()) {
      ++i;
    } else {
      return Finish(c.id, seq,
                    ErrorReply("ERR syntax error in HELLO option '" + std::string(args[i]) + "'"));
    }
  }
  if (!c.permissions) return Finish(c.id, seq, ErrorReply("NOAUTH HELLO must be called with AUTH"));
  c.protocol = protocol;
  Finish(c.id, seq, Reply(protocol, [&](net::resp::Writer& w) {
           // The version of Redis whose commands it answers like, for client libraries that
           // read it; INFO names Enoki's.
           w.Map(7);
           w.Bulk("server");
           w.Bulk("enoki");
           w.Bulk("version");
           w.Bulk("7.0.0");
           w.Bulk("proto");
           w.Integer(protocol);
           w.Bulk("id");
           w.Integer(static_cast<int64_t>(c.id));
           w.Bulk("mode");
           w.Bulk("standalone");
           w.Bulk("role");
           w.Bulk("master");
           w.Bulk("modules");
           w.Array(0);
         }));
}

void RespServer::Auth(Connection& c, uint64_t seq, const std::string& user,
                      const std::string& token, std::string& out) {
  if (!options_.authenticate) {
    out = ErrorReply(
        "ERR AUTH called without any password configured: this node has no keys, and every "
        "client may do everything on loopback");
    return;
  }
  auto it = tokens_.find(TokenDigest(token));
  if (it == tokens_.end() || (!user.empty() && user != "default" && user != it->second.first)) {
    out = ErrorReply("WRONGPASS invalid username-password pair or user is disabled.");
    return;
  }
  c.user = it->second.first;
  c.permissions = it->second.second;
  out = kOk;
}

void RespServer::Info(Connection& c, uint64_t seq) {
  proto::KeygroupList list;
  node_.ListKeygroups(list);
  std::string text =
      "# Server\r\nredis_version:7.0.0\r\nenoki_version:" + std::string(ENOKI_VERSION) +
      "\r\nenoki_node:" + node_.id() + "\r\ntcp_port:" + std::to_string(port_) +
      "\r\n\r\n# Clients\r\nconnected_clients:" + std::to_string(connections_.size()) +
      "\r\n\r\n# Stats\r\ntotal_commands_processed:" + std::to_string(commands_) +
      "\r\n\r\n# Keyspace\r\n";
  for (const auto& l : list.keygroups()) {
    text += "keygroup:" + l.meta().name() + ",replica=" + (l.replica() ? "1" : "0") +
            ",ready=" + (l.held() ? "1" : "0") + "\r\n";
  }
  Finish(c.id, seq, Reply(c.protocol, [&](net::resp::Writer& w) { w.Bulk(text); }));
}

}  // namespace enoki::adapters
