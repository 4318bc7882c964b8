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
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "adapters/netem.h"
#include "adapters/node_process.h"
#include "adapters/subprocess.h"
#include "adapters/trace_file.h"
#include "core/random.h"
#include "net/codec.h"
#include "net/link_model.h"
#include "testbed/driver.h"
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

// The port every node listens on in its own namespace (netem).
constexpr int kNetemPort = 7100;
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
        peers_(Peers(s)) {
    driver_.KeepRecent(o.progress);
  }

  ~Emulation() override {
    StopNodes();
    std::error_code ec;
    if (!sockets_.path.empty()) std::filesystem::remove_all(sockets_.path, ec);
  }

  // Stops every node (SIGTERM, then SIGKILL after 5 s) and removes the netem network.
  void StopNodes() {
    for (auto& [id, n] : nodes_) {
      if (n.proc) n.proc->Stop(std::chrono::seconds(5));
      n.proc.reset();
    }
    netem_.reset();  // after the processes in its namespaces ended
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
    if (o_.links == Links::kNetem) {
      std::vector<adapters::NetemNetwork::Host> hosts;
      for (const auto& n : s_.nodes) hosts.push_back({n.name, n.tier == Tier::kClient});
      std::map<Pair, net::LinkSpec> links;
      for (const Pair& p : driver_.Pairs()) links[p] = driver_.Current(p);
      auto netem = adapters::NetemNetwork::Create(hosts, links, run_dir_ + "/netem");
      if (!netem.ok()) return netem.status();
      netem_ = std::move(netem.value());
    }
    // Each node binds an address of its own that no other process can take: its namespace's
    // address under netem, else a Unix socket in this run's folder (a name, not a port that
    // could be free when chosen and taken when bound).
    if (!netem_) {
      size_t longest = 0;
      for (const auto& n : s_.nodes) longest = std::max(longest, n.name.size());
      auto folder = adapters::MakeSocketFolder(run_dir_ + "/sockets", longest);
      if (!folder.ok()) return folder.status();
      sockets_ = *folder;
    }
    for (const auto& n : s_.nodes) {
      if (n.tier == Tier::kClient) continue;
      nodes_[n.name].endpoint =
          netem_ ? "tcp://" + netem_->Address(n.name) + ":" + std::to_string(kNetemPort)
                 : "ipc://" + sockets_.path + "/" + n.name;
    }
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
    return Status::Ok();
  }

  Status Setup() {
    for (const auto& k : s_.keygroups) {
      proto::CreateKeygroupRequest r;
      r.set_name(k.name);
      r.set_mode(k.mode);
      r.set_mutability(k.mutability);
      for (const auto& rep : k.replicas) r.add_replicas(rep);
      adapters::Client c(context_, nodes_.at(k.replicas[0]).endpoint, std::chrono::seconds(10),
                         k.replicas[0]);
      Status st = c.CreateKeygroup(r);
      if (!st.ok()) return Status(st.code(), "keygroup " + k.name + ": " + st.message());
    }
    for (const auto& f : s_.functions) {
      for (const auto& at : f.nodes) {
        adapters::Client c(context_, nodes_.at(at).endpoint, std::chrono::seconds(10), at);
        // The keygroup reaches the node through replication first.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!c.KeygroupInfo(f.spec.keygroup()).ok()) {
          if (stop_requested_()) return Interrupted();
          if (std::chrono::steady_clock::now() > deadline) {
            return Status::Unavailable("node " + at + " did not learn keygroup " +
                                       f.spec.keygroup() + " within 10 s");
          }
          std::this_thread::sleep_for(milliseconds(20));
        }
        Status st = c.DeployFunction(f.spec);
        if (!st.ok()) {
          return Status(st.code(), "function " + f.spec.name() + " at " + at + ": " + st.message());
        }
      }
    }
    // The callers' and the timeline's sockets connect now, so they are up when the run starts.
    for (auto& [id, n] : nodes_) {
      n.control = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
      n.control->set(zmq::sockopt::linger, 0);
      n.control->connect(n.endpoint);
      loop_.AddSocket(*n.control, [this, id = id] { OnControlReplies(id); });
    }
    for (size_t w = 0; w < s_.workloads.size(); ++w) {
      WorkloadRun& run = runs_[w];
      run.socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
      run.socket->set(zmq::sockopt::linger, 0);
      run.socket->set(zmq::sockopt::immediate, 1);  // a node that is down refuses at once
      const WorkloadDecl& d = s_.workloads[w];
      // Under netem the callers send from their client's address, which picks their links.
      run.socket->connect(netem_ ? "tcp://" + netem_->Address(d.client) + ":0;" +
                                       netem_->Address(d.node) + ":" + std::to_string(kNetemPort)
                                 : nodes_.at(d.node).endpoint);
      loop_.AddSocket(*run.socket, [this, w] { OnReplies(w); });
    }
    std::this_thread::sleep_for(milliseconds(100));
    return Status::Ok();
  }

  // Runs the workloads and the timeline until both are done or a stop is requested.
  void Drive() {
    for (const auto& d : s_.workloads) {
      for (const Pair& p : {Pair{d.client, d.node}, Pair{d.node, d.client}}) {
        client_links_.try_emplace(p, ShapedByCaller(p),
                                  core::StreamSeed(s_.seed, "link/" + p.first + "->" + p.second));
      }
    }
    driver_.Start();
    Tick();
    loop_.Run();
    if (o_.progress) std::fprintf(stderr, "\n");
    if (netem_) {
      for (const auto& e : netem_->Finish()) driver_.Record("error", e);
    }
  }

  // What every replica of every keygroup holds, once they agree or after `wait` (or a stop).
  std::vector<KeygroupCheck> CheckReplicas(Duration wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    return testbed::CheckReplicas(
        s_,
        [this](const std::vector<ReplicaId>& replicas) {
          std::vector<ReplicaState> states;
          for (const auto& [kg, node] : replicas) states.push_back(ReadReplica(kg, node));
          return states;
        },
        [&] {
          if (std::chrono::steady_clock::now() > deadline || stop_requested_()) return false;
          std::this_thread::sleep_for(milliseconds(200));
          return true;
        });
  }

  bool interrupted() const { return interrupted_; }
  const Driver& driver() const { return driver_; }

 private:
  struct NodeProc {
    std::string endpoint;
    std::optional<adapters::Subprocess> proc;
    std::unique_ptr<zmq::socket_t> control;  // link changes, answered on the loop
    bool down = false;
    uint64_t starts = 0;  // a restart gets a new seed
  };
  struct WorkloadRun {
    std::unique_ptr<zmq::socket_t> socket;  // the callers' connection to the node
  };

  ReplicaState ReadReplica(const std::string& keygroup, const std::string& node) {
    if (nodes_.at(node).down) return {node, 0, 0, "down"};
    adapters::Client c(context_, nodes_.at(node).endpoint, std::chrono::seconds(5), node);
    return testbed::ReadReplica(
        node, [&](const std::string& start) { return c.Scan(keygroup, start, "", 1000); });
  }

  std::string LogOf(const std::string& id) const { return run_dir_ + "/logs/" + id + ".log"; }
  std::string TraceOf(const std::string& id) const { return run_dir_ + "/" + id + ".trace"; }
  std::string ReadyOf(const std::string& id) const { return run_dir_ + "/ready/" + id; }

  size_t NodeIndex(const std::string& node) const {
    for (size_t i = 0; i < s_.nodes.size(); ++i) {
      if (s_.nodes[i].name == node) return i;
    }
    return 0;
  }
  bool IsClient(const std::string& node) const {
    const NodeDecl* d = s_.FindNode(node);
    return d != nullptr && d->tier == Tier::kClient;
  }
  // The link a caller's own model shapes: none under netem (the kernel does).
  net::LinkSpec ShapedByCaller(const Pair& p) const {
    return netem_ ? net::LinkSpec{} : driver_.Current(p);
  }
  // A message in flight in this process on a link that was cut meanwhile is lost (shaper only).
  bool CutInProcess(const Pair& p) const { return !netem_ && driver_.Partitioned(p); }

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
    o.log_level = "warn";
    o.seed = s_.seed + 1 + NodeIndex(id) + 1000003 * n.starts++;
    if (auto t = s_.FindNode(id)->forward_timeout) {
      o.forward_timeout = std::chrono::duration_cast<milliseconds>(*t);
    }
    if (s_.traces) o.trace = TraceOf(id);
    for (const auto& peer : peers_.at(id)) {
      o.peers.emplace_back(peer, nodes_.at(peer).endpoint);
      if (!netem_) o.links[peer] = driver_.Current({id, peer}).ToString();
    }
    adapters::Placement where;
    if (netem_) where.netns = netem_->NamespacePath(id);
    where.cpus = s_.FindNode(id)->cpus;
    auto proc = adapters::Subprocess::Start(adapters::NodeCommandLine(o), LogOf(id), where);
    if (!proc.ok()) return proc.status();
    n.proc.emplace(std::move(proc.value()));
    n.down = false;
    return Status::Ok();
  }

  // Driver::Mode: over the client's link (shaped here, or by netem) and the workload's socket.
  void Send(size_t w, const proto::Request& request) override {
    const WorkloadDecl& d = s_.workloads[w];
    proto::Request addressed = request;
    addressed.set_to(d.node);
    std::string frame;
    net::EncodeEnvelope(addressed, &frame);
    TimePoint now = loop_.Now();
    uint64_t id = request.id();
    auto arrival = client_links_.at({d.client, d.node}).Arrival(now, frame.size());
    if (!arrival) return;  // lost on the way: the caller's timeout ends it
    // Handed to the node ahead of its arrival, which the node waits for (net::kDeliveryLead).
    if (!netem_) {
      net::AppendEnvelopeTime(proto::Envelope::kDeliverAtNsFieldNumber, *arrival, &frame);
    }
    loop_.Schedule(*arrival - net::kDeliveryLead - now, [this, w, id, frame = std::move(frame)] {
      const WorkloadDecl& d = s_.workloads[w];
      if (CutInProcess({d.client, d.node})) return;  // cut while on the way
      if (!runs_[w].socket->send(zmq::buffer(frame), zmq::send_flags::dontwait)) {
        driver_.Refused(id, "node " + d.node + " is not reachable");
      }
    });
  }

  void OnReplies(size_t w) {
    const WorkloadDecl& d = s_.workloads[w];
    zmq::message_t msg;
    while (runs_[w].socket->recv(msg, zmq::recv_flags::dontwait)) {
      proto::Envelope env;
      if (!env.ParseFromArray(msg.data(), static_cast<int>(msg.size())) || !env.has_response()) {
        continue;
      }
      if (!driver_.InFlight(env.response().id())) continue;  // it timed out meanwhile
      if (env.response().node() != d.node) {  // never counted as the addressed node's answer
        driver_.Record("error", "workload " + d.name + ": node '" + env.response().node() +
                                    "' answered request " + std::to_string(env.response().id()) +
                                    " sent to node " + d.node + " at " +
                                    nodes_.at(d.node).endpoint);
        continue;
      }
      TimePoint now = loop_.Now();
      // The response's way over the link starts when the node sent it, not when this loop
      // noticed it (the same clock: CLOCK_MONOTONIC).
      TimePoint sent = env.sent_at_ns() > 0 ? TimePoint(Duration(env.sent_at_ns())) : now;
      auto arrival = client_links_.at({d.node, d.client}).Arrival(std::min(sent, now), msg.size());
      if (!arrival) continue;  // lost on the way back: the caller's timeout ends it
      loop_.Schedule(*arrival - now, [this, &d, response = std::move(*env.mutable_response())] {
        if (CutInProcess({d.node, d.client})) return;  // cut while on the way
        driver_.Answer(response);
      });
    }
  }

  // Driver::Mode: shapes the link a -> b as `spec` where it is shaped: in the kernel under netem
  // (without waiting); else at the callers for a client's links, and at node a for the others
  // (asking without waiting: the answer comes on the loop; a node that is down gets its links
  // when it restarts).
  void SetLink(const Pair& p, const net::LinkSpec& spec) override {
    if (netem_) {
      if (!IsClient(p.first) || !IsClient(p.second)) netem_->SetLinks({{p, spec}});
      return;
    }
    if (auto link = client_links_.find(p); link != client_links_.end()) link->second.Set(spec);
    if (IsClient(p.first) || IsClient(p.second)) return;
    NodeProc& n = nodes_.at(p.first);
    if (n.down) return;
    proto::Request r;
    r.set_id(next_control_++);
    r.set_to(p.first);
    r.mutable_set_link()->set_peer(p.second);
    r.mutable_set_link()->set_spec(spec.ToString());
    std::string frame;
    net::EncodeEnvelope(r, &frame);
    if (!n.control->send(zmq::buffer(frame), zmq::send_flags::dontwait)) {
      driver_.Record("error", "cannot change link " + p.first + " -> " + p.second + ": not sent");
    }
  }

  void OnControlReplies(const std::string& node) {
    zmq::message_t msg;
    while (nodes_.at(node).control->recv(msg, zmq::recv_flags::dontwait)) {
      proto::Envelope env;
      if (!env.ParseFromArray(msg.data(), static_cast<int>(msg.size())) || !env.has_response()) {
        driver_.Record("error", "node " + node + " sent a malformed answer to a link change");
      } else if (env.response().code() != proto::OK) {
        driver_.Record("error",
                       "node " + node + " refused a link change: " + env.response().error());
      } else if (env.response().node() != node) {
        driver_.Record("error", "node '" + env.response().node() +
                                    "' answered a link change sent to node " + node);
      }
    }
  }

  // Driver::Mode.
  void Crash(const std::string& node) override {
    NodeProc& n = nodes_.at(node);
    n.proc->Kill();
    n.down = true;
  }
  Status Restart(const std::string& node) override { return StartNode(node); }

  // Every 50 ms: checks for a stop, for nodes that died and for the end; every second, the
  // progress line.
  void Tick() {
    if (stop_requested_()) {  // first: a Ctrl-C at the terminal also ends the nodes
      interrupted_ = true;
      loop_.Stop();
      return;
    }
    CheckNodesAlive();
    if (driver_.Done()) {
      loop_.Stop();
      return;
    }
    if (loop_.Now() >= next_progress_) {
      next_progress_ = loop_.Now() + std::chrono::seconds(1);
      std::vector<double> recent = driver_.TakeRecentMs();
      std::sort(recent.begin(), recent.end());
      if (o_.progress) {
        std::fprintf(stderr, "\r[%6.1fs] %zu requests, %lld errors, p50 %.2f ms (last second)   ",
                     core::ToMillis(loop_.Now() - driver_.start()) / 1000,
                     driver_.requests().size(), static_cast<long long>(driver_.errors()),
                     Percentile(recent, 0.5));
      }
    }
    loop_.Schedule(milliseconds(50), [this] { Tick(); });
  }

  // A node that ended without a crash event is an error of the run (recorded as an `error` event
  // and said at once); it stays down, and the callers' requests to it fail from then on.
  void CheckNodesAlive() {
    for (auto& [id, n] : nodes_) {
      if (n.down || !n.proc) continue;
      std::optional<int> status = n.proc->Wait(milliseconds(0));
      if (!status) continue;
      n.down = true;
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
  std::unique_ptr<adapters::NetemNetwork> netem_;  // the kernel's links, under netem
  adapters::SocketFolder sockets_;                 // of the nodes' Unix sockets (shaper only)
  zmq::context_t context_{1};
  adapters::EventLoop loop_;
  Driver driver_;
  std::map<std::string, NodeProc> nodes_;               // cloud and edge nodes
  std::map<std::string, std::set<std::string>> peers_;  // of each node (testbed::Peers)
  std::map<size_t, WorkloadRun> runs_;
  // A client's links to and from the nodes its workloads call, shaped here (shaper only): all
  // its callers share each one, its rate and its order, as they share one host's link.
  std::map<Pair, net::LinkModel> client_links_;
  TimePoint next_progress_{};
  uint64_t next_control_ = 1;  // ids of link-change requests
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

core::Result<LinksChoice> ChooseLinks(Links requested) {
  if (requested == Links::kShaper) return LinksChoice{Links::kShaper, "asked for"};
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
  {
    Emulation run(scenario, options, *links, base, stop_requested);
    Status st = run.StartNodes();
    if (st.ok()) st = run.Setup();
    if (!st.ok()) {
      db->reset();
      std::filesystem::remove(result.database, ec);
      std::filesystem::remove_all(base + "/data", ec);
      std::filesystem::remove_all(base + "/ready", ec);
      return Status(st.code(), st.message() + " (node logs: " + base + "/logs)");
    }
    run.Drive();
    result.interrupted = run.interrupted();
    std::vector<KeygroupCheck> checks;
    if (!result.interrupted) checks = run.CheckReplicas(std::chrono::seconds(10));
    run.StopNodes();
    // The traces go in first; one that cannot be read is an error event, not a lost run.
    std::vector<EventRecord> events = run.driver().events();
    if (Status st = run.WriteTraces(**db); !st.ok()) {
      events.push_back({events.empty() ? 0 : events.back().at_ns, "error", st.message()});
    }
    ENOKI_RETURN_IF_ERROR(WriteResults(**db, scenario, info, result.interrupted, *links,
                                       run.driver().requests(), events, checks));
  }
  std::filesystem::remove_all(base + "/data", ec);  // the nodes' stores; the logs stay
  std::filesystem::remove_all(base + "/ready", ec);
  return result;
}

}  // namespace enoki::testbed
