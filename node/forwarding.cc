// Forwarding: item operations and function calls run at another node.
#include "node/forwarding.h"

#include <algorithm>

namespace enoki::node {

Forwarding::Forwarding(Core& core, const PeerTable& peers) : core_(core), peers_(peers) {}

void Forwarding::Forward(const Keygroup& kg, proto::Request&& request, Done done) {
  // A write to a synchronous keygroup may take the replica its own sync timeout to answer.
  core::Duration timeout = core_.options().forward_timeout;
  if (kg.meta.mode() == proto::SYNC && request.op_case() != proto::Request::kGet &&
      request.op_case() != proto::Request::kScan) {
    timeout += core_.options().sync_write_timeout;
  }
  Begin(peers_.NearestReplicas(kg.meta), timeout, std::move(request), std::move(done));
}

void Forwarding::At(std::vector<std::string> peers, proto::Request&& request,
                    core::Duration timeout, Done done) {
  Begin(std::move(peers), timeout, std::move(request), std::move(done));
}

void Forwarding::Begin(std::vector<std::string> candidates, core::Duration timeout,
                       proto::Request&& request, Done done) {
  uint64_t id = core_.NextOpId();
  PendingForward& f = forwards_[id];
  f.candidates = std::move(candidates);
  f.timeout = timeout;
  f.request = std::move(request);
  f.done = std::move(done);
  TryNext(id);
}

void Forwarding::TryNext(uint64_t id) {
  auto it = forwards_.find(id);
  PendingForward& f = it->second;
  if (f.next >= f.candidates.size()) {
    PendingForward failed = std::move(f);
    forwards_.erase(it);
    std::string tried;
    for (const auto& s : failed.failures) tried += (tried.empty() ? "" : "; ") + s;
    const std::string& keygroup = KeygroupOf(failed.request);
    std::string what = keygroup.empty()
                           ? "node " + failed.candidates.front() + " did not serve the request"
                           : "no replica of '" + keygroup + "' could serve the request";
    return core_.Fail(failed.done, ResponseTo(failed.request, core_.id()),
                      core::Status::Unavailable(what + (tried.empty() ? "" : " (" + tried + ")")));
  }
  proto::PeerMessage msg;
  msg.mutable_forward_request()->set_id(id);
  *msg.mutable_forward_request()->mutable_request() = f.request;
  core_.Send(f.candidates[f.next], std::move(msg));
  f.timer = core_.After(f.timeout, [this, id] {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;
    it->second.failures.push_back(it->second.candidates[it->second.next] + ": no answer");
    ++it->second.next;
    TryNext(id);
  });
}

void Forwarding::OnForwardResponse(const std::string& from, proto::ForwardResponse& msg) {
  auto it = forwards_.find(msg.id());
  if (it == forwards_.end()) return;  // answered already, or gave up
  PendingForward& f = it->second;
  // An answer from the replica asked now, or a late one from a replica asked before (which then
  // did run the request: it is the answer).
  auto asked = f.candidates.begin() + static_cast<long>(std::min(f.next + 1, f.candidates.size()));
  if (std::find(f.candidates.begin(), asked, from) == asked) return;
  bool current = f.next < f.candidates.size() && f.candidates[f.next] == from;
  proto::Response& response = *msg.mutable_response();
  if (response.code() == proto::UNAVAILABLE) {
    if (!current) return;  // that replica was already given up on
    core_.CancelTimer(f.timer);
    f.failures.push_back(from + ": " + response.error());
    ++f.next;
    TryNext(it->first);
    return;
  }
  core_.CancelTimer(f.timer);
  response.set_id(f.request.id());
  // The answer depends on no write of this node's.
  core_.Complete(f.done, std::move(response), core_.durable_seq());
  forwards_.erase(it);
}

}  // namespace enoki::node
