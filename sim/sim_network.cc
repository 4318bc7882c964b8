// Simulated delivery of node-to-node and client messages.
#include "sim/sim_network.h"

#include "core/random.h"

namespace enoki::sim {

class SimNetwork::SimTransport : public net::Transport {
 public:
  SimTransport(SimNetwork& net, std::string id) : net_(net), id_(std::move(id)) {}
  void SetHandler(net::MessageHandler* handler) override { handler_ = handler; }
  bool SendToPeer(const std::string& to, proto::PeerMessage msg) override {
    auto it = net_.transports_.find(to);
    if (it == net_.transports_.end()) return false;
    net_.DeliverPeer(*this, *it->second, std::move(msg));
    return true;
  }
  void ReplyToClient(const net::ClientId& client, proto::Response response) override {
    net_.DeliverReply(*this, client, std::move(response));
  }
  // Nothing to do: the simulated network reaches every node by its id, with no endpoints, keys
  // or connections; a node that left is no longer sent to by the nodes themselves.
  void SetPeer(const proto::Member&) override {}
  const std::string& id() const { return id_; }
  // The handler, while the node is up; else nullptr.
  net::MessageHandler* receiver() const { return up_ ? handler_ : nullptr; }
  void SetUp(bool up) { up_ = up; }
  void SetBusyUntil(const core::TimePoint* busy_until) { busy_until_ = busy_until; }
  // The links from this node, by destination (an element of SimNetwork::links_).
  void SetLinksOut(std::unordered_map<std::string, net::LinkModel>* out) { out_ = out; }
  std::unordered_map<std::string, net::LinkModel>& links_out() const { return *out_; }
  // When what the node sends now leaves it: now, or once its CPU is free.
  core::TimePoint Departure(core::TimePoint now) const {
    return busy_until_ == nullptr ? now : std::max(now, *busy_until_);
  }

 private:
  SimNetwork& net_;
  std::string id_;
  net::MessageHandler* handler_ = nullptr;
  bool up_ = false;
  const core::TimePoint* busy_until_ = nullptr;
  std::unordered_map<std::string, net::LinkModel>* out_ = nullptr;
};

SimNetwork::SimNetwork(Simulator& sim, core::Duration default_delay)
    : sim_(sim), default_delay_(default_delay) {}

SimNetwork::~SimNetwork() = default;

net::Transport& SimNetwork::TransportOf(const std::string& id) {
  auto& t = transports_[id];
  if (!t) {
    t = std::make_unique<SimTransport>(*this, id);
    t->SetLinksOut(&links_[id]);
  }
  return *t;
}

void SimNetwork::SetUp(const std::string& id, bool up) {
  static_cast<SimTransport&>(TransportOf(id)).SetUp(up);
}

void SimNetwork::SetBusyUntil(const std::string& id, const core::TimePoint* busy_until) {
  static_cast<SimTransport&>(TransportOf(id)).SetBusyUntil(busy_until);
}

net::LinkModel& SimNetwork::ModelOf(const std::string& from, const std::string& to) {
  return ModelIn(from, links_[from], to);
}

net::LinkModel& SimNetwork::ModelIn(const std::string& from,
                                    std::unordered_map<std::string, net::LinkModel>& out,
                                    const std::string& to) {
  auto it = out.find(to);
  if (it == out.end()) {
    it = out.try_emplace(to, net::LinkSpec{.delay = default_delay_},
                         core::StreamSeed(sim_.seed(), "link/" + from + "->" + to))
             .first;
  }
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

void SimNetwork::DeliverPeer(const SimTransport& from, SimTransport& to, proto::PeerMessage msg) {
  if (charge_) charge_(from.id(), false);
  net::LinkModel* link = &ModelIn(from.id(), from.links_out(), to.id());
  auto arrival = link->Arrival(from.Departure(sim_.Now()), msg.ByteSizeLong());
  if (!arrival) {  // lost on the link, or the link is cut
    ++lost_;
    return;
  }
  sim_.Schedule(*arrival - sim_.Now(), [this, link, &to, msg = std::move(msg)]() mutable {
    // A cut made while the message was on its way loses it too.
    net::MessageHandler* handler = to.receiver();
    if (link->spec().cut || handler == nullptr) {
      ++lost_;
      return;
    }
    if (charge_) charge_(to.id(), true);
    handler->OnPeerMessage(std::move(msg));
  });
}

void SimNetwork::Request(const std::string& from, const std::string& node, proto::Request request,
                         std::function<void(proto::Response&&)> on_reply) {
  net::ClientId client = "client-" + std::to_string(next_client_++);
  net::LinkModel* there = &ModelOf(from, node);
  auto arrival = there->Arrival(sim_.Now(), request.ByteSizeLong());
  if (!arrival) {
    ++lost_;
    return;
  }
  auto* to = static_cast<SimTransport*>(&TransportOf(node));
  clients_.emplace(client, PendingClient{&ModelOf(node, from), std::move(on_reply)});
  sim_.Schedule(*arrival - sim_.Now(),
                [this, there, to, client, request = std::move(request)]() mutable {
                  net::MessageHandler* handler = to->receiver();
                  if (there->spec().cut || handler == nullptr) {
                    ++lost_;
                    clients_.erase(client);
                    return;
                  }
                  if (charge_) charge_(to->id(), true);
                  handler->OnClientRequest(client, net::Caller{}, std::move(request));
                });
}

void SimNetwork::DeliverReply(const SimTransport& from, const net::ClientId& client,
                              proto::Response response) {
  auto pending = clients_.find(client);
  if (pending == clients_.end()) return;
  if (charge_) charge_(from.id(), false);
  net::LinkModel* back = pending->second.back;
  auto arrival = back->Arrival(from.Departure(sim_.Now()), response.ByteSizeLong());
  if (!arrival) {
    ++lost_;
    clients_.erase(pending);
    return;
  }
  sim_.Schedule(*arrival - sim_.Now(),
                [this, client, back, response = std::move(response)]() mutable {
                  auto it = clients_.find(client);
                  if (it == clients_.end()) return;
                  auto fn = std::move(it->second.on_reply);
                  clients_.erase(it);
                  if (back->spec().cut) {
                    ++lost_;
                    return;
                  }
                  fn(std::move(response));
                });
}

}  // namespace enoki::sim
