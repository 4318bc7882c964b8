// The cluster mode: the cluster file, the checks before the run, and the Driver's mode over
// running nodes.
#include "testbed/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "testbed/driver.h"
#include "testbed/node_calls.h"
#include "testbed/remote_traces.h"
#include "testbed/results.h"
#include "testbed/topology.h"

namespace enoki::testbed {
namespace {

using core::Status;
using Pair = Driver::Pair;

// How long a node may take to answer its status before the run.
constexpr auto kStatusTimeout = std::chrono::seconds(3);

// "FILE:LINE:COLUMN: FIELD: MESSAGE".
Status Error(const std::string& file, const YAML::Node& at, const std::string& field,
             const std::string& message) {
  auto mark = at.Mark();
  std::string where = file;
  if (mark.line >= 0) {
    where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  return Status::InvalidArgument(where + ": " + field + ": " + message);
}

// Map `n` holds no key but `allowed`.
Status OnlyKeys(const std::string& file, const YAML::Node& n, const std::string& field,
                const std::set<std::string>& allowed) {
  if (!n.IsMap()) return Error(file, n, field, "expected a map of fields");
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string key = it->first.Scalar();
    if (allowed.contains(key)) continue;
    std::string known;
    for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
    return Error(file, it->first, (field.empty() ? "" : field + ".") + key,
                 "unknown field (known: " + known + ")");
  }
  return Status::Ok();
}

// tcp://HOST:PORT (a port from 1 to 65535) or ipc://PATH.
bool ValidEndpoint(const std::string& e) {
  if (e.starts_with("ipc://")) return e.size() > 6;
  if (!e.starts_with("tcp://")) return false;
  auto colon = e.rfind(':');
  if (colon <= 6) return false;  // the one of "tcp:" or an empty host
  std::string_view port(e.data() + colon + 1, e.size() - colon - 1);
  int p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  return ec == std::errc() && end == port.data() + port.size() && p >= 1 && p <= 65535;
}

// A key file named relative to the cluster file's folder.
std::string KeyPath(const std::string& file, const std::string& name) {
  std::filesystem::path p(name);
  if (p.is_absolute()) return name;
  return (std::filesystem::path(file).parent_path() / p).string();
}

std::string EventName(const TimelineEvent& e) {
  switch (e.kind) {
    case TimelineEvent::Kind::kLink:
      return "a link change (" + e.link.a + " - " + e.link.b + ")";
    case TimelineEvent::Kind::kPartition:
      return "a partition";
    case TimelineEvent::Kind::kHeal:
      return "a heal";
    case TimelineEvent::Kind::kCrash:
      return "a crash of " + e.node;
    case TimelineEvent::Kind::kRestart:
      return "a restart of " + e.node;
    case TimelineEvent::Kind::kPhase:
      return "a phase";
  }
  return "an event";
}

// One run on running nodes: the mode of its Driver.
class ClusterRun : private Driver::Mode {
 public:
  ClusterRun(const Scenario& s, const ClusterFile& cluster, const ClusterOptions& o,
             std::map<Pair, net::LinkSpec> links, std::function<bool()> stop_requested)
      : cluster_(cluster),
        o_(o),
        stop_requested_(std::move(stop_requested)),
        loop_(s.seed),
        driver_(s, loop_, *this, std::move(links)),
        // Nothing is shaped here: the callers' links are the network's.
        calls_(s, loop_, driver_, false) {
    for (const auto& [id, n] : cluster.nodes)
      calls_.ConnectNode(id, n.endpoint, cluster.KeysFor(id));
    calls_.ConnectCallers([this](const std::string&, const std::string& node) {
      return cluster_.nodes.at(node).endpoint;
    });
  }

  // Runs the driver until it finishes or a stop is requested. Returns why the set-up failed, or
  // that it was interrupted.
  Status Run() {
    driver_.Run();
    interrupted_ = DriveOnLoop(loop_, driver_, stop_requested_, o_.progress, nullptr);
    if (interrupted_ && driver_.phase() == Driver::Phase::kSettingUp) {
      return Status::Unavailable("interrupted before the run started");
    }
    return driver_.failure();
  }

  bool interrupted() const { return interrupted_; }
  const Driver& driver() const { return driver_; }

 private:
  // Driver::Mode: every request from this process, straight to the node's endpoint.
  void Call(const std::string& from, const std::string& node, proto::Request request,
            OnReply on_reply) override {
    calls_.Call(from, node, std::move(request), std::move(on_reply));
  }
  // CheckClusterScenario refused every timeline event that would come here.
  void SetLink(const Pair& p, const net::LinkSpec&) override {
    driver_.Record("error",
                   "the cluster mode cannot shape link " + p.first + " -> " + p.second + " yet");
  }
  void Crash(const std::string& node) override {
    driver_.Record("error", "the cluster mode cannot crash node " + node + " yet");
  }
  Status Restart(const std::string& node) override {
    return Status::FailedPrecondition("the cluster mode cannot restart node " + node + " yet");
  }

  const ClusterFile& cluster_;
  const ClusterOptions& o_;
  std::function<bool()> stop_requested_;
  adapters::EventLoop loop_;
  Driver driver_;
  NodeCalls calls_;
  bool interrupted_ = false;
};

// Every node answers its status as the node the cluster file names, and holds none of the
// scenario's keygroups (a keygroup left by an earlier run would fail the set-up). All problems at
// once, one a line.
Status CheckNodes(const Scenario& s, const ClusterFile& cluster) {
  zmq::context_t context(1);
  std::string problems;
  for (const auto& [id, n] : cluster.nodes) {
    adapters::Client client(context, n.endpoint,
                            std::chrono::duration_cast<std::chrono::milliseconds>(kStatusTimeout),
                            id, cluster.KeysFor(id));
    auto status = client.NodeStatus();
    std::string where = cluster.file + ": node " + id + " at " + n.endpoint + ": ";
    if (!status.ok()) {
      problems += "\n  " + where + status.status().message() +
                  (status.status().code() == core::Code::kDeadlineExceeded
                       ? " (is it running, at that endpoint, and does its access file admit this "
                         "run's identity?)"
                       : "");
      continue;
    }
    for (const auto& k : s.keygroups) {
      if (std::find(status->held().begin(), status->held().end(), k.name) != status->held().end()) {
        problems += "\n  " + where + "holds keygroup " + k.name +
                    " already (an earlier run's?): delete it (enoki keygroup delete) or run on "
                    "fresh nodes";
      }
    }
  }
  if (problems.empty()) return Status::Ok();
  return Status::FailedPrecondition("the cluster is not ready for the run:" + problems);
}

}  // namespace

adapters::ClientKeys ClusterFile::KeysFor(const std::string& name) const {
  const ClusterNode& n = nodes.at(name);
  if (n.public_key.empty()) return {};
  return {identity, n.public_key};
}

core::Result<ClusterFile> LoadClusterFile(const std::string& path, const Scenario& s) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read cluster file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return ParseClusterFile(text.str(), path, s);
}

core::Result<ClusterFile> ParseClusterFile(const std::string& text, const std::string& file,
                                           const Scenario& s) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  ClusterFile c;
  c.file = file;
  ENOKI_RETURN_IF_ERROR(OnlyKeys(file, root, "", {"nodes", "identity"}));
  YAML::Node nodes = root["nodes"];
  if (!nodes) return Error(file, root, "nodes", "missing (required)");
  if (!nodes.IsMap()) return Error(file, nodes, "nodes", "expected a map from node name to node");
  bool any_key = false, any_plain = false;
  YAML::Node first_key, first_plain;
  for (auto it = nodes.begin(); it != nodes.end(); ++it) {
    std::string name = it->first.Scalar();
    std::string field = "nodes." + name;
    const NodeDecl* d = s.FindNode(name);
    if (d == nullptr) {
      return Error(file, it->first, field, "the scenario (" + s.file + ") has no node " + name);
    }
    if (d->tier == Tier::kClient) {
      return Error(file, it->first, field,
                   "a client node of the scenario: its callers run in this process");
    }
    if (c.nodes.contains(name)) return Error(file, it->first, field, "given twice");
    const YAML::Node& n = it->second;
    ENOKI_RETURN_IF_ERROR(OnlyKeys(file, n, field, {"endpoint", "key"}));
    YAML::Node endpoint = n["endpoint"];
    if (!endpoint) return Error(file, n, field + ".endpoint", "missing (required)");
    if (!endpoint.IsScalar() || !ValidEndpoint(endpoint.Scalar())) {
      return Error(file, endpoint, field + ".endpoint",
                   "'" + (endpoint.IsScalar() ? endpoint.Scalar() : std::string("...")) +
                       "' is not tcp://HOST:PORT or ipc://PATH");
    }
    ClusterNode node{endpoint.Scalar(), ""};
    if (YAML::Node key = n["key"]) {
      if (!key.IsScalar()) return Error(file, key, field + ".key", "expected a single value");
      std::string k = key.Scalar();
      auto pub = adapters::ReadPublicKey(adapters::IsKeyText(k) ? k : KeyPath(file, k));
      if (!pub.ok()) return Error(file, key, field + ".key", pub.status().message());
      node.public_key = *pub;
      if (!any_key) first_key = key;
      any_key = true;
    } else {
      if (!any_plain) first_plain = it->first;
      any_plain = true;
    }
    c.nodes.emplace(name, std::move(node));
  }
  for (const auto& d : s.nodes) {
    if (d.tier != Tier::kClient && !c.nodes.contains(d.name)) {
      return Error(file, nodes, "nodes." + d.name,
                   "missing: the scenario's " + std::string(TierName(d.tier)) + " node " + d.name +
                       " must be mapped to a running node");
    }
  }
  if (any_key && any_plain) {
    return Error(file, first_plain, "nodes", "some nodes have a key and others not: give each one");
  }
  YAML::Node identity = root["identity"];
  if (identity) {
    if (!identity.IsScalar()) return Error(file, identity, "identity", "expected a single value");
    auto pair = adapters::ReadKeyPair(KeyPath(file, identity.Scalar()));
    if (!pair.ok()) return Error(file, identity, "identity", pair.status().message());
    if (pair->secret_key.empty()) {
      return Error(file, identity, "identity",
                   "holds no 'secret' line (a .pub file? give the .key file)");
    }
    if (!any_key) {
      return Error(file, identity, "identity",
                   "given, but no node has a key: give each node's public key (key:)");
    }
    c.identity = *pair;
  } else if (any_key) {
    return Error(file, first_key, "identity",
                 "missing: the nodes have keys, so the run needs a client key pair of its own "
                 "(enoki keys generate) that their access files admit");
  }
  return c;
}

Status CheckClusterScenario(const Scenario& s) {
  for (size_t i = 0; i < s.timeline.size(); ++i) {
    const TimelineEvent& e = s.timeline[i];
    if (e.kind == TimelineEvent::Kind::kPhase) continue;
    char at[32];
    std::snprintf(at, sizeof at, "%g s", core::ToMillis(e.at) / 1000);
    return Status::FailedPrecondition(
        s.file + ": timeline[" + std::to_string(i) + "] at " + at + " is " + EventName(e) +
        ", which the cluster mode does not support yet (only phases: links are not shaped on "
        "running nodes, and crashes and restarts are not theirs to do)");
  }
  return Status::Ok();
}

core::Result<ClusterResult> RunOnCluster(const Scenario& scenario, const ClusterFile& cluster,
                                         const ClusterOptions& options,
                                         const std::function<bool()>& stop_requested) {
  ENOKI_RETURN_IF_ERROR(CheckClusterScenario(scenario));
  auto links = LinkTable(scenario);
  if (!links.ok()) return links.status();
  ENOKI_RETURN_IF_ERROR(CheckNodes(scenario, cluster));
  auto traces = RemoteTraces::Begin(cluster);  // the clocks before the run, where traces end
  if (!traces.ok()) return traces.status();
  std::string dir = options.results_dir.empty() ? scenario.results : options.results_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  auto db = ResultsDb::Create(dir + "/" + scenario.name + "-cluster-" + UtcNow("%Y%m%d-%H%M%S") +
                              "-" + std::to_string(::getpid()) + ".db");
  if (!db.ok()) return db.status();
  RunInfo info{scenario.name,     scenario.file,     scenario.text,
               scenario.seed,     "cluster",         "network",
               ENOKI_VERSION,     HostDescription(), UtcNow("%Y-%m-%dT%H:%M:%SZ"),
               options.time_scale};
  ClusterResult result;
  result.database = (*db)->path();
  ClusterRun run(scenario, cluster, options, *links, stop_requested);
  Status st = run.Run();
  if (!st.ok()) {
    db->reset();
    std::filesystem::remove(result.database, ec);
    return st;
  }
  result.interrupted = run.interrupted();
  std::vector<KeygroupCheck> checks;
  if (!result.interrupted) checks = run.driver().checks();
  // The traces go in first, on this process's clock; one that cannot be had is an error event.
  std::vector<EventRecord> events = run.driver().events();
  if (Status st = traces->Finish(**db, run.driver().start().time_since_epoch().count()); !st.ok()) {
    events.push_back({events.empty() ? 0 : events.back().at_ns, "error", st.message()});
  }
  // The links are the network's, not the scenario's: none are recorded.
  ENOKI_RETURN_IF_ERROR(WriteResults(**db, scenario, info, result.interrupted, {},
                                     run.driver().requests(), events, checks));
  return result;
}

}  // namespace enoki::testbed
