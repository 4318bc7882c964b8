// The ZAP handler: CURVE public keys in, identities out.
#include "adapters/zap.h"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace enoki::adapters {

void WarnLimited(core::RateLimitedLog& log, core::TimePoint now, const std::string& line) {
  if (auto logged = log.Add(now, line)) spdlog::warn("{}", *logged);
}

ZapHandler::ZapHandler(zmq::context_t& context, EventLoop& loop)
    : context_(context), loop_(loop), socket_(context, zmq::socket_type::rep) {}

core::Status ZapHandler::Start() {
  try {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return core::Status::Unavailable(std::string("cannot serve ZAP (one secure node per ZeroMQ "
                                                 "context): ") +
                                     e.what());
  }
  loop_.AddSocket(socket_, [this] { OnReadable(); });
  return core::Status::Ok();
}

core::Status ZapHandler::WatchConnections(zmq::socket_t& socket, size_t max_clients,
                                          std::function<void()> on_closed) {
  max_clients_ = max_clients;
  on_closed_ = std::move(on_closed);
  std::string address =
      "inproc://enoki-zap-monitor-" + std::to_string(reinterpret_cast<uintptr_t>(this));
  if (zmq_socket_monitor(socket.handle(), address.c_str(),
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
    return core::Status::Internal(std::string("cannot watch connections: ") +
                                  zmq_strerror(zmq_errno()));
  }
  monitor_.emplace(context_, zmq::socket_type::pair);
  monitor_->set(zmq::sockopt::linger, 0);
  monitor_->connect(address);
  loop_.AddSocket(*monitor_, [this] { OnMonitorEvent(); });
  return core::Status::Ok();
}

void ZapHandler::OnMonitorEvent() {
  while (true) {
    zmq::message_t event;
    if (!monitor_->recv(event, zmq::recv_flags::dontwait)) return;
    zmq::message_t endpoint;
    if (event.more()) (void)monitor_->recv(endpoint, zmq::recv_flags::none);
    if (event.size() < 2) continue;
    uint16_t kind;
    std::memcpy(&kind, event.data(), sizeof kind);
    if (kind == ZMQ_EVENT_ACCEPTED) {
      ++connections_;
    } else if (kind == ZMQ_EVENT_DISCONNECTED && connections_ > 0) {
      --connections_;
      if (on_closed_) on_closed_();
    }
  }
}

bool ZapHandler::OverCap(const std::string& address) {
  if (max_clients_ == 0 || connections_ <= max_clients_) return false;  // counting this one
  WarnLimited(over_cap_, loop_.Now(),
              "refused a client connection from " + address + ": " + std::to_string(connections_) +
                  " connections are open, over the cap of " + std::to_string(max_clients_) +
                  " (--max-clients)");
  return true;
}

void ZapHandler::OnReadable() {
  // The connection asking was accepted before it asked: counted first.
  if (monitor_) {
    OnMonitorEvent();
    loop_.Touched(*monitor_);  // read here, outside its own callback
  }
  while (true) {
    std::vector<zmq::message_t> frames;
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return;
    bool more = frame.more();
    frames.push_back(std::move(frame));
    while (more) {
      zmq::message_t next;
      (void)socket_.recv(next, zmq::recv_flags::none);
      more = next.more();
      frames.push_back(std::move(next));
    }
    // version, request id, domain, address, routing id, mechanism, credentials...
    auto text_of = [&](size_t i) { return frames.size() > i ? frames[i].to_string() : ""; };
    std::string request_id = text_of(1);
    std::string domain = text_of(2);
    std::string address = text_of(3);
    std::string mechanism = text_of(5);
    std::string status = "400";
    std::string text;
    std::string user;
    if (frames.size() < 6 || text_of(0) != "1.0") {
      text = "malformed ZAP request";
      WarnLimited(refusals_, loop_.Now(), "refused a connection: malformed ZAP request");
    } else if (domain == kLocalDomain && mechanism == "NULL") {
      status = "200";
      text = "OK";
      user = kLocalIdentity;
    } else if (domain == kPlainDomain && mechanism == "NULL") {
      if (OverCap(address)) {
        text = "too many connections";
      } else {
        status = "200";
        text = "OK";
      }
    } else if (domain == kCurveDomain && mechanism == "CURVE" && frames.size() == 7 &&
               frames[6].size() == 32) {
      char z85[41];
      zmq_z85_encode(z85, static_cast<const uint8_t*>(frames[6].data()), 32);
      auto it = keys_.find(z85);
      if (it != keys_.end() && it->second.rfind("client:", 0) == 0 && OverCap(address)) {
        text = "too many connections";
      } else if (it != keys_.end()) {
        status = "200";
        text = "OK";
        user = it->second;
      } else {
        text = "unknown key";
        WarnLimited(refusals_, loop_.Now(),
                    "refused a connection from " + address + " with unknown key " + z85);
      }
    } else {
      text = "not admitted";
      WarnLimited(refusals_, loop_.Now(),
                  "refused a connection from " + address + " (domain '" + domain + "', mechanism " +
                      mechanism + ")");
    }
    std::vector<std::string> reply = {"1.0", request_id, status, text, user, ""};
    for (size_t i = 0; i < reply.size(); ++i) {
      socket_.send(zmq::buffer(reply[i]),
                   i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

}  // namespace enoki::adapters
