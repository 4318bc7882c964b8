// The metrics and health endpoint.
#include "adapters/metrics_server.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <httplib.h>

namespace enoki::adapters {

class MetricsServer::Server : public httplib::Server {};

MetricsServer::MetricsServer(EventLoop& loop, std::string node_id,
                             std::function<std::string()> render)
    : loop_(loop),
      node_id_(std::move(node_id)),
      render_(std::move(render)),
      server_(std::make_unique<Server>()) {}

MetricsServer::~MetricsServer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  answered_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  if (watch_ != 0) loop_.Unwatch(watch_);
  if (event_fd_ >= 0) ::close(event_fd_);
}

core::Status MetricsServer::Start(const std::string& address) {
  auto colon = address.rfind(':');
  int port = -1;
  if (colon != std::string::npos && colon > 0) {
    try {
      port = std::stoi(address.substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (port < 0 || port > 65535) {
    return core::Status::InvalidArgument("metrics address '" + address +
                                         "' must look like HOST:PORT, e.g. 127.0.0.1:9100");
  }
  std::string host = address.substr(0, colon);
  // [::1]:9100: the brackets are the address's, not the host's.
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) {
    return core::Status::IOError("cannot make an eventfd for the metrics server: " +
                                 std::string(std::strerror(errno)));
  }
  watch_ = loop_.WatchFd(event_fd_, ZMQ_POLLIN, [this](short) { OnAsked(); });

  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  server_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (Snapshot(/*render=*/false)) {
      res.set_content("ok " + node_id_ + "\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content("node " + node_id_ + " does not answer (its event loop is busy or stuck)\n",
                      "text/plain");
    }
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    if (auto text = Snapshot(/*render=*/true)) {
      res.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
    } else {
      res.status = 503;
      res.set_content("node " + node_id_ + " does not answer (its event loop is busy or stuck)\n",
                      "text/plain");
    }
  });
  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ < 0) return core::Status::Unavailable("cannot listen for metrics on " + address);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return core::Status::Ok();
}

std::optional<std::string> MetricsServer::Snapshot(bool render) {
  std::unique_lock lock(mu_);
  uint64_t ticket = ++asked_;
  if (render) render_wanted_ = true;
  uint64_t one = 1;
  if (::write(event_fd_, &one, sizeof one) != sizeof one) return std::nullopt;
  bool done = answered_.wait_for(lock, std::chrono::seconds(1),
                                 [&] { return stopping_ || answered_n_ >= ticket; });
  if (!done || stopping_) return std::nullopt;
  return text_;
}

void MetricsServer::OnAsked() {
  uint64_t drained;
  while (::read(event_fd_, &drained, sizeof drained) == sizeof drained) {
  }
  uint64_t ticket;
  bool render;
  {
    std::lock_guard lock(mu_);
    ticket = asked_;
    render = render_wanted_;
    render_wanted_ = false;
  }
  // Every request up to `ticket` was asked before this rendering (a health check needs none).
  std::string text = render ? render_() : std::string();
  {
    std::lock_guard lock(mu_);
    if (render) text_ = std::move(text);
    answered_n_ = ticket;
  }
  answered_.notify_all();
}

}  // namespace enoki::adapters
