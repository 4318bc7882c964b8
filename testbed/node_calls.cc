// The calls of a real-time run to node processes, and the loop that drives it.
#include "testbed/node_calls.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/random.h"
#include "net/codec.h"
#include "testbed/report.h"

namespace enoki::testbed {

using core::Duration;
using core::TimePoint;

NodeCalls::NodeCalls(const Scenario& s, adapters::EventLoop& loop, Driver& driver,
                     ClientLinks links)
    : s_(s), loop_(loop), driver_(driver), links_(links) {}

void NodeCalls::ConnectNode(const std::string& id, const std::string& endpoint,
                            const adapters::ClientKeys& keys) {
  NodeSocket& n = nodes_[id];
  n.endpoint = endpoint;
  n.keys = keys;
  n.control = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  n.control->set(zmq::sockopt::linger, 0);
  adapters::UseClientKeys(*n.control, keys);
  n.control->connect(endpoint);
  loop_.AddSocket(*n.control, [this, id] { OnControlReplies(id); });
}

void NodeCalls::ConnectCallers(
    const std::function<std::string(const std::string&, const std::string&)>& endpoint) {
  for (const auto& d : s_.workloads) {
    std::string at = endpoint(d.client, d.node);
    if (at.empty()) continue;
    for (const Pair& p : {Pair{d.client, d.node}, Pair{d.node, d.client}}) {
      client_links_.try_emplace(p, shaped() ? driver_.Current(p) : net::LinkSpec{},
                                core::StreamSeed(s_.seed, "link/" + p.first + "->" + p.second));
    }
    Pair path{d.client, d.node};
    if (callers_.contains(path)) continue;
    auto& socket = callers_[path];
    socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::immediate, 1);  // a node that is down refuses at once
    adapters::UseClientKeys(*socket, nodes_.at(d.node).keys);
    socket->connect(at);
    loop_.AddSocket(*socket, [this, path] { OnReplies(path); });
  }
}

void NodeCalls::AwaitCallers(core::TimePoint deadline, std::function<void(core::Status)> ready) {
  std::string waiting;
  for (auto& [path, socket] : callers_) {
    bool writable = socket->get(zmq::sockopt::events) & ZMQ_POLLOUT;
    loop_.Touched(*socket);  // asking took in the socket's signal: the loop asks it again
    if (!writable) {
      waiting = "from client '" + path.first + "' to node '" + path.second + "'";
      break;
    }
  }
  if (waiting.empty()) return ready(core::Status::Ok());
  if (loop_.Now() >= deadline) {
    return ready(core::Status::Unavailable(
        "the callers " + waiting + " were not connected after " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(kCallersConnectLimit).count()) +
        " s: the node is not reachable from here"));
  }
  loop_.Schedule(std::chrono::milliseconds(20),
                 [this, deadline, ready = std::move(ready)]() mutable {
                   AwaitCallers(deadline, std::move(ready));
                 });
}

void NodeCalls::Call(const std::string& from, const std::string& node, proto::Request request,
                     Driver::Mode::OnReply on_reply) {
  uint64_t id = next_call_++;
  request.set_id(id);
  request.set_to(node);
  std::string frame;
  net::EncodeEnvelope(request, &frame);
  if (from.empty()) {
    if (down(node) || !loop_.Send(*nodes_.at(node).control, zmq::buffer(frame))) {
      return on_reply(core::Status::Unavailable("node " + node + " is not reachable"));
    }
    calls_.emplace(id, PendingCall{node, true, std::move(on_reply)});
    return;
  }
  Pair path{from, node};
  TimePoint now = loop_.Now();
  auto arrival = client_links_.at(path).Arrival(now, frame.size());
  if (!arrival) return;  // lost on the way: the caller's timeout ends it
  // On this host, handed to the node ahead of its arrival, which the node waits for
  // (net::kDeliveryLead).
  bool stamp = links_ == ClientLinks::kSameHost;
  if (stamp) net::AppendEnvelopeTime(proto::Envelope::kDeliverAtNsFieldNumber, *arrival, &frame);
  calls_.emplace(id, PendingCall{node, false, std::move(on_reply)});
  Duration lead = stamp ? net::kDeliveryLead : Duration(0);
  loop_.Schedule(*arrival - lead - now, [this, path, id, frame = std::move(frame)] {
    auto call = calls_.find(id);
    if (CutInProcess(path)) {  // cut while on the way
      calls_.erase(call);
      return;
    }
    if (!loop_.Send(*callers_.at(path), zmq::buffer(frame))) {
      Driver::Mode::OnReply on_reply = std::move(call->second.on_reply);
      calls_.erase(call);
      on_reply(core::Status::Unavailable("node " + path.second + " is not reachable"));
      return;
    }
    call->second.sent = true;
  });
}

void NodeCalls::SetLink(const Pair& p, const net::LinkSpec& spec) {
  auto link = client_links_.find(p);
  if (link != client_links_.end() && shaped()) link->second.Set(spec);
}

void NodeCalls::AskLink(const Pair& p, const net::LinkSpec& spec) {
  if (down(p.first)) return;
  proto::Request r;
  r.mutable_set_link()->set_peer(p.second);
  r.mutable_set_link()->set_spec(spec.ToString());
  r.mutable_set_link()->set_over_network(links_ == ClientLinks::kOverNetwork);
  Call("", p.first, std::move(r), [this, p](core::Result<proto::Response> answer) {
    if (!answer.ok()) {
      driver_.Record("error", "cannot change link " + p.first + " -> " + p.second + ": " +
                                  answer.status().message());
    } else if (answer->code() != proto::OK) {
      driver_.Record("error", "node " + p.first + " refused a link change: " + answer->error());
    }
  });
}

void NodeCalls::MarkDown(const std::string& node) {
  down_.insert(node);
  // Those still on their way in this process are refused when they reach its socket, or
  // answered after a restart.
  std::erase_if(calls_, [&](const auto& c) { return c.second.sent && c.second.node == node; });
}

Driver::Mode::OnReply NodeCalls::TakeCall(const proto::Response& response) {
  auto it = calls_.find(response.id());
  if (it == calls_.end()) return nullptr;
  PendingCall call = std::move(it->second);
  calls_.erase(it);
  if (response.node() == call.node) return std::move(call.on_reply);
  call.on_reply(core::Status::Internal("node '" + response.node() + "' answered request " +
                                       std::to_string(response.id()) + " sent to node " +
                                       call.node + " at " + nodes_.at(call.node).endpoint));
  return nullptr;
}

void NodeCalls::OnReplies(const Pair& path) {
  const Pair back{path.second, path.first};
  zmq::message_t msg;
  while (callers_.at(path)->recv(msg, zmq::recv_flags::dontwait)) {
    proto::Envelope env;
    if (!env.ParseFromArray(msg.data(), static_cast<int>(msg.size())) || !env.has_response()) {
      continue;
    }
    Driver::Mode::OnReply on_reply = TakeCall(env.response());
    if (!on_reply) continue;
    TimePoint now = loop_.Now();
    // On this host, the response's way over the link starts when the node sent it, not when
    // this loop noticed it (the same clock, CLOCK_MONOTONIC); from another host, whose clock is
    // not this one's, when it came (the real network's way is then behind it).
    TimePoint sent = links_ == ClientLinks::kSameHost && env.sent_at_ns() > 0
                         ? TimePoint(Duration(env.sent_at_ns()))
                         : now;
    auto arrival = client_links_.at(back).Arrival(std::min(sent, now), msg.size());
    if (!arrival) continue;  // lost on the way back: the caller's timeout ends it
    loop_.Schedule(*arrival - now, [this, back, arrival = *arrival, on_reply = std::move(on_reply),
                                    response = std::move(*env.mutable_response())] {
      if (CutInProcess(back)) return;  // cut while on the way
      // A shaped answer handed to its caller after its arrival time: late (also when this loop
      // noticed it only after that time).
      if (shaped()) loop_.delivery_lateness().Record(loop_.Now() - arrival);
      on_reply(response);
    });
  }
}

void NodeCalls::OnControlReplies(const std::string& node) {
  zmq::message_t msg;
  while (nodes_.at(node).control->recv(msg, zmq::recv_flags::dontwait)) {
    proto::Envelope env;
    if (!env.ParseFromArray(msg.data(), static_cast<int>(msg.size())) || !env.has_response()) {
      driver_.Record("error", "node " + node + " sent a malformed answer");
      continue;
    }
    if (auto on_reply = TakeCall(env.response())) on_reply(std::move(*env.mutable_response()));
  }
}

namespace {

// Every 50 ms: checks for a stop and for the end; while the workloads run, `while_running` and,
// every second, the progress line.
struct Ticker {
  adapters::EventLoop& loop;
  Driver& driver;
  const std::function<bool()>& stop_requested;
  bool progress;
  const std::function<void()>& while_running;
  TimePoint next_progress{};
  bool interrupted = false;

  void Tick() {
    Driver::Phase phase = driver.phase();
    if (stop_requested()) {  // first: a Ctrl-C at the terminal also ends the nodes
      interrupted = phase < Driver::Phase::kChecking;
      loop.Stop();
      return;
    }
    if (phase == Driver::Phase::kFinished) {
      loop.Stop();
      return;
    }
    if (phase == Driver::Phase::kRunning) {
      if (while_running) while_running();
      if (loop.Now() >= next_progress) {
        next_progress = loop.Now() + std::chrono::seconds(1);
        std::vector<double> recent = driver.TakeRecentMs();
        std::sort(recent.begin(), recent.end());
        if (progress) {
          std::fprintf(stderr, "\r[%6.1fs] %zu requests, %lld errors, p50 %.2f ms (last second)   ",
                       core::ToMillis(loop.Now() - driver.start()) / 1000, driver.requests().size(),
                       static_cast<long long>(driver.errors()), Percentile(recent, 0.5));
        }
      }
    }
    loop.Schedule(std::chrono::milliseconds(50), [this] { Tick(); });
  }
};

}  // namespace

bool DriveOnLoop(adapters::EventLoop& loop, Driver& driver,
                 const std::function<bool()>& stop_requested, bool progress,
                 const std::function<void()>& while_running) {
  driver.KeepRecent(progress);
  Ticker ticker{loop, driver, stop_requested, progress, while_running};
  ticker.Tick();
  loop.Run();
  if (progress) std::fprintf(stderr, "\n");
  return ticker.interrupted;
}

}  // namespace enoki::testbed
