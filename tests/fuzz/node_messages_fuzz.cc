// Fuzzer of a node's message handling (libFuzzer; docs/testing.md): the input is the payload of one
// ZeroMQ frame, parsed as an Envelope as the transport parses it, and delivered as the transport
// delivers it to a node of a simulated cluster of three: a peer message to the node's peer
// handling (checks, replication, catalog, joining, forwarding, membership), a request to its
// client handling; then the simulation runs a bounded virtual time, so that what the message set
// off (replies, replication, retries, timers) runs too. It goes to node b, which holds a replica
// of keygroup kg, and then to node c, which holds none and forwards. Inputs that are no Envelope
// are refused as the transport refuses them. Any sanitizer finding, assertion or hang is a bug.
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "net/proto/enoki.pb.h"
#include "sim/cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;

// Virtual time each delivery is given to settle: longer than the nodes' ping interval and the
// forwarding timeout's first retries, short enough to keep an input at a few milliseconds.
constexpr milliseconds kSettle{3000};

// The cluster every input starts from: a, b and c, all peers, 5 ms apart; kg replicated on a
// and b, created through a and settled.
void SetUp(sim::SimCluster& cluster) {
  proto::Request create;
  create.mutable_create_keygroup()->set_name("kg");
  create.mutable_create_keygroup()->add_replicas("a");
  create.mutable_create_keygroup()->add_replicas("b");
  auto created = cluster.Call("a", std::move(create));
  assert(created && created->code() == proto::OK && "the fixture itself broke");
  cluster.sim().RunFor(milliseconds(100));
}

// Hands `envelope` to node `id` as the transport would (adapters/zmq_transport.cc, Dispatch):
// a peer message without sender or body is dropped there, so it is here.
void Deliver(sim::SimCluster& cluster, const std::string& id, const proto::Envelope& envelope) {
  switch (envelope.kind_case()) {
    case proto::Envelope::kRequest:
      cluster.Call(id, envelope.request(), kSettle);
      break;
    case proto::Envelope::kPeer: {
      if (envelope.peer().from().empty() || envelope.peer().body_case() == 0) return;
      proto::PeerMessage msg = envelope.peer();
      cluster.sim().Schedule(core::Duration(0), [&cluster, id, msg = std::move(msg)]() mutable {
        if (cluster.up(id)) cluster.node(id).OnPeerMessage(std::move(msg));
      });
      break;
    }
    default:
      return;  // a response, or nothing: the transport answers with an error
  }
  cluster.sim().RunFor(kSettle);
}

}  // namespace
}  // namespace enoki

// The nodes' logs (a few lines per input) and protobuf's (a string field that is not UTF-8)
// would only slow the fuzzer down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace enoki;
  proto::Envelope envelope;
  // Not an Envelope: refused before any node sees it; -1 keeps it out of the corpus.
  if (!envelope.ParseFromArray(data, static_cast<int>(size))) return -1;
  sim::SimCluster cluster(sim::AllPeers({"a", "b", "c"}), 1, milliseconds(5));
  SetUp(cluster);
  Deliver(cluster, "b", envelope);
  Deliver(cluster, "c", envelope);
  return 0;
}
