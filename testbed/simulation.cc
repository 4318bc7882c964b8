// The simulation's mode: a SimCluster and its network under the Driver.
#include "testbed/simulation.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

#include "enoki_version.h"
#include "net/trace.h"
#include "sim/cluster.h"
#include "testbed/calibration.h"
#include "testbed/driver.h"
#include "testbed/results.h"
#include "testbed/topology.h"

namespace enoki::testbed {
namespace {

using core::Status;
using Pair = Driver::Pair;

// The compute costs of a run (SimCluster::Costs), resolved before it starts.
struct RunCosts {
  std::vector<proto::FunctionSpec> specs;  // as deployed, one per scenario function entry
  // By node, then function.
  std::unordered_map<std::string, std::unordered_map<std::string, sim::CostModel>> invocation;
  sim::CostModel commit;
  sim::CostModel message;  // per message sent or received: CURVE, when the scenario costs it
  sim::CostModel wakeup;   // per message that wakes an idle node: calibrated, with the rest
  std::vector<CostRecord> records;
};

// The scenario's costs, and the calibrated ones for what it does not cost.
core::Result<RunCosts> ResolveCosts(const Scenario& s, const std::string& calibration_path) {
  RunCosts costs;
  std::vector<Probe> probes;
  std::vector<std::string> keys(s.functions.size());  // of the calibrated ones
  std::vector<std::optional<Probe>> calibrated_functions = CalibratedFunctions(s);
  for (size_t i = 0; i < s.functions.size(); ++i) {
    const FunctionDecl& f = s.functions[i];
    proto::FunctionSpec spec = f.spec;
    if (!spec.runtime().empty() && spec.runtime() != "native") {
      if (!f.cost) {
        return Status::InvalidArgument(
            "function " + spec.name() + ": runtime " + spec.runtime() +
            " cannot run in virtual time; give it a cost (for example cost: 5ms) and the "
            "simulation answers for it with an empty body after that time");
      }
      spec.set_runtime("native");
      spec.set_handler("idle");
    } else if (const auto& probe = calibrated_functions[i]) {
      probes.push_back(*probe);
      keys[i] = CalibrationKey(*probe);
    }
    costs.specs.push_back(std::move(spec));
  }
  Calibration calibration;
  bool calibrating = !probes.empty() || !s.commit_cost;
  if (calibrating) {
    auto c = Calibrate(calibration_path, probes);
    if (!c.ok()) return c.status();
    calibration = std::move(c.value());
  }
  std::string calibrated = "calibrated: " + calibration.measured + " (" + calibration_path +
                           ", digest " + CalibrationDigest(calibration_path) + ")";
  auto record = [&](const std::string& what, const sim::CostModel& m, bool given) {
    costs.records.push_back({what, m, given ? "scenario" : calibrated});
  };
  // One record per function name and cost: a large topology deploys one function at thousands
  // of nodes.
  std::map<std::pair<std::string, std::string>, size_t> recorded;  // (name, cost) -> record
  for (size_t i = 0; i < s.functions.size(); ++i) {
    const FunctionDecl& f = s.functions[i];
    sim::CostModel m = f.cost ? *f.cost : calibration.functions.at(keys[i]);
    for (const auto& n : f.nodes) costs.invocation[n][f.spec.name()] = m;
    std::string cost = f.cost ? "scenario " + std::to_string(m.mean.count()) + " " +
                                    std::to_string(m.jitter.count()) + " " +
                                    std::to_string(static_cast<int>(m.distribution))
                              : "calibrated " + keys[i];
    auto [it, added] = recorded.try_emplace({f.spec.name(), cost}, costs.records.size());
    if (added) record("function " + f.spec.name() + " at ", m, f.cost.has_value());
    std::string& what = costs.records[it->second].what;
    for (const auto& n : f.nodes) what += (what.ends_with(" at ") ? "" : ",") + n;
  }
  costs.commit = s.commit_cost ? *s.commit_cost : calibration.commit;
  record("commit", costs.commit, s.commit_cost.has_value());
  // The wake-up comes with the calibration: a scenario that costs everything itself has none.
  if (calibrating) {
    costs.wakeup = calibration.wakeup;
    record("wake-up (a node idle " +
               std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  sim::SimCluster::kIdleAfter)
                                  .count()) +
               " ms or more)",
           costs.wakeup, false);
  }
  if (s.security_cost) {
    costs.message = *s.security_cost;
    record("message (CURVE, at each end)", costs.message, true);
  }
  return costs;
}

class Simulation : private Driver::Mode {
 public:
  Simulation(const Scenario& s, const std::map<Pair, net::LinkSpec>& links, const RunCosts& costs)
      : costs_(costs),
        cluster_(Peers(s), s.seed, std::chrono::milliseconds(1),
                 [&s](node::NodeOptions& o) {
                   const NodeDecl* d = s.FindNode(o.id);
                   if (d != nullptr && d->forward_timeout) o.forward_timeout = *d->forward_timeout;
                 }),
        // A process function's stand-in is deployed in its place.
        driver_(s, cluster_.sim(), *this, links, costs.specs) {
    cluster_.SetCosts({[this](const std::string& node) -> sim::SimCluster::Costs::Invocation {
                         auto at = costs_.invocation.find(node);
                         if (at == costs_.invocation.end()) return nullptr;
                         return [this, &by_name = at->second](const proto::FunctionSpec& spec) {
                           auto it = by_name.find(spec.name());
                           return it == by_name.end() ? core::Duration(0)
                                                      : it->second.Draw(cluster_.cost_rng());
                         };
                       },
                       costs_.commit, costs_.message, costs_.wakeup});
    for (const auto& [pair, spec] : links) {
      cluster_.network().SetLink(pair.first, pair.second, spec);
    }
    for (const auto& n : s.nodes) {
      if (s.traces && n.tier != Tier::kClient) cluster_.SetTrace(n.name, &traces_[n.name]);
    }
    // Only a restart reads what a node kept of its commits: the others keep nothing.
    std::set<std::string> restarted;
    for (const auto& e : s.timeline) {
      if (e.kind == TimelineEvent::Kind::kRestart) restarted.insert(e.node);
    }
    for (const auto& n : s.nodes) {
      if (n.tier != Tier::kClient && !restarted.contains(n.name)) cluster_.KeepNothing(n.name);
    }
  }

  // Runs the set-up; returns why it failed.
  Status SetUp() {
    driver_.Run();
    // Bounded: every step of the set-up has a limit of its own.
    cluster_.sim().RunUntilTrue([this] { return driver_.phase() != Driver::Phase::kSettingUp; },
                                kLimit);
    return driver_.failure();
  }

  // Runs the workloads, the timeline and the replica check.
  void Drive() {
    cluster_.sim().RunUntilTrue([this] { return driver_.phase() == Driver::Phase::kFinished; },
                                kLimit);
  }

  const Driver& driver() const { return driver_; }
  uint64_t events() { return cluster_.sim().events(); }
  core::Duration elapsed() { return cluster_.sim().Now() - core::TimePoint{}; }

  // The nodes' traces into the database.
  Status WriteTraces(ResultsDb& db) {
    for (const auto& [id, trace] : traces_) {
      ENOKI_RETURN_IF_ERROR(db.WriteTrace(
          id,
          [&trace = trace](const auto& each) {
            for (const auto& r : trace.records()) each(r);
            return Status::Ok();
          },
          driver_.start().time_since_epoch().count()));
    }
    return Status::Ok();
  }

 private:
  // A scenario ends; a week of virtual time is more than any does.
  static constexpr core::Duration kLimit = std::chrono::hours(24 * 7);

  // Driver::Mode: every request is a client of its own (sim::SimNetwork::Request), from the
  // client's host or, for the driver's own, from a host with default links.
  void Call(const std::string& from, const std::string& node, proto::Request request,
            OnReply on_reply) override {
    if (!cluster_.up(node)) {  // as a connection to a process that is gone is refused
      return on_reply(Status::Unavailable("node " + node + " is not reachable"));
    }
    cluster_.network().Request(
        from, node, std::move(request),
        [on_reply = std::move(on_reply)](proto::Response&& r) { on_reply(std::move(r)); });
  }
  void SetLink(const Pair& p, const net::LinkSpec& spec) override {
    cluster_.network().SetLink(p.first, p.second, spec);
  }
  void Crash(const std::string& node) override { cluster_.Crash(node); }
  Status Restart(const std::string& node) override { return cluster_.Restart(node); }

  const RunCosts& costs_;
  std::map<std::string, net::TraceBuffer> traces_;  // outlives the cluster's nodes
  sim::SimCluster cluster_;
  Driver driver_;
};

}  // namespace

core::Result<SimulationResult> Simulate(const Scenario& scenario, const SimulateOptions& options) {
  auto links = LinkTable(scenario);
  if (!links.ok()) return links.status();
  std::string dir = options.results_dir.empty() ? scenario.results : options.results_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create " + dir + ": " + ec.message());
  auto db =
      ResultsDb::Create(dir + "/" + scenario.name + "-simulate-seed" +
                        std::to_string(scenario.seed) + "-" + std::to_string(::getpid()) + ".db");
  if (!db.ok()) return db.status();
  std::string path = (*db)->path();
  RunInfo info{scenario.name,
               scenario.file,
               scenario.text,
               scenario.seed,
               "simulate",
               "virtual",
               ENOKI_VERSION,
               "",
               "",
               options.time_scale};
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  SimulationResult result;
  result.database = path;
  auto t = Clock::now();
  auto costs = ResolveCosts(
      scenario, options.calibration.empty() ? DefaultCalibrationPath() : options.calibration);
  if (!costs.ok()) {
    db->reset();
    std::filesystem::remove(path, ec);
    return costs.status();
  }
  Simulation run(scenario, *links, *costs);
  Status st = run.SetUp();
  if (!st.ok()) {
    db->reset();
    std::filesystem::remove(path, ec);
    return st;
  }
  result.setup_s = seconds_since(t);
  t = Clock::now();
  run.Drive();
  result.run_s = seconds_since(t);
  t = Clock::now();
  ENOKI_RETURN_IF_ERROR(run.WriteTraces(**db));
  ENOKI_RETURN_IF_ERROR((*db)->WriteCosts(costs->records));
  ENOKI_RETURN_IF_ERROR(WriteResults(**db, scenario, info, false, *links, run.driver().requests(),
                                     run.driver().events(), run.driver().checks()));
  result.write_s = seconds_since(t);
  result.events = run.events();
  result.virtual_time = run.elapsed();
  return result;
}

}  // namespace enoki::testbed
