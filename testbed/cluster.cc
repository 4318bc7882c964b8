// The cluster mode: the cluster file, the checks before the run, and the Driver's mode over
// running nodes.
#include "testbed/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>

#include <yaml-cpp/yaml.h>
#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "adapters/subprocess.h"
#include "testbed/cluster_network.h"
#include "testbed/driver.h"
#include "testbed/node_calls.h"
#include "testbed/remote_traces.h"
#include "testbed/results.h"
#include "testbed/topology.h"
#include "testbed/yaml_errors.h"

namespace enoki::testbed {
namespace {

using core::Status;
using Pair = Driver::Pair;

// How long a node may take to answer its status before the run.
constexpr auto kStatusTimeout = std::chrono::seconds(3);

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

// How long a crash or restart command may run before it is killed (an error of the run).
constexpr auto kCommandTimeout = std::chrono::seconds(60);

// One run on running nodes: the mode of its Driver.
class ClusterRun : private Driver::Mode {
 public:
  // `links`: the scenario's; `rtts`: the network's round trips under them, on top of which the
  // links are shaped. Crash and restart commands write to `command_log`.
  ClusterRun(const Scenario& s, const ClusterFile& cluster, const ClusterOptions& o,
             std::map<Pair, net::LinkSpec> links, std::map<Pair, RoundTrip> rtts,
             std::string command_log, std::function<bool()> stop_requested)
      : s_(s),
        cluster_(cluster),
        o_(o),
        rtts_(std::move(rtts)),
        command_log_(std::move(command_log)),
        stop_requested_(std::move(stop_requested)),
        loop_(s.seed),
        driver_(s, loop_, *this, std::move(links)),
        calls_(s, loop_, driver_, NodeCalls::ClientLinks::kOverNetwork) {
    for (const auto& [id, n] : cluster.nodes)
      calls_.ConnectNode(id, n.endpoint, cluster.KeysFor(id));
    calls_.ConnectCallers([this](const std::string&, const std::string& node) {
      return cluster_.nodes.at(node).endpoint;
    });
    // The callers' links as they start, on top of the network (the nodes' are shaped already).
    for (const Pair& p : driver_.Pairs()) {
      if (IsClient(s_, p.first) || IsClient(s_, p.second)) calls_.SetLink(p, OnTop(p));
    }
  }

  // Runs the driver until it finishes or a stop is requested. Returns why the set-up failed, or
  // that it was interrupted.
  Status Run() {
    driver_.Run();
    interrupted_ = DriveOnLoop(loop_, driver_, stop_requested_, o_.progress, nullptr);
    // A command still running has its time to end (the replica check may have been quick).
    PollCommands(kCommandTimeout);
    if (interrupted_ && driver_.phase() == Driver::Phase::kSettingUp) {
      return Status::Unavailable("interrupted before the run started");
    }
    return driver_.failure();
  }

  bool interrupted() const { return interrupted_; }
  const Driver& driver() const { return driver_; }

 private:
  // A crash or restart command under way.
  struct Command {
    std::string node, what;  // what: crash or restart
    adapters::Subprocess process;
    std::chrono::steady_clock::time_point started;
  };

  // Link a -> b as `driver_` has it now, on top of the network.
  net::LinkSpec OnTop(const Pair& p) const {
    auto rtt = rtts_.find(p);
    net::LinkSpec spec = driver_.Current(p);
    return rtt == rtts_.end() ? spec : OnTopOf(spec, rtt->second);
  }

  // Driver::Mode: every request from this process, straight to the node's endpoint.
  void Call(const std::string& from, const std::string& node, proto::Request request,
            OnReply on_reply) override {
    calls_.Call(from, node, std::move(request), std::move(on_reply));
  }
  // Driver::Mode: a client's links are shaped here, a node's by the node.
  void SetLink(const Pair& p, const net::LinkSpec&) override {
    if (IsClient(s_, p.first) || IsClient(s_, p.second)) {
      calls_.SetLink(p, OnTop(p));
    } else {
      calls_.AskLink(p, OnTop(p));
    }
  }
  // Driver::Mode: the node is down from now on (its command takes effect when it has run).
  void Crash(const std::string& node) override {
    calls_.MarkDown(node);
    Start(node, "crash", cluster_.nodes.at(node).crash);
  }
  // Driver::Mode: the node is up again once its command has ended well.
  Status Restart(const std::string& node) override {
    return Start(node, "restart", cluster_.nodes.at(node).restart);
  }

  Status Start(const std::string& node, const std::string& what, const std::string& command) {
    auto process = adapters::Subprocess::Start({"/bin/sh", "-c", command}, command_log_);
    if (!process.ok()) {
      Status st = Status::Unavailable("cannot run the " + what + " command of node " + node + ": " +
                                      process.status().message());
      driver_.Record("error", st.message());
      return st;
    }
    commands_.push_back({node, what, std::move(process.value()), std::chrono::steady_clock::now()});
    if (commands_.size() == 1) PollOnLoop();
    return Status::Ok();
  }

  // Looks for ended commands every 20 ms while any runs, whatever the run's phase (a restart
  // that ends during the replica check brings its node back for it).
  void PollOnLoop() {
    loop_.Schedule(std::chrono::milliseconds(20), [this] {
      PollCommands(std::chrono::milliseconds(0));
      if (!commands_.empty()) PollOnLoop();
    });
  }

  // Ends the commands that ended within `wait` (each), killing those that ran too long: each
  // is recorded (`command` event, or `error`), and a restarted node is up again.
  void PollCommands(std::chrono::milliseconds wait) {
    for (auto it = commands_.begin(); it != commands_.end();) {
      auto ran = std::chrono::steady_clock::now() - it->started;
      std::optional<int> status =
          it->process.Wait(std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::max(kCommandTimeout - ran, decltype(ran)(0)))));
      ran = std::chrono::steady_clock::now() - it->started;
      if (!status && ran < kCommandTimeout) {
        ++it;
        continue;
      }
      char took[32];
      std::snprintf(took, sizeof took, "%.0f ms",
                    std::chrono::duration<double, std::milli>(ran).count());
      std::string which = "the " + it->what + " command of node " + it->node;
      if (!status) {
        it->process.Kill();
        driver_.Record("error", which + " did not end in " +
                                    std::to_string(kCommandTimeout.count()) +
                                    " s and was killed (its output: " + command_log_ + ")");
      } else if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
        driver_.Record("error", which + " " + adapters::DescribeWaitStatus(*status) + " after " +
                                    took + " (its output: " + command_log_ + ")");
      } else {
        driver_.Record("command", which + " ended after " + took);
        if (it->what == "restart") {
          // The new process has its links unshaped (or as its configuration says): they become
          // what they are now in the run, on top of the network.
          calls_.MarkUp(it->node);
          for (const Pair& p : driver_.Pairs()) {
            if (p.first == it->node && !IsClient(s_, p.second)) calls_.AskLink(p, OnTop(p));
          }
        }
      }
      it = commands_.erase(it);
    }
  }

  const Scenario& s_;
  const ClusterFile& cluster_;
  const ClusterOptions& o_;
  const std::map<Pair, RoundTrip> rtts_;
  const std::string command_log_;
  std::function<bool()> stop_requested_;
  adapters::EventLoop loop_;
  Driver driver_;
  NodeCalls calls_;
  std::vector<Command> commands_;
  bool interrupted_ = false;
};

// Every node answers its status as the node the cluster file names, and holds none of the
// scenario's keygroups (a keygroup left by an earlier run would fail the set-up). All problems at
// once, one a line.
Status CheckNodes(const Scenario& s, const ClusterFile& cluster) {
  zmq::context_t context(1);
  std::string problems;
  for (const auto& [id, n] : cluster.nodes) {
    adapters::Client client = cluster.Connect(
        context, id, std::chrono::duration_cast<std::chrono::milliseconds>(kStatusTimeout));
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

adapters::Client ClusterFile::Connect(zmq::context_t& context, const std::string& name,
                                      std::chrono::milliseconds timeout) const {
  return adapters::Client(context, nodes.at(name).endpoint, timeout, name, KeysFor(name));
}

bool IsClient(const Scenario& s, const std::string& node) {
  const NodeDecl* d = s.FindNode(node);
  return d != nullptr && d->tier == Tier::kClient;
}

adapters::ClientKeys ClusterFile::KeysFor(const std::string& name) const {
  const ClusterNode& n = nodes.at(name);
  if (n.public_key.empty()) return {};
  return {identity, n.public_key};
}

core::Result<ClusterFile> LoadClusterFile(const std::string& path, const Scenario& s) {
  auto text = ReadYamlFile(path, "cluster file");
  if (!text.ok()) return text.status();
  return ParseClusterFile(*text, path, s);
}

core::Result<ClusterFile> ParseClusterFile(const std::string& text, const std::string& file,
                                           const Scenario& s) {
  auto parsed = ParseYaml(text, file);
  if (!parsed.ok()) return parsed.status();
  YAML::Node root = *parsed;
  ClusterFile c;
  c.file = file;
  ENOKI_RETURN_IF_ERROR(YamlOnlyKeys(file, root, "", {"nodes", "identity"}));
  YAML::Node nodes = root["nodes"];
  if (!nodes) return YamlError(file, root, "nodes", "missing (required)");
  if (!nodes.IsMap())
    return YamlError(file, nodes, "nodes", "expected a map from node name to node");
  bool any_key = false, any_plain = false;
  YAML::Node first_key, first_plain;
  for (auto it = nodes.begin(); it != nodes.end(); ++it) {
    std::string name = it->first.Scalar();
    std::string field = "nodes." + name;
    const NodeDecl* d = s.FindNode(name);
    if (d == nullptr) {
      return YamlError(file, it->first, field, "the scenario (" + s.file + ") has no node " + name);
    }
    if (d->tier == Tier::kClient) {
      return YamlError(file, it->first, field,
                       "a client node of the scenario: its callers run in this process");
    }
    if (c.nodes.contains(name)) return YamlError(file, it->first, field, "given twice");
    const YAML::Node& n = it->second;
    ENOKI_RETURN_IF_ERROR(YamlOnlyKeys(file, n, field, {"endpoint", "key", "crash", "restart"}));
    YAML::Node endpoint = n["endpoint"];
    if (!endpoint) return YamlError(file, n, field + ".endpoint", "missing (required)");
    if (!endpoint.IsScalar() || !ValidEndpoint(endpoint.Scalar())) {
      return YamlError(file, endpoint, field + ".endpoint",
                       "'" + (endpoint.IsScalar() ? endpoint.Scalar() : std::string("...")) +
                           "' is not tcp://HOST:PORT or ipc://PATH");
    }
    ClusterNode node{endpoint.Scalar(), "", "", ""};
    for (auto [name, command] : {std::pair{"crash", &node.crash}, {"restart", &node.restart}}) {
      YAML::Node c = n[name];
      if (!c) continue;
      if (!c.IsScalar() || c.Scalar().empty()) {
        return YamlError(file, c, field + "." + name, "expected a shell command");
      }
      *command = c.Scalar();
    }
    if (YAML::Node key = n["key"]) {
      if (!key.IsScalar()) return YamlError(file, key, field + ".key", "expected a single value");
      std::string k = key.Scalar();
      auto pub = adapters::ReadPublicKey(adapters::IsKeyText(k) ? k : KeyPath(file, k));
      if (!pub.ok()) return YamlError(file, key, field + ".key", pub.status().message());
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
      return YamlError(file, nodes, "nodes." + d.name,
                       "missing: the scenario's " + std::string(TierName(d.tier)) + " node " +
                           d.name + " must be mapped to a running node");
    }
  }
  if (any_key && any_plain) {
    return YamlError(file, first_plain, "nodes",
                     "some nodes have a key and others not: give each one");
  }
  YAML::Node identity = root["identity"];
  if (identity) {
    if (!identity.IsScalar())
      return YamlError(file, identity, "identity", "expected a single value");
    auto pair = adapters::ReadKeyPair(KeyPath(file, identity.Scalar()));
    if (!pair.ok()) return YamlError(file, identity, "identity", pair.status().message());
    if (pair->secret_key.empty()) {
      return YamlError(file, identity, "identity",
                       "holds no 'secret' line (a .pub file? give the .key file)");
    }
    if (!any_key) {
      return YamlError(file, identity, "identity",
                       "given, but no node has a key: give each node's public key (key:)");
    }
    c.identity = *pair;
  } else if (any_key) {
    return YamlError(file, first_key, "identity",
                     "missing: the nodes have keys, so the run needs a client key pair of its own "
                     "(enoki keys generate) that their access files admit");
  }
  return c;
}

Status CheckClusterScenario(const Scenario& s, const ClusterFile& cluster) {
  for (size_t i = 0; i < s.timeline.size(); ++i) {
    const TimelineEvent& e = s.timeline[i];
    bool crash = e.kind == TimelineEvent::Kind::kCrash;
    if (!crash && e.kind != TimelineEvent::Kind::kRestart) continue;
    const ClusterNode& n = cluster.nodes.at(e.node);
    if (!(crash ? n.crash : n.restart).empty()) continue;
    char at[32];
    std::snprintf(at, sizeof at, "%g s", core::ToMillis(e.at) / 1000);
    const char* what = crash ? "crash" : "restart";
    return Status::FailedPrecondition(s.file + ": timeline[" + std::to_string(i) + "] at " + at +
                                      " is a " + what + " of " + e.node + ", but " + cluster.file +
                                      " gives no command for it (nodes." + e.node + "." + what +
                                      ")");
  }
  return Status::Ok();
}

core::Result<ClusterResult> RunOnCluster(const Scenario& scenario, const ClusterFile& cluster,
                                         const ClusterOptions& options,
                                         const std::function<bool()>& stop_requested) {
  ENOKI_RETURN_IF_ERROR(CheckClusterScenario(scenario, cluster));
  if (options.probes < 1 || options.probes > 100) {
    return Status::InvalidArgument("probes must be 1 to 100, not " +
                                   std::to_string(options.probes));
  }
  auto links = LinkTable(scenario);
  if (!links.ok()) return links.status();
  ENOKI_RETURN_IF_ERROR(CheckNodes(scenario, cluster));
  auto traces = RemoteTraces::Begin(cluster);  // the clocks before the run, where traces end
  if (!traces.ok()) return traces.status();
  // However the run ends from here on, the nodes are left as they were found: unshaped (a node
  // that is down then keeps its links).
  struct Unshape {
    std::function<void()> undo;
    ~Unshape() { undo(); }
  } unshape{[&] {
    std::map<Pair, net::LinkSpec> unshaped;
    for (const auto& [p, spec] : *links) unshaped[p] = {};
    if (Status back = ShapeNodeLinks(scenario, cluster, unshaped); !back.ok()) {
      std::fprintf(stderr, "enoki: warning: leaving the nodes unshaped: %s\n",
                   back.message().c_str());
    }
  }};
  auto rtts = MeasureNetwork(scenario, cluster, *links, options.probes);
  if (!rtts.ok()) return rtts.status();
  std::vector<std::string> slower = SlowerThanScenario(*links, *rtts);
  for (const auto& line : slower) std::fprintf(stderr, "enoki: warning: %s\n", line.c_str());
  std::map<Pair, net::LinkSpec> on_top;
  for (const auto& [p, spec] : *links) on_top[p] = OnTopOf(spec, rtts->at(p));
  ENOKI_RETURN_IF_ERROR(ShapeNodeLinks(scenario, cluster, on_top));
  std::string dir = options.results_dir.empty() ? scenario.results : options.results_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  auto db = ResultsDb::Create(dir + "/" + scenario.name + "-cluster-" + UtcNow("%Y%m%d-%H%M%S") +
                              "-" + std::to_string(::getpid()) + ".db");
  if (!db.ok()) return db.status();
  RunInfo info{scenario.name,     scenario.file,     scenario.text,
               scenario.seed,     "cluster",         "shaper",
               ENOKI_VERSION,     HostDescription(), UtcNow("%Y-%m-%dT%H:%M:%SZ"),
               options.time_scale};
  ClusterResult result;
  result.database = (*db)->path();
  std::string command_log = result.database.substr(0, result.database.size() - 3) + ".commands.log";
  ClusterRun run(scenario, cluster, options, *links, *rtts, command_log, stop_requested);
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
  std::vector<EventRecord> events;
  for (const auto& line : slower) events.push_back({0, "warning", line});
  events.insert(events.end(), run.driver().events().begin(), run.driver().events().end());
  if (Status st = traces->Finish(**db, run.driver().start().time_since_epoch().count()); !st.ok()) {
    events.push_back({events.empty() ? 0 : events.back().at_ns, "error", st.message()});
  }
  ENOKI_RETURN_IF_ERROR(WriteResults(**db, scenario, info, result.interrupted, *links,
                                     run.driver().requests(), events, checks));
  ENOKI_RETURN_IF_ERROR((*db)->WriteNetwork(NetworkRecords(*links, *rtts)));
  return result;
}

}  // namespace enoki::testbed
