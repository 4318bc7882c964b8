// Forwarding: a node that holds no ready replica of a keygroup runs the item operation at the
// nearest replica (lowest measured round-trip time among live peers), trying the next one when one
// fails or does not answer in time. The same path runs a request at one named peer (ExecuteAt,
// for functions).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "node/core.h"
#include "node/peers.h"

namespace enoki::node {

class Forwarding {
 public:
  Forwarding(Core& core, const PeerTable& peers);

  // Runs the item operation `request` on `kg` at its nearest other replica.
  void Forward(const Keygroup& kg, proto::Request&& request, Done done);
  // Runs `request` at the first of `peers` that answers within `timeout` (each); UNAVAILABLE
  // when none did.
  void At(std::vector<std::string> peers, proto::Request&& request, core::Duration timeout,
          Done done);
  void OnForwardResponse(const std::string& from, proto::ForwardResponse& msg);

 private:
  struct PendingForward {
    proto::Request request;
    Done done;
    std::vector<std::string> candidates;
    size_t next = 0;
    std::vector<std::string> failures;
    core::TimerId timer = 0;
    core::Duration timeout{};  // per attempt
  };
  void Begin(std::vector<std::string> candidates, core::Duration timeout, proto::Request&& request,
             Done done);
  void TryNext(uint64_t forward_id);

  Core& core_;
  const PeerTable& peers_;
  std::map<uint64_t, PendingForward> forwards_;
};

}  // namespace enoki::node
