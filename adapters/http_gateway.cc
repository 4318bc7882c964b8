// The HTTP gateway on cpp-httplib, forwarding to the node over ZeroMQ. cpp-httplib parses and
// routes requests; the subclass below owns each connection: admission, the TLS handshake, and a
// stream whose reads keep the header and read timeouts.
#include "adapters/http_gateway.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <system_error>

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <nlohmann/json.hpp>

#include "adapters/log_time.h"
#include "adapters/tls.h"
#include "adapters/zip_archive.h"
#include "node/validation.h"

namespace enoki::adapters {
namespace {

using Clock = std::chrono::steady_clock;

// A request body read in whole, at most `limit` bytes: read, larger (the rest is not read), or
// broken off.
enum class BodyRead { kOk, kTooLarge, kBroken };
BodyRead ReadBody(const httplib::ContentReader& read, size_t limit, std::string& body) {
  bool over = false;
  bool all = read([&](const char* data, size_t size) {
    if (body.size() + size > limit) {
      over = true;
      return false;
    }
    body.append(data, size);
    return true;
  });
  return over ? BodyRead::kTooLarge : all ? BodyRead::kOk : BodyRead::kBroken;
}

// The HTTP status for a wire error code.
int HttpStatusFor(int code) {
  switch (static_cast<proto::Code>(code)) {
    case proto::OK:
      return 200;
    case proto::NOT_FOUND:
      return 404;
    case proto::PERMISSION_DENIED:
      return 403;
    case proto::RESOURCE_EXHAUSTED:
      return 429;
    case proto::INVALID_ARGUMENT:
    case proto::FAILED_PRECONDITION:
    case proto::ALREADY_EXISTS:
      return 400;
    case proto::TOO_LARGE:
      return 413;
    case proto::UNAVAILABLE:
      return 503;
    case proto::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

// The programs that run a tinyFaaS function's code as an Enoki process function, by tinyFaaS
// environment: each is added to the upload as kShimName and is the function's handler.
constexpr const char* kShimName = "enoki-tinyfaas.py";
const std::map<std::string, std::string> kShims = {
    // fn.py's fn(input) or fn(input, headers), returning a str or None.
    {"python3",
     "#!/usr/bin/env python3\n"
     "# Runs a tinyFaaS python3 function (fn.py) as an Enoki process function.\n"
     "import inspect\n"
     "import enoki\n"
     "import fn\n"
     "_headers = len(inspect.signature(fn.fn).parameters) >= 2\n"
     "def handle(body):\n"
     "    text = body.decode('utf-8', errors='replace') if body else None\n"
     "    result = fn.fn(text, {}) if _headers else fn.fn(text)\n"
     "    return '' if result is None else result\n"
     "enoki.serve(handle)\n"},
    // fn.sh, run once per call with the body on its stdin; its stdout is the result.
    {"binary",
     "#!/usr/bin/env python3\n"
     "# Runs a tinyFaaS binary function (fn.sh) as an Enoki process function.\n"
     "import subprocess\n"
     "import enoki\n"
     "def handle(body):\n"
     "    done = subprocess.run(['./fn.sh'], input=body, stdout=subprocess.PIPE)\n"
     "    if done.returncode != 0:\n"
     "        raise RuntimeError('fn.sh exited with status %d' % done.returncode)\n"
     "    return done.stdout\n"
     "enoki.serve(handle)\n"},
};

// Runs each connection on a thread of its own, up to `max` at once; beyond that, the connection
// is handed to `refuse` on the accepting thread (which must not block).
class ThreadPerConnection : public httplib::TaskQueue {
 public:
  explicit ThreadPerConnection(size_t max) : max_(max) {}
  // Set while a connection over the cap runs on the accepting thread.
  static inline thread_local bool over_cap = false;

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (running_ < max_) {
        ++running_;
        try {
          std::thread([this, fn] {
            fn();
            std::lock_guard<std::mutex> done(mu_);
            if (--running_ == 0) idle_.notify_all();
          }).detach();
          return;
        } catch (const std::system_error&) {
          // No thread to be had (a limit on the node's tasks): refused like one over the cap.
          --running_;
        }
      }
    }
    over_cap = true;
    fn();
    over_cap = false;
  }
  // Waits for every connection's thread to end.
  void shutdown() override {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return running_ == 0; });
  }

 private:
  const size_t max_;
  std::mutex mu_;  // guards running_
  std::condition_variable idle_;
  size_t running_ = 0;
};

// One accepted connection (plain, or TLS once `ssl` is set) as cpp-httplib reads and writes it:
// non-blocking, every wait bounded by the read timeout and, while a request head is awaited, by
// the head's deadline; every wait also ends when the gateway stops (`stop_fd` readable).
class ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(int fd, int stop_fd, std::chrono::milliseconds idle)
      : fd_(fd), stop_fd_(stop_fd), idle_(idle) {}
  ~ConnectionStream() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
  }
  // The connection being served on this thread (for handlers that must close it after answering).
  static inline thread_local ConnectionStream* current = nullptr;

  // From now until HeadDone, reads fail once `deadline` has passed.
  void AwaitHead(Clock::time_point deadline) {
    head_deadline_ = deadline;
    in_head_ = true;
  }
  void HeadDone() { in_head_ = false; }
  bool head_done() const { return !in_head_; }
  // Closes the connection after the response under way.
  void CloseAfterResponse() { close_ = true; }
  bool close_after_response() const { return close_; }

  // TLS over the connection: the handshake, within the head's deadline.
  bool Handshake(SSL_CTX* ctx) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) return false;
    while (true) {
      int r = SSL_accept(ssl_);
      if (r == 1) return true;
      int e = SSL_get_error(ssl_, r);
      if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
          !Wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT)) {
        ERR_clear_error();
        return false;
      }
    }
  }
  // Waits for the first byte of the next request, at most the read timeout.
  bool AwaitRequest() { return Buffered() || Wait(POLLIN); }
  // Ends TLS politely when the exchange went well.
  void Shutdown() {
    if (ssl_ != nullptr) SSL_shutdown(ssl_);
  }

  bool is_readable() const override { return Buffered() || Wait(POLLIN); }
  bool is_writable() const override { return Wait(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    if (off_ == len_) {
      off_ = len_ = 0;
      ssize_t n = Transfer(POLLIN, buffer_, sizeof buffer_);
      if (n <= 0) return n;
      len_ = static_cast<size_t>(n);
    }
    size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buffer_ + off_, n);
    off_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      ssize_t n = Transfer(POLLOUT, const_cast<char*>(ptr) + done, size - done);
      if (n <= 0) return -1;
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  bool Buffered() const { return off_ < len_ || (ssl_ != nullptr && SSL_pending(ssl_) > 0); }

  // Waits until the socket is ready for `events`, within the read timeout and the head's
  // deadline; false on a timeout, an error or the gateway's stop.
  bool Wait(short events) const {
    auto limit = idle_;
    if (in_head_) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(head_deadline_ - Clock::now());
      if (left.count() <= 0) return false;
      limit = std::min(limit, left);
    }
    pollfd fds[2] = {{fd_, events, 0}, {stop_fd_, POLLIN, 0}};
    int r;
    do {
      r = ::poll(fds, 2, static_cast<int>(limit.count()));
    } while (r < 0 && errno == EINTR);
    return r > 0 && fds[1].revents == 0 && fds[0].revents != 0;
  }

  // One read (POLLIN) or write (POLLOUT) of at most `size` bytes, waiting as needed: what moved,
  // 0 at the end of the stream, -1 on an error or a timeout.
  ssize_t Transfer(short direction, char* data, size_t size) {
    while (true) {
      short wait = direction;
      if (ssl_ != nullptr) {
        int n = direction == POLLIN ? SSL_read(ssl_, data, static_cast<int>(size))
                                    : SSL_write(ssl_, data, static_cast<int>(size));
        if (n > 0) return n;
        int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          ERR_clear_error();
          return -1;
        }
        wait = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      } else {
        ssize_t n = direction == POLLIN ? ::recv(fd_, data, size, 0)
                                        : ::send(fd_, data, size, MSG_NOSIGNAL);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      }
      if (!Wait(wait)) return -1;
    }
  }

  template <typename Fn>
  void Address(Fn fn, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ip.clear();
    port = 0;
    if (fn(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char text[INET6_ADDRSTRLEN] = "";
    if (addr.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

  int fd_;
  int stop_fd_;
  std::chrono::milliseconds idle_;
  SSL* ssl_ = nullptr;
  bool in_head_ = false;
  Clock::time_point head_deadline_{};
  bool close_ = false;
  char buffer_[4096];
  size_t off_ = 0;
  size_t len_ = 0;
};

}  // namespace

// cpp-httplib's server, taking over each accepted connection (its process_and_close_socket):
// the caps, TLS, the timeouts, then requests for as long as the client keeps the connection.
class HttpGateway::Server : public httplib::Server {
 public:
  explicit Server(const HttpGatewayOptions& options) : options_(options) {
    new_task_queue = [this] { return new ThreadPerConnection(options_.max_connections); };
  }
  ~Server() override {
    if (tls_ != nullptr) SSL_CTX_free(tls_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }

  core::Status Init() {
    stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (stop_fd_ < 0) return core::Status::IOError(std::string("eventfd: ") + std::strerror(errno));
    if (!options_.cert_file.empty()) {
      auto ctx = LoadTls(options_.cert_file, options_.key_file);
      if (!ctx.ok()) return ctx.status();
      tls_ = *ctx;
    }
    return core::Status::Ok();
  }
  // Lets `backlog` connections wait to be accepted (cpp-httplib's own is 5: a burst of clients
  // would overflow it and wait for the kernel's retries, seconds). After binding.
  void WidenBacklog(int backlog) { ::listen(svr_sock_, backlog); }
  // Wakes every connection's waits, so that they end now.
  void StopConnections() {
    uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
  }

 private:
  bool process_and_close_socket(socket_t sock) override {
    auto accepted = Clock::now();
    ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
    ConnectionStream stream(sock, stop_fd_, options_.read_timeout);
    std::string address;
    int port = 0;
    stream.get_remote_ip_and_port(address, port);
    bool admitted = !ThreadPerConnection::over_cap && Enter(address);
    if (!admitted) {
      // A short answer without waiting (plain HTTP only: a TLS client would not read it).
      if (tls_ == nullptr) {
        std::string why = ThreadPerConnection::over_cap
                              ? "too many connections to this node's HTTP gateway\n"
                              : "too many connections from " + address + "\n";
        std::string answer =
            "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
            "Content-Type: text/plain\r\nContent-Length: " +
            std::to_string(why.size()) + "\r\n\r\n" + why;
        (void)!::send(sock, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      ::close(sock);
      return false;
    }
    ConnectionStream::current = &stream;
    stream.AwaitHead(accepted + options_.header_timeout);
    bool ok = tls_ == nullptr || stream.Handshake(tls_);
    bool first = true;
    while (ok && svr_sock_ != INVALID_SOCKET) {
      if (!first) {
        if (!stream.AwaitRequest()) break;
        stream.AwaitHead(Clock::now() + options_.header_timeout);
      }
      first = false;
      bool closed = false;
      ok = process_request(stream, false, closed, [&](httplib::Request&) { stream.HeadDone(); });
      // A head that was not read whole (answered 400 or cut off) ends the connection.
      if (closed || stream.close_after_response() || !stream.head_done()) break;
    }
    if (ok) stream.Shutdown();
    ConnectionStream::current = nullptr;
    if (stream.close_after_response()) {
      // A lingering close (as nginx's): the client may still be sending the body that was
      // refused, and closing with its bytes unread would reset the connection, which can destroy
      // the answer before the client reads it. So stop sending, and read what still comes for a
      // short while.
      ::shutdown(sock, SHUT_WR);
      Drain(sock, Clock::now() + kLinger);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    Leave(address);
    return ok;
  }

  static constexpr std::chrono::milliseconds kLinger{1000};

  // Reads and drops what `sock` receives until the client closes, or `until`.
  static void Drain(int sock, Clock::time_point until) {
    char buffer[16384];
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return;
      pollfd p{sock, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
      ssize_t n = ::recv(sock, buffer, sizeof buffer, 0);
      if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) return;
    }
  }

  // Counts a connection from `address`; false when it has its share already.
  bool Enter(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t& open = per_address_[address];
    if (open >= options_.max_per_address) {
      if (open == 0) per_address_.erase(address);
      return false;
    }
    ++open;
    return true;
  }
  void Leave(const std::string& address) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = per_address_.find(address);
    if (--it->second == 0) per_address_.erase(it);
  }

  const HttpGatewayOptions& options_;
  SSL_CTX* tls_ = nullptr;
  int stop_fd_ = -1;
  std::mutex mu_;                              // guards per_address_
  std::map<std::string, size_t> per_address_;  // open connections by client address
};

HttpGateway::HttpGateway(zmq::context_t& context, std::string node_endpoint,
                         HttpGatewayOptions options)
    : context_(context),
      node_endpoint_(std::move(node_endpoint)),
      options_(std::move(options)),
      server_(std::make_unique<Server>(options_)),
      callers_(std::make_shared<Callers>()) {}

HttpGateway::~HttpGateway() {
  server_->StopConnections();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpGateway::SetAccess(const std::map<std::string, AccessEntry>& clients) {
  auto callers = std::make_shared<Callers>();
  for (const auto& [name, entry] : clients) {
    if (!entry.token_digest.empty()) {
      callers->by_token[entry.token_digest] = {name, entry.permissions};
    } else if (entry.public_key.empty()) {
      callers->anonymous = std::pair{name, entry.permissions};
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  callers_ = std::move(callers);
}

std::optional<std::pair<int, std::string>> HttpGateway::Refusal(const std::string& authorization,
                                                                const std::string& function) const {
  proto::Request call;
  call.mutable_invoke()->set_function(function);
  return Refusal(authorization, call,
                 "function '" + function +
                     "' is not public: call it with a header 'Authorization: Bearer TOKEN' (a "
                     "token of the node's access file)");
}

std::optional<std::pair<int, std::string>> HttpGateway::Refusal(
    const std::string& authorization, const proto::Request& call,
    const std::string& without_token) const {
  if (!options_.authenticate) return std::nullopt;
  std::shared_ptr<const Callers> callers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    callers = callers_;
  }
  const std::pair<std::string, Permissions>* caller = nullptr;
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.empty()) {
    if (callers->anonymous &&
        Authorize(callers->anonymous->first, callers->anonymous->second, call).ok()) {
      return std::nullopt;
    }
    return std::pair{401, without_token};
  }
  if (authorization.rfind(kBearer, 0) != 0) {
    return std::pair{401, std::string("the Authorization header must be 'Bearer TOKEN'")};
  }
  auto it = callers->by_token.find(TokenDigest(authorization.substr(kBearer.size())));
  if (it == callers->by_token.end()) {
    return std::pair{401, std::string("unknown bearer token (not in the node's access file)")};
  }
  caller = &it->second;
  if (core::Status st = Authorize(caller->first, caller->second, call); !st.ok()) {
    return std::pair{403, st.message()};
  }
  return std::nullopt;
}

std::unique_ptr<Client> HttpGateway::TakeClient() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!clients_.empty()) {
      auto client = std::move(clients_.back());
      clients_.pop_back();
      return client;
    }
  }
  return std::make_unique<Client>(context_, node_endpoint_, std::chrono::seconds(60));
}

void HttpGateway::ReturnClient(std::unique_ptr<Client> client) {
  std::lock_guard<std::mutex> lock(mu_);
  clients_.push_back(std::move(client));
}

core::Status HttpGateway::Start() {
  const std::string& address = options_.address;
  auto colon = address.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      port = std::stoi(address.substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    return core::Status::InvalidArgument("HTTP address '" + address +
                                         "' must look like HOST:PORT, e.g. 127.0.0.1:8000");
  }
  std::string host = address.substr(0, colon);
  ENOKI_RETURN_IF_ERROR(server_->Init());

  // Answers `status` with `why`; closes the connection after, so that a body never gets read.
  auto refuse = [](httplib::Response& res, int status, const std::string& why) {
    res.status = status;
    if (status == 401) res.set_header("WWW-Authenticate", "Bearer");
    res.set_content(why + "\n", "text/plain");
    if (ConnectionStream::current != nullptr) ConnectionStream::current->CloseAfterResponse();
  };
  auto call = [this](const httplib::Request& req, const std::string& body, httplib::Response& res) {
    std::string function = req.path.substr(1);
    bool async = req.get_header_value("X-tinyFaaS-Async") == "true";
    auto client = TakeClient();
    auto result = client->Invoke(function, body, async);
    ReturnClient(std::move(client));
    if (result.ok()) {
      res.status = async ? 202 : 200;
      res.set_content(*result, "text/plain");
      return;
    }
    res.status = HttpStatusFor(static_cast<int>(result.status().code()));
    res.set_content(result.status().message() + "\n", "text/plain");
  };
  // Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
  // client's delayed ACK hold every response back by 40 ms.
  server_->set_tcp_nodelay(true);
  if (options_.manage) {
    AddManagementRoutes(refuse);
  } else {
    AddFunctionRoutes(refuse, call);
  }
  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ < 0) {
    return core::Status::Unavailable("cannot listen for HTTP on " + address);
  }
  server_->WidenBacklog(SOMAXCONN);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return core::Status::Ok();
}

void HttpGateway::AddFunctionRoutes(const Refuse& refuse, const Call& call) {
  // Only `POST /<function>` and a bodiless `GET /<function>` reach a function. Anything else is
  // answered before cpp-httplib would read its body into memory (which it does, unbounded, for
  // any method and path that has no handler of its own), and the connection is closed; the body
  // limit below holds for cpp-httplib's own reading too.
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_pre_routing_handler([refuse](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "POST" && req.method != "GET") {
      res.set_header("Allow", "POST, GET");
      refuse(res, 405,
             "only POST /<function> (or GET /<function>, without a body) calls a function");
    } else if (req.path.empty() || req.path[0] != '/' ||
               !node::ValidateName("function", std::string_view(req.path).substr(1)).ok()) {
      refuse(res, 404, "no function at '" + req.path + "': call POST /<function>");
    } else if (req.method == "GET" && (req.has_header("Transfer-Encoding") ||
                                       (req.has_header("Content-Length") &&
                                        req.get_header_value("Content-Length") != "0"))) {
      refuse(res, 400, "a GET takes no body: POST it");
    } else {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    return httplib::Server::HandlerResponse::Handled;
  });
  // A body over the limit is refused before it is read when its declared length says so, and
  // while it is read otherwise, counting what a compressed body inflates to (a small gzip body
  // can inflate to gigabytes); either way the connection is closed after the answer, so that
  // the rest of the body is never read. The credential is checked first: a caller who may not
  // call the function gets no byte of its body read either.
  server_->Post(R"(/([A-Za-z0-9][A-Za-z0-9_.\-]*))", [this, call, refuse](
                                                         const httplib::Request& req,
                                                         httplib::Response& res,
                                                         const httplib::ContentReader& read) {
    if (auto no = Refusal(req.get_header_value("Authorization"), req.path.substr(1))) {
      return refuse(res, no->first, no->second);
    }
    std::string too_large = "request body over " + std::to_string(options_.max_body_bytes) +
                            " bytes (after decompression)";
    std::string declared = req.get_header_value("Content-Length");
    if (!declared.empty() &&
        (declared.size() > 18 || declared.find_first_not_of("0123456789") != std::string::npos ||
         std::stoull(declared) > static_cast<uint64_t>(options_.max_body_bytes))) {
      return refuse(res, 413, too_large);
    }
    std::string body;
    BodyRead got = ReadBody(read, options_.max_body_bytes, body);
    if (got == BodyRead::kTooLarge) return refuse(res, 413, too_large);
    if (got == BodyRead::kBroken) return refuse(res, 400, "the request body could not be read");
    call(req, body, res);
  });
  server_->Get(R"(/([A-Za-z0-9][A-Za-z0-9_.\-]*))",
               [this, call, refuse](const httplib::Request& req, httplib::Response& res) {
                 if (auto no = Refusal(req.get_header_value("Authorization"), req.path.substr(1))) {
                   return refuse(res, no->first, no->second);
                 }
                 call(req, req.body, res);
               });
}

void HttpGateway::AddManagementRoutes(const Refuse& refuse) {
  // The answer to a node's error: its status and message (a size over the limit is 413).
  auto failed = [](httplib::Response& res, const core::Status& st) {
    bool size = st.code() == core::Code::kResourceExhausted &&
                st.message().find("--max-upload-bytes") != std::string::npos;
    res.status = size ? 413 : HttpStatusFor(static_cast<int>(st.code()));
    res.set_content(st.message() + "\n", "text/plain");
  };
  auto manage_refusal = [this](const httplib::Request& req, const proto::Request& request) {
    return Refusal(req.get_header_value("Authorization"), request,
                   "the management API needs a header 'Authorization: Bearer TOKEN' (a token of "
                   "the node's access file with 'deploy', and 'deploy-process' to upload)");
  };
  server_->set_payload_max_length(options_.max_body_bytes);
  server_->set_pre_routing_handler([refuse](const httplib::Request& req, httplib::Response& res) {
    bool post = req.path == "/upload" || req.path == "/delete";
    bool get = req.path == "/list" || req.path == "/logs";
    if (!post && !get) {
      refuse(res, 404,
             "no management route '" + req.path +
                 "': POST /upload, POST /delete, GET /list, GET /logs[?name=F]");
    } else if (req.method != (post ? "POST" : "GET")) {
      res.set_header("Allow", post ? "POST" : "GET");
      refuse(res, 405, req.path + " takes " + (post ? "POST" : "GET"));
    } else if (get && (req.has_header("Transfer-Encoding") ||
                       (req.has_header("Content-Length") &&
                        req.get_header_value("Content-Length") != "0"))) {
      refuse(res, 400, "a GET takes no body");
    } else {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    return httplib::Server::HandlerResponse::Handled;
  });
  // The body as JSON, after the credential check, within the body limit.
  auto read_json = [this, refuse](
                       const httplib::Request& req, httplib::Response& res,
                       const httplib::ContentReader& read) -> std::optional<nlohmann::json> {
    std::string body;
    BodyRead got = ReadBody(read, options_.max_body_bytes, body);
    if (got == BodyRead::kTooLarge) {
      refuse(res, 413,
             "request body over " + std::to_string(options_.max_body_bytes) +
                 " bytes (the node's --max-upload-bytes, as base64 in JSON)");
      return std::nullopt;
    }
    if (got == BodyRead::kBroken) {
      refuse(res, 400, "the request body could not be read");
      return std::nullopt;
    }
    auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object()) {
      res.status = 400;
      res.set_content("the body must be a JSON object\n", "text/plain");
      return std::nullopt;
    }
    return json;
  };
  auto text = [](const nlohmann::json& json, const char* key) {
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
  };

  // {"name": F, "env": "python3" | "binary", "threads": N, "zip": BASE64}: deploys F.
  server_->Post("/upload", [=, this](const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& read) {
    proto::Request deploy;
    deploy.mutable_deploy_function()->mutable_spec()->set_runtime("process");
    if (auto no = manage_refusal(req, deploy)) return refuse(res, no->first, no->second);
    if (!req.get_header_value("Content-Length").empty()) {
      const std::string& declared = req.get_header_value("Content-Length");
      if (declared.size() > 18 || declared.find_first_not_of("0123456789") != std::string::npos ||
          std::stoull(declared) > static_cast<uint64_t>(options_.max_body_bytes)) {
        return refuse(res, 413,
                      "request body over " + std::to_string(options_.max_body_bytes) +
                          " bytes (the node's --max-upload-bytes, as base64 in JSON)");
      }
    }
    auto json = read_json(req, res, read);
    if (!json) return;
    std::string name = text(*json, "name");
    std::string env = text(*json, "env");
    auto shim = kShims.find(env);
    if (shim == kShims.end()) {
      res.status = 400;
      res.set_content("env '" + env + "' is not supported here; supported: binary, python3\n",
                      "text/plain");
      return;
    }
    uint64_t threads = 0;
    if (auto t = json->find("threads"); t != json->end()) {
      if (!t->is_number_unsigned()) {
        res.status = 400;
        res.set_content("threads must be a number of 0 or more\n", "text/plain");
        return;
      }
      threads = t->get<uint64_t>();
    }
    auto zip = DecodeBase64(text(*json, "zip"));
    if (!zip.ok())
      return failed(res, core::Status::InvalidArgument("zip: " + zip.status().message()));
    auto files = ReadZip(*zip, options_.max_upload_bytes);
    if (!files.ok()) {
      const core::Status& st = files.status();
      return failed(
          res, core::Status(st.code(), st.message() + (st.code() == core::Code::kResourceExhausted
                                                           ? " (--max-upload-bytes)"
                                                           : "")));
    }
    proto::FunctionFile program;
    program.set_path(kShimName);
    program.set_data(shim->second);
    program.set_executable(true);
    files->push_back(std::move(program));
    proto::FunctionSpec spec;
    spec.set_name(name);
    spec.set_runtime("process");
    spec.set_handler(kShimName);
    spec.set_keygroup(name);  // its own; tinyFaaS functions have no state
    spec.set_concurrency(static_cast<uint32_t>(std::min<uint64_t>(threads, 1u << 20)));
    auto client = TakeClient();
    core::Status st = client->DeployFunction(spec, std::move(*files));
    ReturnClient(std::move(client));
    if (!st.ok()) return failed(res, st);
    res.status = 200;
    res.set_content(name + "\n", "text/plain");
  });

  // {"name": F}: deletes F.
  server_->Post("/delete", [=, this](const httplib::Request& req, httplib::Response& res,
                                     const httplib::ContentReader& read) {
    proto::Request del;
    del.mutable_delete_function();
    if (auto no = manage_refusal(req, del)) return refuse(res, no->first, no->second);
    auto json = read_json(req, res, read);
    if (!json) return;
    auto client = TakeClient();
    core::Status st = client->DeleteFunction(text(*json, "name"));
    ReturnClient(std::move(client));
    if (!st.ok()) return failed(res, st);
    res.status = 200;
  });

  // The functions' names, one a line.
  server_->Get("/list", [=, this](const httplib::Request& req, httplib::Response& res) {
    proto::Request list;
    list.mutable_list_functions();
    if (auto no = manage_refusal(req, list)) return refuse(res, no->first, no->second);
    auto client = TakeClient();
    auto r = client->ListFunctions();
    ReturnClient(std::move(client));
    if (!r.ok()) return failed(res, r.status());
    std::string out;
    for (const auto& f : r->functions()) out += f.spec().name() + "\n";
    res.status = 200;
    res.set_content(out, "text/plain");
  });

  // ?name=F: F's log; without: every function's, each line after its function's name.
  server_->Get("/logs", [=, this](const httplib::Request& req, httplib::Response& res) {
    proto::Request logs;
    logs.mutable_function_logs();
    if (auto no = manage_refusal(req, logs)) return refuse(res, no->first, no->second);
    auto client = TakeClient();
    std::string out;
    core::Status st;
    auto append = [&](const std::string& name, const std::string& prefix) {
      auto r = client->FunctionLogs(name, 0);
      if (!r.ok()) return r.status();
      for (const auto& line : r->lines()) {
        out += prefix + ReadableFunctionLogLine(line, false) + "\n";
      }
      return core::Status::Ok();
    };
    if (req.has_param("name")) {
      st = append(req.get_param_value("name"), "");
    } else {
      auto list = client->ListFunctions();
      st = list.status();
      for (int i = 0; st.ok() && i < list->functions_size(); ++i) {
        const std::string& name = list->functions(i).spec().name();
        st = append(name, name + ": ");
      }
    }
    ReturnClient(std::move(client));
    if (!st.ok()) return failed(res, st);
    res.status = 200;
    res.set_content(out, "text/plain");
  });
}

}  // namespace enoki::adapters
