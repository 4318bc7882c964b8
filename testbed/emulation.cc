// The emulation orchestrator: node processes, the callers' event loop, the timeline, the results.
#include "testbed/emulation.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "adapters/client.h"
#include "adapters/curve.h"
#include "adapters/event_loop.h"
#include "adapters/log_time.h"
#include "adapters/netem.h"
#include "adapters/node_process.h"
#include "adapters/subprocess.h"
#include "adapters/trace_file.h"
#include "enoki_version.h"
#include "net/link_model.h"
#include "testbed/cluster_plan.h"
#include "testbed/driver.h"
#include "testbed/emulated_links.h"
#include "testbed/node_calls.h"
#include "testbed/process_loads.h"
#include "testbed/report.h"
#include "testbed/results.h"
#include "testbed/topology.h"

namespace enoki::testbed {
namespace {

using core::Duration;
using core::Status;
using core::TimePoint;
using std::chrono::milliseconds;
using Pair = std::pair<std::string, std::string>;

// How long the nodes together may take to start and say they are ready.
constexpr auto kStartTimeout = std::chrono::seconds(60);

// One emulated run: the mode of its Driver.
class Emulation : private Driver::Mode {
 public:
  Emulation(const Scenario& s, const EmulateOptions& o, std::map<Pair, net::LinkSpec> links,
            std::string run_dir, std::function<bool()> stop_requested)
      : s_(s),
        o_(o),
        run_dir_(std::move(run_dir)),
        stop_requested_(std::move(stop_requested)),
        loop_(s.seed),
        driver_(s, loop_, *this, std::move(links)),
        peers_(Peers(s)) {}

  ~Emulation() override { StopNodes(); }

  // Stops every node (SIGTERM, then SIGKILL after 5 s), then takes down the links' backend (its
  // namespaces, its socket folder).
  void StopNodes() {
    for (auto& [id, n] : nodes_) {
      if (n.proc) n.proc->Stop(std::chrono::seconds(5));
      n.proc.reset();
    }
    backend_.reset();
  }

  // Moves the nodes' traces into the database (after StopNodes) and deletes the files.
  Status WriteTraces(ResultsDb& db) {
    for (const auto& [id, n] : nodes_) {
      std::string path = TraceOf(id);
      if (!std::filesystem::exists(path)) continue;  // it never started
      ENOKI_RETURN_IF_ERROR(db.WriteTrace(
          id, [&](const auto& each) { return adapters::ReadTraceFile(path, each); },
          driver_.start().time_since_epoch().count()));
      std::filesystem::remove(path);
    }
    return Status::Ok();
  }

  // Starts every node and waits until each said it is ready; then connects the sockets the run
  // talks to them over.
  Status StartNodes() {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) CPU_ZERO(&allowed);
    for (const auto& n : s_.nodes) {
      for (int c : n.cpus) {
        if (c >= CPU_SETSIZE || !CPU_ISSET(c, &allowed)) {
          std::string mine;
          for (int i = 0; i < CPU_SETSIZE; ++i) {
            if (CPU_ISSET(i, &allowed)) mine += (mine.empty() ? "" : ",") + std::to_string(i);
          }
          return Status::InvalidArgument("node " + n.name + ": cpus names CPU " +
                                         std::to_string(c) +
                                         ", which this process may not use "
                                         "(it may use " +
                                         mine + ")");
        }
      }
    }
    auto backend =
        o_.links == Links::kNetem
            ? MakeNetemLinks(s_, CurrentLinks(), run_dir_)
            : MakeShaperLinks(s_, run_dir_, [this](const Pair& p, const net::LinkSpec& spec) {
                calls_->AskLink(p, spec);
              });
    if (!backend.ok()) return backend.status();
    backend_ = std::move(backend.value());
    for (const auto& n : s_.nodes) {
      if (n.tier != Tier::kClient) nodes_[n.name].endpoint = backend_->Endpoint(n.name);
    }
    if (s_.curve) ENOKI_RETURN_IF_ERROR(MakeKeys());
    for (auto& [id, n] : nodes_) ENOKI_RETURN_IF_ERROR(StartNode(id));
    // Nothing is sent to a node before it said, in its ready file, that it holds its endpoint.
    auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
    for (auto& [id, n] : nodes_) {
      if (stop_requested_()) return Interrupted();
      auto left = std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(
                                                deadline - std::chrono::steady_clock::now()));
      auto ready = adapters::WaitForReadyFile(ReadyOf(id), id, *n.proc, left);
      if (!ready.ok() && std::chrono::steady_clock::now() >= deadline) {
        ready = Status::Unavailable("the nodes were not all ready within " +
                                    std::to_string(kStartTimeout.count()) + " s (node " + id +
                                    " was not)");
      }
      if (!ready.ok())
        return Status(ready.status().code(), ready.status().message() + "; its log: " + LogOf(id));
      if (ready->endpoint != n.endpoint) {
        return Status::Internal("node " + id + " listens on " + ready->endpoint + ", not on " +
                                n.endpoint);
      }
    }
    // The driver's own requests and the callers' go over sockets of their own (NodeCalls); the
    // callers shape their client's links here when the kernel does not.
    calls_.emplace(s_, loop_, driver_,
                   backend_->ShapedByCallers() ? NodeCalls::ClientLinks::kSameHost
                                               : NodeCalls::ClientLinks::kUnshaped);
    for (auto& [id, n] : nodes_) {
      adapters::ClientKeys keys;
      if (s_.curve) keys = {driver_keys_, n.public_key};
      calls_->ConnectNode(id, n.endpoint, keys);
    }
    calls_->ConnectCallers([this](const std::string& client, const std::string& node) {
      return backend_->CallerEndpoint(client, node);
    });
    return Status::Ok();
  }

  // Runs the driver (set-up, workloads and timeline, replica check) until it finishes or a stop
  // is requested. Returns why the set-up failed, or that it was interrupted.
  Status Run() {
    driver_.Run();
    interrupted_ =
        DriveOnLoop(loop_, driver_, stop_requested_, o_.progress, [this] { CheckNodesAlive(); });
    for (const auto& e : backend_->Finish()) driver_.Record("error", e);
    if (interrupted_ && driver_.phase() == Driver::Phase::kSettingUp) return Interrupted();
    return driver_.failure();
  }

  // How each process kept up over the run: this one's and every node's that is up, asked before
  // StopNodes. A node that does not answer is a `warning` event.
  std::vector<ProcessRecord> CollectLoads(std::vector<EventRecord>& events) {
    std::vector<ProcessLoads::Process> up;
    for (const auto& [id, n] : nodes_) {
      if (n.proc && !calls_->down(id)) up.push_back({id, "node"});
    }
    std::vector<std::string> warnings;
    auto loads = loads_.Collect(
        up,
        [this](const std::string& id) {
          adapters::ClientKeys keys;
          if (s_.curve) keys = {driver_keys_, nodes_.at(id).public_key};
          return adapters::Client(context_, nodes_.at(id).endpoint, std::chrono::seconds(3), id,
                                  keys);
        },
        warnings);
    for (const auto& w : warnings) {
      events.push_back({events.empty() ? 0 : events.back().at_ns, "warning", w});
    }
    return loads;
  }

  // Writes the log of every function at every node that is up, as the node keeps it (its last
  // 1000 lines: deployments, failures, timeouts, what the function logged), to
  // logs/NODE.functions.log; a node that does not give it is a warning event.
  void SaveFunctionLogs(std::vector<EventRecord>& events) {
    for (const auto& [id, n] : nodes_) {
      if (!n.proc || calls_->down(id)) continue;
      adapters::ClientKeys keys;
      if (s_.curve) keys = {driver_keys_, n.public_key};
      adapters::Client client(context_, n.endpoint, std::chrono::seconds(3), id, keys);
      std::ofstream out(run_dir_ + "/logs/" + id + ".functions.log");
      for (const auto& f : s_.functions) {
        if (std::find(f.nodes.begin(), f.nodes.end(), id) == f.nodes.end()) continue;
        auto logs = client.FunctionLogs(f.spec.name(), 0);
        if (!logs.ok()) {
          events.push_back({events.empty() ? 0 : events.back().at_ns, "warning",
                            "the log of function " + f.spec.name() + " at " + id + ": " +
                                logs.status().ToString()});
          continue;
        }
        for (const auto& line : logs->lines()) {
          out << f.spec.name() << " " << adapters::ReadableFunctionLogLine(line, false) << "\n";
        }
      }
    }
  }

  // Whether a stop ended the run before its replica check started.
  bool interrupted() const { return interrupted_; }
  const Driver& driver() const { return driver_; }

 private:
  struct NodeProc {
    std::string endpoint;
    std::string public_key;  // with security: curve
    std::optional<adapters::Subprocess> proc;
    uint64_t starts = 0;  // a restart gets a new seed
  };

  std::string LogOf(const std::string& id) const { return run_dir_ + "/logs/" + id + ".log"; }
  std::string TraceOf(const std::string& id) const { return run_dir_ + "/" + id + ".trace"; }
  std::string ReadyOf(const std::string& id) const { return run_dir_ + "/ready/" + id; }
  std::string KeysDir() const { return run_dir_ + "/keys"; }

  // security: curve: a key pair for every node and one for this run's driver and callers, the
  // one client of every node's access file (it may do everything, without quotas).
  Status MakeKeys() {
    std::error_code ec;
    std::filesystem::create_directories(KeysDir(), ec);
    if (!ec) {
      std::filesystem::permissions(KeysDir(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::replace, ec);
    }
    if (ec) return Status::IOError("cannot make " + KeysDir() + ": " + ec.message());
    for (auto& [id, n] : nodes_) {
      auto pair = adapters::GenerateKeyPair();
      if (!pair.ok()) return pair.status();
      ENOKI_RETURN_IF_ERROR(adapters::WriteKeyFiles(KeysDir() + "/" + id, id, *pair));
      n.public_key = pair->public_key;
    }
    auto driver = adapters::GenerateKeyPair();
    if (!driver.ok()) return driver.status();
    driver_keys_ = *driver;
    std::ofstream access(KeysDir() + "/access");
    access << "# the run's driver and callers\n"
           << RunAccessLine("driver", driver->public_key) << "\n";
    if (!access.flush()) return Status::IOError("cannot write " + KeysDir() + "/access");
    return Status::Ok();
  }

  size_t NodeIndex(const std::string& node) const {
    for (size_t i = 0; i < s_.nodes.size(); ++i) {
      if (s_.nodes[i].name == node) return i;
    }
    return 0;
  }
  std::map<Pair, net::LinkSpec> CurrentLinks() const {
    std::map<Pair, net::LinkSpec> links;
    for (const Pair& p : driver_.Pairs()) links[p] = driver_.Current(p);
    return links;
  }

  Status Interrupted() const { return Status::Unavailable("interrupted before the run started"); }

  Status StartNode(const std::string& id) {
    NodeProc& n = nodes_.at(id);
    std::error_code ec;
    std::filesystem::create_directories(run_dir_ + "/ready", ec);
    std::filesystem::remove(ReadyOf(id), ec);  // a restarted node writes a new one
    adapters::NodeProcessOptions o;
    o.binary = o_.enoki_binary;
    o.id = id;
    o.listen = n.endpoint;
    o.ready_file = ReadyOf(id);
    o.data_dir = run_dir_ + "/data/" + id;
    o.log_level = "info";
    o.seed = s_.seed + 1 + NodeIndex(id) + 1000003 * n.starts++;
    if (auto t = s_.FindNode(id)->forward_timeout) {
      o.forward_timeout = std::chrono::duration_cast<milliseconds>(*t);
    }
    if (s_.traces) o.trace = TraceOf(id);
    // Its process functions may run from their programs' folders (the scenario's; the loader
    // made their paths absolute).
    std::set<std::string> process_dirs;
    for (const auto& f : s_.functions) {
      if (f.spec.runtime() == "process" &&
          std::find(f.nodes.begin(), f.nodes.end(), id) != f.nodes.end()) {
        process_dirs.insert(std::filesystem::path(f.spec.handler()).parent_path().string());
      }
    }
    for (const auto& dir : process_dirs) o.more.insert(o.more.end(), {"--process-dir", dir});
    std::map<std::string, net::LinkSpec> to_peers;
    for (const auto& peer : peers_.at(id)) {
      o.peers.emplace_back(peer, nodes_.at(peer).endpoint);
      to_peers[peer] = driver_.Current({id, peer});
    }
    if (s_.curve) {
      o.more.insert(o.more.end(),
                    {"--key", KeysDir() + "/" + id + ".key", "--access", KeysDir() + "/access"});
      for (const auto& peer : peers_.at(id)) {
        o.more.insert(o.more.end(), {"--peer-key", peer + "=" + nodes_.at(peer).public_key});
      }
    }
    adapters::Placement where;
    where.cpus = s_.FindNode(id)->cpus;
    backend_->Configure(id, to_peers, o, where);
    auto proc = adapters::Subprocess::Start(adapters::NodeCommandLine(o), LogOf(id), where);
    if (!proc.ok()) return proc.status();
    n.proc.emplace(std::move(proc.value()));
    if (calls_) calls_->MarkUp(id);
    return Status::Ok();
  }

  // Driver::Mode: the driver's own requests over the node's control socket; a caller's over its
  // client's link (shaped here, or by netem) and the socket of that client to the node.
  void Call(const std::string& from, const std::string& node, proto::Request request,
            OnReply on_reply) override {
    calls_->Call(from, node, std::move(request), std::move(on_reply));
  }

  // Driver::Mode: a client's links are shaped by its callers (or by netem), the others by the
  // backend.
  void SetLink(const Pair& p, const net::LinkSpec& spec) override {
    calls_->SetLink(p, spec);
    backend_->SetLink(p, spec);
  }

  // Driver::Mode: the callers' connections are up.
  void AwaitCallers(std::function<void(Status)> ready) override {
    calls_->AwaitCallers(std::move(ready));
  }

  // Driver::Mode: every process's window of lateness and CPU starts now.
  void RunStarts() override {
    std::vector<ProcessLoads::Process> all;
    for (const auto& [id, n] : nodes_) all.push_back({id, "node"});
    loads_.Start(*calls_, driver_, all);
  }

  // Driver::Mode.
  void Crash(const std::string& node) override {
    NodeProc& n = nodes_.at(node);
    n.proc->Kill();
    calls_->MarkDown(node);
  }
  Status Restart(const std::string& node) override { return StartNode(node); }

  // A node that ended without a crash event is an error of the run (recorded as an `error` event
  // and said at once); it stays down, and the callers' requests to it fail from then on.
  void CheckNodesAlive() {
    for (auto& [id, n] : nodes_) {
      if (calls_->down(id) || !n.proc) continue;
      std::optional<int> status = n.proc->Wait(milliseconds(0));
      if (!status) continue;
      calls_->MarkDown(id);
      std::string what = "node " + id + " " + adapters::DescribeWaitStatus(*status) +
                         " during the run" +
                         (WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL
                              ? " (the kernel's out-of-memory killer sends SIGKILL: see dmesg)"
                              : "") +
                         "; its log: " + LogOf(id);
      driver_.Record("error", what);
      std::fprintf(stderr, "%senoki: %s\n", o_.progress ? "\n" : "", what.c_str());
    }
  }

  const Scenario& s_;
  const EmulateOptions& o_;
  std::string run_dir_;
  std::function<bool()> stop_requested_;
  std::unique_ptr<LinksBackend> backend_;
  adapters::EventLoop loop_;
  Driver driver_;
  std::map<std::string, NodeProc> nodes_;               // cloud and edge nodes
  std::map<std::string, std::set<std::string>> peers_;  // of each node (testbed::Peers)
  adapters::KeyPair driver_keys_;                       // with security: curve
  std::optional<NodeCalls> calls_;                      // once the nodes are up
  ProcessLoads loads_{loop_};
  zmq::context_t context_{1};  // of the blocking clients that collect the loads
  bool interrupted_ = false;
};

}  // namespace

const char* LinksName(Links links) {
  switch (links) {
    case Links::kAuto:
      return "auto";
    case Links::kNetem:
      return "netem";
    case Links::kShaper:
      return "shaper";
  }
  return "?";
}

core::Result<LinksChoice> ChooseLinks(Links requested, const Scenario& s) {
  if (requested == Links::kShaper) return LinksChoice{Links::kShaper, "asked for"};
  // The first link that drops whole messages, which netem cannot (it loses packets, which TCP
  // retransmits).
  std::string drops;
  auto check = [&](const std::string& where, const net::LinkSpec& spec) {
    if (drops.empty() && spec.drop > 0) drops = where;
  };
  for (const auto& [tiers, spec] : s.tier_links) {
    check(std::string("tier_links.") + TierName(tiers.first) + "-" + TierName(tiers.second), spec);
  }
  for (const auto& l : s.links) check("the link between " + l.a + " and " + l.b, l.spec);
  for (const auto& e : s.timeline) {
    if (e.kind == TimelineEvent::Kind::kLink) {
      check("the timeline's link between " + e.link.a + " and " + e.link.b, e.link.spec);
    }
  }
  if (!drops.empty()) {
    std::string why = drops + " drops whole messages (drop), which only the shaper can";
    if (requested == Links::kNetem) {
      return Status::InvalidArgument("--links netem: " + why +
                                     " (netem loses packets, and TCP retransmits them: use loss)");
    }
    return LinksChoice{Links::kShaper, "auto: " + why};
  }
  Status netem = adapters::NetemNetwork::Available();
  if (requested == Links::kNetem) {
    if (!netem.ok()) return Status(netem.code(), "--links netem: " + netem.message());
    return LinksChoice{Links::kNetem, "asked for"};
  }
  if (netem.ok()) return LinksChoice{Links::kNetem, "auto: root, and the kernel has sch_netem"};
  return LinksChoice{Links::kShaper, "auto: " + netem.message()};
}

double Shorten(Scenario& s, core::Duration duration) {
  Duration natural{0};
  for (const auto& w : s.workloads) {
    Duration length = w.duration.value_or(Duration::max());
    if (w.rate && w.requests) {
      length = std::min(length, std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
                                    static_cast<double>(*w.requests) / *w.rate)));
    }
    if (length != Duration::max()) natural = std::max(natural, w.start + length);
  }
  for (const auto& e : s.timeline) natural = std::max(natural, e.at);
  if (natural <= duration || natural == Duration(0)) return 1;
  double f = static_cast<double>(duration.count()) / static_cast<double>(natural.count());
  auto scale = [f](Duration d) {
    return Duration(static_cast<Duration::rep>(static_cast<double>(d.count()) * f));
  };
  s.warmup = scale(s.warmup);
  for (auto& w : s.workloads) {
    w.start = scale(w.start);
    w.think = scale(w.think);
    if (w.duration) w.duration = scale(*w.duration);
    if (w.requests) {
      w.requests = std::max<int64_t>(1, std::llround(static_cast<double>(*w.requests) * f));
    }
  }
  for (auto& e : s.timeline) e.at = scale(e.at);
  return f;
}

core::Result<EmulationResult> Emulate(const Scenario& scenario, const EmulateOptions& options,
                                      const std::function<bool()>& stop_requested) {
  auto links = LinkTable(scenario);
  if (!links.ok()) return links.status();
  std::string dir = options.results_dir.empty() ? scenario.results : options.results_dir;
  std::string stamp = UtcNow("%Y%m%d-%H%M%S") + "-" + std::to_string(::getpid());
  std::string base = dir + "/" + scenario.name + "-" + stamp;
  std::error_code ec;
  std::filesystem::create_directories(base + "/logs", ec);
  if (ec) return Status::IOError("cannot create " + base + "/logs: " + ec.message());
  auto db = ResultsDb::Create(base + ".db");
  if (!db.ok()) return db.status();

  RunInfo info{scenario.name,     scenario.file,     scenario.text,
               scenario.seed,     "emulate",         LinksName(options.links),
               ENOKI_VERSION,     HostDescription(), UtcNow("%Y-%m-%dT%H:%M:%SZ"),
               options.time_scale};
  EmulationResult result;
  result.database = (*db)->path();
  // What the run leaves is its database and the nodes' logs: not their stores, ready files, keys.
  auto clean_up = [&] {
    for (const char* part : {"/data", "/ready", "/keys"})
      std::filesystem::remove_all(base + part, ec);
  };
  {
    Emulation run(scenario, options, *links, base, stop_requested);
    Status st = run.StartNodes();
    if (st.ok()) st = run.Run();
    if (!st.ok()) {
      db->reset();
      std::filesystem::remove(result.database, ec);
      clean_up();
      return Status(st.code(), st.message() + " (node logs: " + base + "/logs)");
    }
    result.interrupted = run.interrupted();
    std::vector<KeygroupCheck> checks;
    if (!result.interrupted) checks = run.driver().checks();
    std::vector<EventRecord> events = run.driver().events();
    std::vector<ProcessRecord> loads = run.CollectLoads(events);
    run.SaveFunctionLogs(events);
    run.StopNodes();
    // The traces go in first; one that cannot be read is an error event, not a lost run.
    if (Status st = run.WriteTraces(**db); !st.ok()) {
      events.push_back({events.empty() ? 0 : events.back().at_ns, "error", st.message()});
    }
    Status written = WriteResults(**db, scenario, info, result.interrupted, *links,
                                  run.driver().requests(), events, checks);
    if (written.ok()) written = (*db)->WriteProcesses(loads);
    if (!written.ok()) {
      clean_up();
      return written;
    }
  }
  clean_up();
  return result;
}

}  // namespace enoki::testbed
