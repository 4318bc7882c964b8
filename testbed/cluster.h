// The cluster mode: runs a scenario on nodes that are running already, on this host or on others
// (`enoki run SCENARIO --cluster CLUSTER.yaml`). A cluster file (docs/real-machines.md, "A
// scenario on running nodes") maps each cloud and edge node of the scenario to a running node:
// its endpoint and, when the nodes have keys, its public key, with this run's client key pair
// (CURVE) that every node's access file admits with every permission. The client nodes' callers
// run in this process, on one event loop, and reach the nodes over the real network (NodeCalls,
// shaped here), or on the client hosts the file names (testbed/client_host.h), which this
// process starts and whose requests it gathers at the end. Before anything runs, every node must
// answer its status under the scenario's name for it and hold none of the scenario's keygroups;
// then the run measures the real network's round trips and has every link shaped on top of it
// (testbed/cluster_network.h): the nodes' shapers for the links between nodes, this process for the
// clients'. Then the same Driver as the emulation's creates the keygroups, deploys the functions,
// runs the workloads and the timeline (link changes and partitions through the shapers, crashes and
// restarts through the cluster file's commands) and checks the replicas, and the run writes a
// results database of the usual schema, mode `cluster`, with the nodes' traces fetched over their
// API and moved to this process's clock (testbed/remote_traces.h), so that replication lag and
// staleness come with the bound of the clocks' alignment, and with how each process (this one,
// the nodes, the client hosts) kept up over the run (testbed/process_loads.h). Afterwards, the
// nodes' links are unshaped again.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>

#include "adapters/client.h"
#include "adapters/curve.h"
#include "core/status.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

// A running node the scenario's node of the same name is.
struct ClusterNode {
  std::string endpoint;    // tcp://HOST:PORT or ipc://PATH
  std::string public_key;  // Z85; empty: the node has no keys
  // Shell commands (sh -c, run on this host) that crash the node as SIGKILL would and start it
  // again on its data, for the timeline's crash and restart events; empty: none given.
  std::string crash, restart;
};

// A client host: a process on another host, `enoki run SCENARIO --cluster FILE --client NAME`
// started there, that runs the callers of some of the scenario's client nodes for the driver
// (testbed/client_host.h). With keys it listens with the run's identity as its own key pair and
// admits the identity alone; without, on loopback only.
struct ClientHost {
  std::string endpoint;           // where it listens for the driver: tcp://HOST:PORT or ipc://PATH
  std::set<std::string> clients;  // the client nodes whose callers run there
};

// A cluster file, read and checked against a scenario.
struct ClusterFile {
  std::string file;
  std::map<std::string, ClusterNode> nodes;        // every cloud and edge node of the scenario
  std::map<std::string, ClientHost> client_hosts;  // by name (`clients:`); none: all here
  adapters::KeyPair identity;                      // this run's client keys (empty without keys)
  // The keys of the connections to node or client host `name` (none when the nodes have none).
  adapters::ClientKeys KeysFor(const std::string& name) const;
  // The endpoint of node or client host `name`.
  const std::string& EndpointOf(const std::string& name) const;
  // A blocking client of node or client host `name`, addressed to it, with its keys.
  adapters::Client Connect(zmq::context_t& context, const std::string& name,
                           std::chrono::milliseconds timeout) const;
  // The client host that runs the callers of client node `client`; nullptr: this process.
  const std::string* HostOf(const std::string& client) const;
};

// Whether `node` is a client node of `s` (its callers run in the cluster run's process or on a
// client host).
bool IsClient(const Scenario& s, const std::string& node);

// Reads the cluster file at `path` for scenario `s`. Every error names the file, line and column
// and the field: a field it does not know, a cloud or edge node of the scenario it does not map
// (or a node the scenario does not have, or a client-tier one), an endpoint that does not parse,
// a key that cannot be read, keys for some nodes but not others, node keys without an identity
// or an identity without node keys; a client host named as a node, with no client nodes, with a
// node that is no client node or is another host's, or listening beyond loopback without keys.
// Key files are taken from the cluster file's folder.
core::Result<ClusterFile> LoadClusterFile(const std::string& path, const Scenario& s);
// The same, from text (`file` names it in errors; relative paths are taken from its folder).
core::Result<ClusterFile> ParseClusterFile(const std::string& text, const std::string& file,
                                           const Scenario& s);

// Whether the cluster mode can run `s` on `cluster`: not when its timeline crashes or restarts a
// node whose crash or restart command the cluster file does not give (the error names the first
// such event and the field).
core::Status CheckClusterScenario(const Scenario& s, const ClusterFile& cluster);

struct ClusterOptions {
  std::string results_dir;  // empty: the scenario's
  bool progress = false;    // a progress line on stderr every second
  double time_scale = 1;    // what Shorten returned, stored with the run
  int probes = 20;          // round trips measured per pair before the run (1 to 100)
};

struct ClusterResult {
  std::string database;  // the results database's path (ReadReport summarizes it)
  bool interrupted = false;
};

// Checks the nodes (each answers its status as the node the cluster file says, holds none of
// the scenario's keygroups, keeps a trace and lets this run read it and its clock), measures the
// network and shapes the links, then runs `scenario` on them. Stops early, cleanly, when
// `stop_requested` (polled often) returns true. The database is
// RESULTS/<scenario>-cluster-<UTC time>-<pid>.db; the crash and restart commands' output goes to
// the same name with `.commands.log` for `.db`. A link whose network is slower than the scenario
// says is said on stderr before the run and recorded as a `warning` event.
core::Result<ClusterResult> RunOnCluster(const Scenario& scenario, const ClusterFile& cluster,
                                         const ClusterOptions& options,
                                         const std::function<bool()>& stop_requested);

}  // namespace enoki::testbed
