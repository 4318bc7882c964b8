// Scenario: what a scenario file declares (docs/scenarios.md is the reference): the nodes and their
// tiers, the links, keygroups and functions, the workloads, the timeline, and the run's settings.
// LoadScenario reads and validates a file completely before anything starts; every error names
// the file, the line and column, and the field ("simple.yaml:14:9: nodes[2].tier: 'fog' is not
// one of cloud, edge, client").
#pragma once

#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "net/link_model.h"
#include "net/proto/enoki.pb.h"
#include "sim/cost_model.h"
#include "testbed/body_template.h"

namespace enoki::testbed {

enum class Tier { kCloud, kEdge, kClient };
const char* TierName(Tier tier);
// The key of Scenario::tier_links for tiers a and b, in either order.
inline std::pair<Tier, Tier> TierPair(Tier a, Tier b) {
  return a < b ? std::pair(a, b) : std::pair(b, a);
}

struct NodeDecl {
  std::string name;
  Tier tier = Tier::kEdge;
  std::vector<int> cpus;  // cloud and edge: the host CPUs its process may run on (empty: any)
  // Cloud and edge: how long a request it sends to another replica waits for an answer, whole
  // milliseconds (empty: the node's default, node::NodeOptions::forward_timeout).
  std::optional<core::Duration> forward_timeout;
};

// A link declared between two nodes, the same both ways.
struct LinkDecl {
  std::string a, b;
  net::LinkSpec spec;
};

struct KeygroupDecl {
  std::string name;
  std::vector<std::string> replicas;
  proto::ReplicationMode mode = proto::ASYNC;
  proto::Mutability mutability = proto::MUTABLE;
};

// One function, deployed under the same name at each of `nodes`. A name may have several
// entries (different handlers, keygroups or parameters), at different nodes.
struct FunctionDecl {
  proto::FunctionSpec spec;  // name, runtime, handler (a process path made absolute), keygroup...
  std::vector<std::string> nodes;
  // Simulation only: the compute time of one invocation (the emulation's is real). A process
  // function needs one there; a native function without one has the calibrated cost.
  std::optional<sim::CostModel> cost;
};

// Callers at a client node calling one function at one node. Open loop: each caller sends `rate`
// requests per second whatever the answers; closed loop (no rate): each caller sends its next
// request `think` after the answer to the previous one. Each caller stops after `requests`, or at
// `duration` after `start`.
struct WorkloadDecl {
  std::string name;
  std::string client;  // a client-tier node
  std::string function;
  std::string node;  // where the function is called
  int callers = 1;
  std::optional<double> rate;  // per caller, per second
  bool poisson = false;        // open loop: exponential gaps of mean 1/rate, not a fixed period
  core::Duration think{0};
  std::optional<int64_t> requests;  // per caller
  std::optional<core::Duration> duration;
  core::Duration start{0};
  // The request body: the template with {caller}, {seq}, {int:A:B} and {random:N} filled in per
  // request (docs/scenarios.md).
  std::string body;
  std::vector<BodyPart> body_parts;
  // A workload of the same function whose writes this one's reads are judged against: the paper's
  // staleness at the client (testbed/staleness.h); empty: none.
  std::string stale_against;
};

struct TimelineEvent {
  enum class Kind { kLink, kPartition, kHeal, kCrash, kRestart, kPhase };
  core::Duration at{0};
  Kind kind = Kind::kPhase;
  LinkDecl link;                                 // kLink: the new link between two nodes
  std::vector<std::vector<std::string>> groups;  // kPartition: nodes in different groups are cut
  std::string node;                              // kCrash, kRestart
  std::string phase;                             // kPhase: its name
};

struct Scenario {
  std::string file;  // as given
  std::string text;  // the file's text, as read
  std::string name;
  std::string description;
  uint64_t seed = 1;
  core::Duration warmup{0};
  std::string results = "results";  // directory for the run's database
  // Whether the nodes trace their writes and their functions' store operations (the writes and
  // kv_ops tables: replication lag, staleness). At a million invocations, writing the traces
  // takes longer than simulating them.
  bool traces = true;
  // Simulation only: the time one commit of a node's store takes (default: calibrated).
  std::optional<sim::CostModel> commit_cost;
  // Whether the nodes' links and their clients' are ZeroMQ CURVE (`security: curve`): emulation
  // then starts every node with keys; a simulation charges `security_cost` (if given) to a
  // node's CPU for each message it sends and each it receives, and nothing otherwise.
  bool curve = false;
  std::optional<sim::CostModel> security_cost;
  std::vector<NodeDecl> nodes;
  std::map<std::pair<Tier, Tier>, net::LinkSpec> tier_links;  // defaults, keyed (lower, higher)
  std::vector<LinkDecl> links;
  std::vector<KeygroupDecl> keygroups;
  std::vector<FunctionDecl> functions;
  std::vector<WorkloadDecl> workloads;
  std::vector<TimelineEvent> timeline;  // in time order

  // Where the loader put each node (by name) and each deployment (function name, node), for
  // FindNode and FindFunction.
  std::map<std::string, size_t> node_index;
  std::map<std::pair<std::string, std::string>, size_t> function_index;

  const NodeDecl* FindNode(const std::string& name) const;
};

// The entry of function `name` deployed at `node`, or nullptr.
const FunctionDecl* FindFunction(const Scenario& scenario, const std::string& name,
                                 const std::string& node);

// Reads and validates a scenario file. Relative process handler paths are taken from the
// file's folder.
core::Result<Scenario> LoadScenario(const std::string& path);
// The same, from text (`file` names it in errors; relative paths are taken from its folder).
core::Result<Scenario> ParseScenario(const std::string& text, const std::string& file);

}  // namespace enoki::testbed
