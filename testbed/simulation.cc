// The simulation's mode: a SimCluster and its network under the Driver.
#include "testbed/simulation.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>

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
  std::vector<CostRecord> records;
};

// The scenario's costs, and the calibrated ones for what it does not cost.
core::Result<RunCosts> ResolveCosts(const Scenario& s, const std::string& calibration_path) {
  RunCosts costs;
  std::vector<Probe> probes;
  std::vector<std::string> keys(s.functions.size());  // of the calibrated ones
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
    } else if (!f.cost) {
      Probe& p = probes.emplace_back(Probe{f.spec, ""});
      for (const auto& w : s.workloads) {  // measured with the body its first callers send
        if (w.function == spec.name() &&
            std::find(f.nodes.begin(), f.nodes.end(), w.node) != f.nodes.end()) {
          p.body = w.body;
          break;
        }
      }
      keys[i] = CalibrationKey(p);
    }
    costs.specs.push_back(std::move(spec));
  }
  Calibration calibration;
  if (!probes.empty() || !s.commit_cost) {
    auto c = Calibrate(calibration_path, probes);
    if (!c.ok()) return c.status();
    calibration = std::move(c.value());
  }
  std::string calibrated = "calibrated: " + calibration.measured + " (" + calibration_path + ")";
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
  return costs;
}

class Simulation : private Driver::Mode {
 public:
  Simulation(const Scenario& s, const std::map<Pair, net::LinkSpec>& links, const RunCosts& costs)
      : s_(s),
        costs_(costs),
        cluster_(Peers(s), s.seed, std::chrono::milliseconds(1),
                 [&s](node::NodeOptions& o) {
                   const NodeDecl* d = s.FindNode(o.id);
                   if (d != nullptr && d->forward_timeout) o.forward_timeout = *d->forward_timeout;
                 }),
        driver_(s, cluster_.sim(), *this, links) {
    cluster_.SetCosts({[this](const std::string& node, const proto::FunctionSpec& spec) {
                         auto at = costs_.invocation.find(node);
                         if (at == costs_.invocation.end()) return core::Duration(0);
                         auto it = at->second.find(spec.name());
                         return it == at->second.end() ? core::Duration(0)
                                                       : it->second.Draw(cluster_.cost_rng());
                       },
                       costs_.commit});
    for (const auto& [pair, spec] : links) {
      cluster_.network().SetLink(pair.first, pair.second, spec);
    }
    for (const auto& n : s.nodes) {
      if (s.traces && n.tier != Tier::kClient) cluster_.SetTrace(n.name, &traces_[n.name]);
    }
  }

  // Creates the keygroups and deploys the functions, as a client of the nodes would: every
  // keygroup at once, then (the catalog having reached the nodes) every deployment at once.
  Status Setup() {
    std::vector<Call> calls;
    for (const auto& k : s_.keygroups) {
      Call& call = calls.emplace_back(Call{k.replicas[0], {}, "keygroup " + k.name});
      auto* c = call.request.mutable_create_keygroup();
      c->set_name(k.name);
      c->set_mode(k.mode);
      c->set_mutability(k.mutability);
      for (const auto& rep : k.replicas) c->add_replicas(rep);
    }
    ENOKI_RETURN_IF_ERROR(CallAll(calls));
    cluster_.sim().RunFor(std::chrono::seconds(1));  // the catalog reaches every node
    // Over links slower than that, the deployments wait for it, as in an emulation.
    calls.clear();
    std::set<std::pair<std::string, std::string>> needed;  // (node, keygroup)
    for (const auto& f : s_.functions) {
      for (const auto& at : f.nodes) needed.emplace(at, f.spec.keygroup());
    }
    for (const auto& [at, keygroup] : needed) {
      Call& call = calls.emplace_back(Call{at, {}, "node " + at});
      call.request.mutable_keygroup_info()->set_name(keygroup);
    }
    auto deadline = cluster_.sim().Now() + std::chrono::minutes(1);
    for (Status known = CallAll(calls); !known.ok(); known = CallAll(calls)) {
      if (cluster_.sim().Now() > deadline) {
        return Status::Unavailable(
            "the keygroups did not reach the functions' nodes within a "
            "minute of virtual time: " +
            known.message());
      }
      cluster_.sim().RunFor(std::chrono::milliseconds(100));
    }
    calls.clear();
    for (size_t i = 0; i < s_.functions.size(); ++i) {
      for (const auto& at : s_.functions[i].nodes) {
        const proto::FunctionSpec& spec = costs_.specs[i];
        Call& call = calls.emplace_back(Call{at, {}, "function " + spec.name() + " at " + at});
        *call.request.mutable_deploy_function()->mutable_spec() = spec;
      }
    }
    return CallAll(calls);
  }

  void Drive() {
    driver_.Start();
    // Bounded: a scenario ends; a week of virtual time is more than any does.
    cluster_.sim().RunUntilTrue([this] { return driver_.Done(); }, std::chrono::hours(24 * 7));
  }

  // Reads all replicas at once, each page after the other, as clients of their nodes would.
  std::vector<KeygroupCheck> CheckReplicas() {
    auto deadline = cluster_.sim().Now() + std::chrono::seconds(10);
    return testbed::CheckReplicas(
        s_, [this](const std::vector<ReplicaId>& replicas) { return ReadReplicas(replicas); },
        [&] {
          if (cluster_.sim().Now() > deadline) return false;
          cluster_.sim().RunFor(std::chrono::milliseconds(200));
          return true;
        });
  }

  const Driver& driver() const { return driver_; }
  uint64_t events() { return cluster_.sim().events(); }
  core::Duration elapsed() { return cluster_.sim().Now() - core::TimePoint{}; }

  // The nodes' traces into the database.
  Status WriteTraces(ResultsDb& db) {
    for (const auto& [id, trace] : traces_) {
      ENOKI_RETURN_IF_ERROR(db.WriteTrace(
          id,
          [&](const auto& each) {
            for (const auto& r : trace.records()) each(r);
            return Status::Ok();
          },
          driver_.start().time_since_epoch().count()));
    }
    return Status::Ok();
  }

 private:
  // The replicas being read: shared with the answers still on their way when a reading ends.
  struct Reading {
    std::vector<ReplicaId> replicas;
    std::vector<ReplicaReader> readers;
    size_t left = 0;
  };

  std::vector<ReplicaState> ReadReplicas(const std::vector<ReplicaId>& replicas) {
    auto reading = std::make_shared<Reading>();
    reading->replicas = replicas;
    for (const auto& [kg, node] : replicas) {
      reading->readers.emplace_back(node);
      if (cluster_.up(node)) {
        ++reading->left;
      } else {
        reading->readers.back().Fail("down");
      }
    }
    for (size_t i = 0; i < replicas.size(); ++i) {
      if (reading->readers[i].state().error.empty()) NextPage(reading, i);
    }
    cluster_.sim().RunUntilTrue([&] { return reading->left == 0; }, std::chrono::minutes(10));
    std::vector<ReplicaState> states;
    for (const auto& r : reading->readers) states.push_back(r.state());
    return states;
  }

  // Asks for the next page of replica `i`; a replica that does not answer within 5 s fails.
  void NextPage(const std::shared_ptr<Reading>& reading, size_t i) {
    proto::Request r;
    r.mutable_scan()->set_keygroup(reading->replicas[i].first);
    r.mutable_scan()->set_start(reading->readers[i].start());
    r.mutable_scan()->set_limit(1000);
    auto answered = std::make_shared<bool>(false);
    core::TimerId timer = cluster_.sim().Schedule(std::chrono::seconds(5), [reading, i, answered] {
      if (std::exchange(*answered, true)) return;
      reading->readers[i].Fail("UNAVAILABLE: no answer within 5 s");
      --reading->left;
    });
    cluster_.network().Request(
        "", reading->replicas[i].second, r,
        [this, reading, i, answered, timer](proto::Response&& res) {
          if (std::exchange(*answered, true)) return;
          cluster_.sim().Cancel(timer);
          if (res.code() != proto::OK) {
            reading->readers[i].Fail(proto::Code_Name(res.code()) + ": " + res.error());
          } else if (reading->readers[i].Add(res.scan())) {
            NextPage(reading, i);
            return;
          }
          --reading->left;
        });
  }

  struct Call {
    std::string node;
    proto::Request request;
    std::string what;  // for errors
  };

  // Sends every call at once and waits (up to 30 s of virtual time) for their answers. Returns
  // the first call's error, in order.
  Status CallAll(const std::vector<Call>& calls) {
    // Shared with answers that arrive after the wait.
    auto answers = std::make_shared<std::vector<std::optional<proto::Response>>>(calls.size());
    auto left = std::make_shared<size_t>(calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      cluster_.network().Request("", calls[i].node, calls[i].request,
                                 [answers, left, i](proto::Response&& r) {
                                   (*answers)[i] = std::move(r);
                                   --*left;
                                 });
    }
    cluster_.sim().RunUntilTrue([&] { return *left == 0; }, std::chrono::seconds(30));
    for (size_t i = 0; i < calls.size(); ++i) {
      const auto& answer = (*answers)[i];
      if (!answer) {
        return Status::Unavailable(calls[i].what + ": node " + calls[i].node + " did not answer");
      }
      if (answer->code() != proto::OK) {
        return Status::InvalidArgument(calls[i].what + ": " + answer->error());
      }
    }
    return Status::Ok();
  }

  // Driver::Mode.
  void Send(size_t w, const proto::Request& request) override {
    const WorkloadDecl& d = s_.workloads[w];
    if (!cluster_.up(d.node)) {  // as a connection to a process that is gone is refused
      driver_.Refused(request.id(), "node " + d.node + " is not reachable");
      return;
    }
    cluster_.network().Request(d.client, d.node, request,
                               [this](proto::Response&& r) { driver_.Answer(r); });
  }
  void SetLink(const Pair& p, const net::LinkSpec& spec) override {
    cluster_.network().SetLink(p.first, p.second, spec);
  }
  void Crash(const std::string& node) override { cluster_.Crash(node); }
  Status Restart(const std::string& node) override { return cluster_.Restart(node); }

  const Scenario& s_;
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
  Status st = run.Setup();
  if (!st.ok()) {
    db->reset();
    std::filesystem::remove(path, ec);
    return st;
  }
  result.setup_s = seconds_since(t);
  t = Clock::now();
  run.Drive();
  std::vector<KeygroupCheck> checks = run.CheckReplicas();
  result.run_s = seconds_since(t);
  t = Clock::now();
  ENOKI_RETURN_IF_ERROR(run.WriteTraces(**db));
  ENOKI_RETURN_IF_ERROR((*db)->WriteCosts(costs->records));
  ENOKI_RETURN_IF_ERROR(WriteResults(**db, scenario, info, false, *links, run.driver().requests(),
                                     run.driver().events(), checks));
  result.write_s = seconds_since(t);
  result.events = run.events();
  result.virtual_time = run.elapsed();
  return result;
}

}  // namespace enoki::testbed
