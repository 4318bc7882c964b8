// Simulated delivery of node-to-node and client messages.
#include "sim/sim_network.h"

namespace enoki::sim {

class SimNetwork::SimTransport : public net::Transport {
 public:
  SimTransport(SimNetwork& net, std::string id) : net_(net), id_(std::move(id)) {}
  void SetHandler(net::MessageHandler* handler) override { handler_ = handler; }
  bool SendToPeer(const std::string& to, const proto::PeerMessage& msg) override {
    if (!net_.transports_.contains(to)) return false;
    net_.DeliverPeer(id_, to, msg);
    return true;
  }
  void ReplyToClient(const net::ClientId& client, const proto::Response& response) override {
    net_.DeliverReply(client, response);
  }
  net::MessageHandler* handler() const { return handler_; }

 private:
  SimNetwork& net_;
  std::string id_;
  net::MessageHandler* handler_ = nullptr;
};

SimNetwork::SimNetwork(Simulator& sim, core::Duration default_delay)
    : sim_(sim), default_delay_(default_delay) {}

SimNetwork::~SimNetwork() = default;

net::Transport& SimNetwork::TransportOf(const std::string& id) {
  auto& t = transports_[id];
  if (!t) t = std::make_unique<SimTransport>(*this, id);
  return *t;
}

void SimNetwork::SetUp(const std::string& id, bool up) {
  if (up) {
    up_.insert(id);
  } else {
    up_.erase(id);
  }
}

net::LinkModel& SimNetwork::ModelOf(const std::string& from, const std::string& to) {
  auto [it, created] = links_.try_emplace({from, to});
  if (created) it->second.Set({.delay = default_delay_});
  return it->second;
}

void SimNetwork::SetLink(const std::string& from, const std::string& to,
                         const net::LinkSpec& spec) {
  ModelOf(from, to).Set(spec);
}

const net::LinkSpec& SimNetwork::Link(const std::string& from, const std::string& to) {
  return ModelOf(from, to).spec();
}

void SimNetwork::SetDelay(const std::string& a, const std::string& b, core::Duration delay) {
  for (auto [from, to] : {std::pair(a, b), std::pair(b, a)}) {
    net::LinkSpec spec = Link(from, to);
    spec.delay = delay;
    SetLink(from, to, spec);
  }
}

void SimNetwork::SetCut(const std::string& a, const std::string& b, bool cut) {
  for (auto [from, to] : {std::pair(a, b), std::pair(b, a)}) {
    net::LinkSpec spec = Link(from, to);
    spec.cut = cut;
    SetLink(from, to, spec);
  }
}

void SimNetwork::DeliverPeer(const std::string& from, const std::string& to,
                             proto::PeerMessage msg) {
  auto arrival = ModelOf(from, to).Arrival(sim_.Now(), msg.ByteSizeLong(), sim_.Rng());
  if (!arrival) {  // lost on the link, or the link is cut
    ++lost_;
    return;
  }
  sim_.Schedule(*arrival - sim_.Now(), [this, from, to, msg = std::move(msg)]() mutable {
    // A cut made while the message was on its way loses it too.
    auto it = transports_.find(to);
    if (ModelOf(from, to).spec().cut || !up_.contains(to) || it->second->handler() == nullptr) {
      ++lost_;
      return;
    }
    it->second->handler()->OnPeerMessage(std::move(msg));
  });
}

void SimNetwork::Request(const std::string& from, const std::string& node, proto::Request request,
                         std::function<void(proto::Response&&)> on_reply) {
  net::ClientId client = "client-" + std::to_string(next_client_++);
  auto arrival = ModelOf(from, node).Arrival(sim_.Now(), request.ByteSizeLong(), sim_.Rng());
  if (!arrival) {
    ++lost_;
    return;
  }
  clients_.emplace(client, PendingClient{from, node, std::move(on_reply)});
  sim_.Schedule(*arrival - sim_.Now(),
                [this, from, node, client, request = std::move(request)]() mutable {
                  auto it = transports_.find(node);
                  if (ModelOf(from, node).spec().cut || it == transports_.end() ||
                      !up_.contains(node) || it->second->handler() == nullptr) {
                    ++lost_;
                    clients_.erase(client);
                    return;
                  }
                  it->second->handler()->OnClientRequest(client, std::move(request));
                });
}

void SimNetwork::DeliverReply(const net::ClientId& client, proto::Response response) {
  auto pending = clients_.find(client);
  if (pending == clients_.end()) return;
  std::string host = pending->second.host, node = pending->second.node;
  auto arrival = ModelOf(node, host).Arrival(sim_.Now(), response.ByteSizeLong(), sim_.Rng());
  if (!arrival) {
    ++lost_;
    clients_.erase(pending);
    return;
  }
  sim_.Schedule(*arrival - sim_.Now(),
                [this, client, host, node, response = std::move(response)]() mutable {
                  auto it = clients_.find(client);
                  if (it == clients_.end()) return;
                  auto fn = std::move(it->second.on_reply);
                  clients_.erase(it);
                  if (ModelOf(node, host).spec().cut) {
                    ++lost_;
                    return;
                  }
                  fn(std::move(response));
                });
}

}  // namespace enoki::sim
