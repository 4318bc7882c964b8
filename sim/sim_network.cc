// Simulated delivery of node-to-node and client messages.
#include "sim/sim_network.h"

#include <charconv>
#include <string_view>

#include "core/random.h"

namespace enoki::sim {

namespace {

constexpr std::string_view kClientPrefix = "client-";

// The number of a client id made by SimNetwork::Request ("client-N"); 0 for any other.
uint64_t ClientNumber(std::string_view client) {
  uint64_t n = 0;
  if (!client.starts_with(kClientPrefix)) return 0;
  client.remove_prefix(kClientPrefix.size());
  auto [end, ec] = std::from_chars(client.data(), client.data() + client.size(), n);
  return ec == std::errc() && end == client.data() + client.size() ? n : 0;
}

}  // namespace

class SimNetwork::SimTransport : public net::Transport {
 public:
  SimTransport(SimNetwork& net, std::string id, Routes& out)
      : net_(net), id_(std::move(id)), out_(out) {}
  void SetHandler(net::MessageHandler* handler) override { handler_ = handler; }
  bool SendToPeer(const std::string& to, proto::PeerMessage msg) override {
    auto it = out_.find(to);
    Route* route = it == out_.end() ? nullptr : &it->second;
    if (route == nullptr || route->to == nullptr) {  // the first message to `to`
      auto node = net_.transports_.find(to);
      if (node == net_.transports_.end()) return false;
      route = &net_.RouteIn(id_, out_, to);
      route->to = node->second.get();
    }
    net_.DeliverPeer(*this, *route, std::move(msg));
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
  void SetMessageCost(std::function<void(bool received)> charge) { charge_ = std::move(charge); }
  // Charges the node's CPU for a message it sends or receives.
  void Charge(bool received) const {
    if (charge_) charge_(received);
  }
  // The links from this node, by destination (an element of SimNetwork::links_).
  Routes& links_out() const { return out_; }
  // When what the node sends now leaves it: now, or once its CPU is free.
  core::TimePoint Departure(core::TimePoint now) const {
    return busy_until_ == nullptr ? now : std::max(now, *busy_until_);
  }

 private:
  SimNetwork& net_;
  std::string id_;
  Routes& out_;
  net::MessageHandler* handler_ = nullptr;
  bool up_ = false;
  const core::TimePoint* busy_until_ = nullptr;
  std::function<void(bool received)> charge_;
};

SimNetwork::SimNetwork(Simulator& sim, core::Duration default_delay)
    : sim_(sim), default_delay_(default_delay) {}

SimNetwork::~SimNetwork() = default;

net::Transport& SimNetwork::TransportOf(const std::string& id) {
  auto& t = transports_[id];
  if (!t) t = std::make_unique<SimTransport>(*this, id, links_[id]);
  return *t;
}

void SimNetwork::SetUp(const std::string& id, bool up) {
  static_cast<SimTransport&>(TransportOf(id)).SetUp(up);
}

void SimNetwork::SetBusyUntil(const std::string& id, const core::TimePoint* busy_until) {
  static_cast<SimTransport&>(TransportOf(id)).SetBusyUntil(busy_until);
}

void SimNetwork::SetMessageCost(const std::string& id, std::function<void(bool received)> charge) {
  static_cast<SimTransport&>(TransportOf(id)).SetMessageCost(std::move(charge));
}

SimNetwork::Route& SimNetwork::RouteOf(const std::string& from, const std::string& to) {
  return RouteIn(from, links_[from], to);
}

SimNetwork::Route& SimNetwork::RouteIn(const std::string& from, Routes& out,
                                       const std::string& to) {
  auto it = out.find(to);
  if (it == out.end()) {
    it =
        out.try_emplace(
               to, Route{net::LinkModel(net::LinkSpec{.delay = default_delay_},
                                        core::StreamSeed(sim_.seed(), "link/" + from + "->" + to))})
            .first;
  }
  return it->second;
}

void SimNetwork::SetLink(const std::string& from, const std::string& to,
                         const net::LinkSpec& spec) {
  RouteOf(from, to).model.Set(spec);
}

const net::LinkSpec& SimNetwork::Link(const std::string& from, const std::string& to) {
  return RouteOf(from, to).model.spec();
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

void SimNetwork::DeliverPeer(const SimTransport& from, Route& route, proto::PeerMessage msg) {
  from.Charge(false);
  SimTransport& to = *route.to;
  net::LinkModel* model = &route.model;
  auto arrival = model->Arrival(from.Departure(sim_.Now()), msg.ByteSizeLong());
  if (!arrival) {  // lost on the link, or the link is cut
    ++lost_;
    return;
  }
  sim_.Schedule(*arrival - sim_.Now(), [this, model, &to, msg = std::move(msg)]() mutable {
    // A cut made while the message was on its way loses it too.
    net::MessageHandler* handler = to.receiver();
    if (model->spec().cut || handler == nullptr) {
      ++lost_;
      return;
    }
    to.Charge(true);
    handler->OnPeerMessage(std::move(msg));
  });
}

void SimNetwork::Request(const std::string& from, const std::string& node, proto::Request request,
                         std::function<void(proto::Response&&)> on_reply) {
  uint64_t number = next_client_++;
  Route& link = RouteOf(from, node);
  if (link.to == nullptr) {
    link.to = static_cast<SimTransport*>(&TransportOf(node));
    link.back = &RouteIn(node, link.to->links_out(), from).model;
  }
  net::LinkModel* there = &link.model;
  auto arrival = there->Arrival(sim_.Now(), request.ByteSizeLong());
  if (!arrival) {
    ++lost_;
    return;
  }
  SimTransport* to = link.to;
  clients_.emplace(number, PendingClient{link.back, std::move(on_reply)});
  sim_.Schedule(*arrival - sim_.Now(),
                [this, there, to, number, request = std::move(request)]() mutable {
                  net::MessageHandler* handler = to->receiver();
                  if (there->spec().cut || handler == nullptr) {
                    ++lost_;
                    clients_.erase(number);
                    return;
                  }
                  to->Charge(true);
                  handler->OnClientRequest(std::string(kClientPrefix) + std::to_string(number),
                                           net::Caller{}, std::move(request));
                });
}

void SimNetwork::DeliverReply(const SimTransport& from, const net::ClientId& client,
                              proto::Response response) {
  uint64_t number = ClientNumber(client);
  auto pending = clients_.find(number);
  if (pending == clients_.end()) return;
  from.Charge(false);
  net::LinkModel* back = pending->second.back;
  auto arrival = back->Arrival(from.Departure(sim_.Now()), response.ByteSizeLong());
  if (!arrival) {
    ++lost_;
    clients_.erase(pending);
    return;
  }
  sim_.Schedule(*arrival - sim_.Now(),
                [this, number, back, response = std::move(response)]() mutable {
                  auto it = clients_.find(number);
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
