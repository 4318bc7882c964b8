// The cluster mode: the cluster file, the checks before the run, and the Driver's mode over
// running nodes.
#include "testbed/cluster.h"

#include <unistd.h>

#include <algorithm>
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
#include "enoki_version.h"
#include "net/codec.h"
#include "net/endpoint.h"
#include "testbed/client_host.h"
#include "testbed/cluster_network.h"
#include "testbed/driver.h"
#include "testbed/node_calls.h"
#include "testbed/process_loads.h"
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

// The endpoint of map `m` (at `field`), as ZeroMQ takes it (net::ParseEndpoint).
core::Result<std::string> CheckEndpoint(const std::string& file, const YAML::Node& m,
                                        const std::string& field) {
  YAML::Node endpoint = m["endpoint"];
  if (!endpoint) return YamlError(file, m, field + ".endpoint", "missing (required)");
  if (!endpoint.IsScalar()) {
    return YamlError(file, endpoint, field + ".endpoint", "expected tcp://HOST:PORT or ipc://PATH");
  }
  auto parsed = net::ParseEndpoint(endpoint.Scalar(), "");
  if (!parsed.ok())
    return YamlError(file, endpoint, field + ".endpoint", parsed.status().message());
  return parsed;
}

// A key file named relative to the cluster file's folder.
std::string KeyPath(const std::string& file, const std::string& name) {
  std::filesystem::path p(name);
  if (p.is_absolute()) return name;
  return (std::filesystem::path(file).parent_path() / p).string();
}

// The cluster file's `clients:`, into `c` (whose identity is read already).
Status ParseClientHosts(const std::string& file, const YAML::Node& clients, const Scenario& s,
                        ClusterFile& c) {
  if (!clients.IsMap()) {
    return YamlError(file, clients, "clients", "expected a map from client host name to host");
  }
  std::map<std::string, std::string> placed;  // client node -> its host
  for (auto it = clients.begin(); it != clients.end(); ++it) {
    std::string name = it->first.Scalar();
    std::string field = "clients." + name;
    if (s.FindNode(name) != nullptr) {
      return YamlError(file, it->first, field,
                       "the scenario has a node of that name: name the client host otherwise");
    }
    YAML::Node h = it->second;
    ENOKI_RETURN_IF_ERROR(YamlOnlyKeys(file, h, field, {"endpoint", "nodes"}));
    ClientHost host;
    YAML::Node endpoint = h["endpoint"];
    auto checked = CheckEndpoint(file, h, field);
    if (!checked.ok()) return checked.status();
    host.endpoint = *checked;
    if (c.identity.public_key.empty() && !adapters::IsLocalEndpoint(host.endpoint)) {
      return YamlError(file, endpoint, field + ".endpoint",
                       host.endpoint +
                           " is beyond loopback, and a client host listens there only with keys: "
                           "give the nodes keys and the run an identity (docs/security.md)");
    }
    YAML::Node list = h["nodes"];
    if (!list) return YamlError(file, h, field + ".nodes", "missing (required)");
    if (!list.IsSequence() || list.size() == 0) {
      return YamlError(file, list, field + ".nodes",
                       "expected a list of the scenario's client nodes whose callers run there");
    }
    for (const auto& n : list) {
      std::string client = n.IsScalar() ? n.Scalar() : "";
      const NodeDecl* d = s.FindNode(client);
      if (d == nullptr || d->tier != Tier::kClient) {
        return YamlError(file, n, field + ".nodes",
                         "'" + client + "' is not a client node of the scenario (" + s.file + ")");
      }
      if (auto other = placed.find(client); other != placed.end()) {
        return YamlError(file, n, field + ".nodes",
                         client + " runs on client host " + other->second + " already");
      }
      placed[client] = name;
      host.clients.insert(client);
    }
    c.client_hosts.emplace(name, std::move(host));
  }
  return Status::Ok();
}

// How long a crash or restart command may run before it is killed (an error of the run).
constexpr auto kCommandTimeout = std::chrono::seconds(60);
// How long a client host may take to answer the driver during the run.
constexpr auto kHostTimeout = std::chrono::seconds(5);

// One run on running nodes: the mode of its Driver.
class ClusterRun : private Driver::Mode {
 public:
  // `links`: the scenario's; `rtts`: the network's round trips under them, on top of which the
  // links are shaped. Crash and restart commands write to `command_log`.
  ClusterRun(const Scenario& s, const ClusterFile& cluster, const ClusterOptions& o,
             std::map<Pair, net::LinkSpec> links, std::map<Pair, RoundTrip> rtts,
             ClientHosts& hosts, std::string command_log, std::function<bool()> stop_requested)
      : s_(s),
        cluster_(cluster),
        o_(o),
        rtts_(std::move(rtts)),
        hosts_(hosts),
        command_log_(std::move(command_log)),
        stop_requested_(std::move(stop_requested)),
        loop_(s.seed),
        driver_(s, loop_, *this, std::move(links)),
        calls_(s, loop_, driver_, NodeCalls::ClientLinks::kOverNetwork) {
    for (const auto& [id, n] : cluster.nodes)
      calls_.ConnectNode(id, n.endpoint, cluster.KeysFor(id));
    for (const auto& [name, h] : cluster.client_hosts)
      calls_.ConnectNode(name, h.endpoint, cluster.KeysFor(name));
    calls_.ConnectCallers([this](const std::string& client, const std::string& node) {
      return Elsewhere(client) ? std::string() : cluster_.nodes.at(node).endpoint;
    });
    // The callers' links as they start, on top of the network (the nodes' are shaped already).
    for (const Pair& p : driver_.Pairs()) {
      if (HereClient(p)) calls_.SetLink(p, OnTop(p));
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

  // How each process kept up over the run: this one's, every node's that is up and every client
  // host's (before they are released). One that does not answer is left out, and `warnings` says
  // why.
  std::vector<ProcessRecord> CollectLoads(std::vector<std::string>& warnings) {
    zmq::context_t context(1);
    std::vector<ProcessLoads::Process> up = Processes();
    std::erase_if(up, [&](const ProcessLoads::Process& p) { return calls_.down(p.name); });
    return loads_.Collect(
        up,
        [&](const std::string& name) {
          return cluster_.Connect(context, name, std::chrono::seconds(3));
        },
        warnings);
  }

 private:
  // Every process of the run besides this one: the nodes, the client hosts.
  std::vector<ProcessLoads::Process> Processes() const {
    std::vector<ProcessLoads::Process> all;
    for (const auto& [id, n] : cluster_.nodes) all.push_back({id, "node"});
    for (const auto& [name, h] : cluster_.client_hosts) all.push_back({name, "client host"});
    return all;
  }
  // Driver::Mode: every process's window of lateness and CPU starts now.
  void AwaitCallers(std::function<void(Status)> ready) override {
    calls_.AwaitCallers(std::move(ready));
  }
  void RunStarts() override { loads_.Start(calls_, driver_, Processes()); }

  // A crash or restart command under way.
  struct Command {
    std::string node, what;  // what: crash or restart
    adapters::Subprocess process;
    std::chrono::steady_clock::time_point started;
  };

  // Whether p is a link of a client whose callers run here.
  bool HereClient(const Pair& p) const {
    const std::string& client = IsClient(s_, p.first) ? p.first : p.second;
    return IsClient(s_, client) && !Elsewhere(client);
  }

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
  // Driver::Mode: a client's links are shaped where its callers run (a client host applies the
  // timeline to its own), a node's by the node.
  void SetLink(const Pair& p, const net::LinkSpec&) override {
    if (HereClient(p)) {
      calls_.SetLink(p, OnTop(p));
    } else if (!IsClient(s_, p.first) && !IsClient(s_, p.second)) {
      calls_.AskLink(p, OnTop(p));
    }
  }
  // Driver::Mode: the callers of the client hosts' clients.
  bool Elsewhere(const std::string& client) const override {
    return cluster_.HostOf(client) != nullptr;
  }
  core::Duration ElsewhereLead() const override { return hosts_.Lead(); }
  // Starts every client host's callers, then asks each every 250 ms whether they ended.
  void StartElsewhere(core::TimePoint t0, std::function<void()> ended) override {
    hosts_ended_ = std::move(ended);
    hosts_left_ = cluster_.client_hosts.size();
    for (const auto& [name, h] : cluster_.client_hosts) {
      AskHost(name, hosts_.StartRequest(name, t0.time_since_epoch().count(), rtts_),
              [this, name = name](core::Result<proto::Response> r) {
                // An answer that did not come in time may still come: the polls say whether
                // the callers run.
                if (!r.ok() && r.status().code() == core::Code::kDeadlineExceeded) {
                  return PollHost(name, 0);
                }
                if (!r.ok()) {
                  driver_.Record("error", "client host " + name + ": cannot start its callers: " +
                                              r.status().message());
                  return HostEnded();
                }
                hosts_.Started(name);
                if (int64_t late = r->calls().late_ns(); late > 0) {
                  char ms[32];
                  std::snprintf(ms, sizeof ms, "%.3f ms", static_cast<double>(late) / 1e6);
                  driver_.Record("warning", "client host " + name + " heard of the run's start " +
                                                ms + " after it: its first requests left late");
                }
                PollHost(name, 0);
              });
    }
  }

  // Sends `request` to client host `name`; `then` runs once with its answer, or the error it
  // answered, or DEADLINE_EXCEEDED after kHostTimeout without one.
  void AskHost(const std::string& name, proto::Request request,
               std::function<void(core::Result<proto::Response>)> then) {
    auto answered = std::make_shared<bool>(false);
    auto shared = std::make_shared<decltype(then)>(std::move(then));
    core::TimerId timer = loop_.Schedule(kHostTimeout, [answered, shared] {
      if (std::exchange(*answered, true)) return;
      (*shared)(Status::DeadlineExceeded("no answer within " +
                                         std::to_string(kHostTimeout.count()) + " s"));
    });
    calls_.Call("", name, std::move(request),
                [this, answered, shared, timer](core::Result<proto::Response> r) {
                  if (std::exchange(*answered, true)) return;
                  loop_.Cancel(timer);
                  if (r.ok() && r->code() != proto::OK) {
                    return (*shared)(net::StatusFromWire(r->code(), r->error()));
                  }
                  (*shared)(std::move(r));
                });
  }

  // In 250 ms, asks client host `name` whether its callers ended; `failures`: polls in a row
  // that had no answer (at 3, the host is given up, as an error event).
  void PollHost(const std::string& name, int failures) {
    loop_.Schedule(std::chrono::milliseconds(250), [this, name, failures] {
      proto::Request r;
      r.mutable_calls()->set_max_bytes(0);
      AskHost(name, std::move(r), [this, name, failures](core::Result<proto::Response> r) {
        if (r.ok() && !r->calls().started()) {  // restarted meanwhile, or never started
          driver_.Record("error", "client host " + name +
                                      " runs no callers of this run (did its start not reach "
                                      "it, or was it restarted?): the run does not wait for them");
          return HostEnded();
        }
        if (r.ok()) hosts_.Started(name);  // also when the answer to the start did not come
        if (r.ok()) return r->calls().done() ? HostEnded() : PollHost(name, 0);
        if (failures + 1 < 3) return PollHost(name, failures + 1);
        driver_.Record("error", "client host " + name + " stopped answering (3 times in a row: " +
                                    r.status().message() +
                                    "): the run does not wait for its callers");
        hosts_.GiveUp(name);
        HostEnded();
      });
    });
  }

  void HostEnded() {
    if (--hosts_left_ == 0) hosts_ended_();
  }
  // Driver::Mode: the node is down from now on (its command takes effect when it has run).
  void Crash(const std::string& node) override {
    calls_.MarkDown(node);
    // A command that cannot run is an error event of the run already.
    Status started = Start(node, "crash", cluster_.nodes.at(node).crash);
    static_cast<void>(started);
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
  ClientHosts& hosts_;
  std::function<void()> hosts_ended_;
  size_t hosts_left_ = 0;  // client hosts whose callers may still run
  const std::string command_log_;
  std::function<bool()> stop_requested_;
  adapters::EventLoop loop_;
  Driver driver_;
  NodeCalls calls_;
  ProcessLoads loads_{loop_};
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
  return adapters::Client(context, EndpointOf(name), timeout, name, KeysFor(name));
}

const std::string& ClusterFile::EndpointOf(const std::string& name) const {
  auto host = client_hosts.find(name);
  return host != client_hosts.end() ? host->second.endpoint : nodes.at(name).endpoint;
}

const std::string* ClusterFile::HostOf(const std::string& client) const {
  for (const auto& [name, host] : client_hosts) {
    if (host.clients.contains(client)) return &name;
  }
  return nullptr;
}

bool IsClient(const Scenario& s, const std::string& node) {
  const NodeDecl* d = s.FindNode(node);
  return d != nullptr && d->tier == Tier::kClient;
}

adapters::ClientKeys ClusterFile::KeysFor(const std::string& name) const {
  if (identity.public_key.empty()) return {};
  // A client host listens with the run's identity as its own key pair.
  if (client_hosts.contains(name)) return {identity, identity.public_key};
  return {identity, nodes.at(name).public_key};
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
  ENOKI_RETURN_IF_ERROR(YamlOnlyKeys(file, root, "", {"nodes", "identity", "clients"}));
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
                       "a client node of the scenario: its callers run in this process, or on a "
                       "client host (clients:)");
    }
    YAML::Node n = it->second;
    ENOKI_RETURN_IF_ERROR(YamlOnlyKeys(file, n, field, {"endpoint", "key", "crash", "restart"}));
    auto checked = CheckEndpoint(file, n, field);
    if (!checked.ok()) return checked.status();
    ClusterNode node{*checked, "", "", ""};
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
  if (YAML::Node clients = root["clients"]) {
    ENOKI_RETURN_IF_ERROR(ParseClientHosts(file, clients, s, c));
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
  // The client hosts' clocks before the run, and what they run; however the run ends from here
  // on, they are stopped and released.
  auto hosts = ClientHosts::Begin(cluster, scenario, options.time_scale);
  if (!hosts.ok()) return hosts.status();
  struct Release {
    ClientHosts& hosts;
    ~Release() { hosts.Release(); }
  } release{*hosts};
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
  ClusterRun run(scenario, cluster, options, *links, *rtts, *hosts, command_log, stop_requested);
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
  int64_t t0_ns = run.driver().start().time_since_epoch().count();
  // How the processes kept up (first: the client hosts are released next).
  std::vector<std::string> warnings;
  std::vector<ProcessRecord> loads = run.CollectLoads(warnings);
  for (const auto& w : warnings) {
    events.push_back({events.empty() ? 0 : events.back().at_ns, "warning", w});
  }
  // The client hosts' requests join the driver's, on its clock (first: the hosts wait).
  std::vector<RequestRecord> requests = run.driver().requests();
  std::vector<ClockRecord> host_clocks;
  if (Status st = hosts->Finish(t0_ns, result.interrupted, requests, host_clocks); !st.ok()) {
    events.push_back({events.empty() ? 0 : events.back().at_ns, "error", st.message()});
  }
  if (Status st = traces->Finish(**db, t0_ns); !st.ok()) {
    events.push_back({events.empty() ? 0 : events.back().at_ns, "error", st.message()});
  }
  ENOKI_RETURN_IF_ERROR((*db)->WriteClocks(host_clocks, t0_ns));
  ENOKI_RETURN_IF_ERROR(
      WriteResults(**db, scenario, info, result.interrupted, *links, requests, events, checks));
  ENOKI_RETURN_IF_ERROR((*db)->WriteNetwork(NetworkRecords(*links, *rtts)));
  ENOKI_RETURN_IF_ERROR((*db)->WriteProcesses(loads));
  return result;
}

}  // namespace enoki::testbed
