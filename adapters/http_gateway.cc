// The HTTP gateway on cpp-httplib, forwarding to the node over ZeroMQ.
#include "adapters/http_gateway.h"

#include <httplib.h>

#include "adapters/client.h"

namespace enoki::adapters {
namespace {

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

}  // namespace

HttpGateway::HttpGateway(zmq::context_t& context, std::string node_endpoint, std::string address,
                         size_t max_body_bytes)
    : context_(context),
      node_endpoint_(std::move(node_endpoint)),
      address_(std::move(address)),
      max_body_bytes_(max_body_bytes),
      server_(std::make_unique<httplib::Server>()) {}

HttpGateway::~HttpGateway() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

core::Status HttpGateway::Start() {
  auto colon = address_.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      port = std::stoi(address_.substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    return core::Status::InvalidArgument("HTTP address '" + address_ +
                                         "' must look like HOST:PORT, e.g. 127.0.0.1:8000");
  }
  std::string host = address_.substr(0, colon);

  auto call = [this](const httplib::Request& req, const std::string& body, httplib::Response& res) {
    // One client per server thread; it lives as long as the thread.
    thread_local std::unique_ptr<Client> client;
    if (!client) {
      client = std::make_unique<Client>(context_, node_endpoint_, std::chrono::seconds(60));
    }
    std::string function = req.path.substr(1);
    bool async = req.get_header_value("X-tinyFaaS-Async") == "true";
    auto result = client->Invoke(function, body, async);
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
  // cpp-httplib keeps a worker per open keep-alive connection; with its default of 8 workers the
  // 9th concurrent client waits for another to disconnect. Workers mostly wait on the node.
  server_->new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  // By default a connection is closed after 5 requests, and the reconnects overflow the listen
  // backlog of 5 (SYN retries: hundreds of ms of tail latency). Keep connections open instead.
  server_->set_keep_alive_max_count(1u << 30);
  // A body over the limit is refused before it is read when its declared length says so, and
  // while it is read otherwise, counting what a compressed body inflates to (a small gzip body
  // can inflate to gigabytes); either way the connection is closed after the answer, so that
  // the rest of the body is never read.
  server_->Post(
      R"(/([A-Za-z0-9][A-Za-z0-9_.\-]*))",
      [this, call](const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& read) {
        auto refuse = [&](int status, const std::string& why) {
          res.status = status;
          res.set_header("Connection", "close");
          res.set_content(why + "\n", "text/plain");
        };
        std::string too_large =
            "request body over " + std::to_string(max_body_bytes_) + " bytes (after decompression)";
        std::string declared = req.get_header_value("Content-Length");
        if (!declared.empty() && (declared.size() > 18 ||
                                  declared.find_first_not_of("0123456789") != std::string::npos ||
                                  std::stoull(declared) > static_cast<uint64_t>(max_body_bytes_))) {
          return refuse(413, too_large);
        }
        std::string body;
        bool over = false;
        bool read_all = read([&](const char* data, size_t size) {
          if (body.size() + size > max_body_bytes_) {
            over = true;
            return false;
          }
          body.append(data, size);
          return true;
        });
        if (over) return refuse(413, too_large);
        if (!read_all) return refuse(400, "the request body could not be read");
        call(req, body, res);
      });
  server_->Get(
      R"(/([A-Za-z0-9][A-Za-z0-9_.\-]*))",
      [call](const httplib::Request& req, httplib::Response& res) { call(req, req.body, res); });

  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ < 0) {
    return core::Status::Unavailable("cannot listen for HTTP on " + address_);
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return core::Status::Ok();
}

}  // namespace enoki::adapters
