// The simulation's mode: a SimCluster and its network under the Driver.
#include "testbed/simulation.h"

#include <unistd.h>

#include <filesystem>

#include "net/trace.h"
#include "sim/cluster.h"
#include "testbed/driver.h"
#include "testbed/results.h"

namespace enoki::testbed {
namespace {

using core::Status;
using Pair = Driver::Pair;

class Simulation : private Driver::Mode {
 public:
  Simulation(const Scenario& s, const std::map<Pair, net::LinkSpec>& links)
      : s_(s),
        cluster_(NodeIds(s), s.seed, std::chrono::milliseconds(1)),
        driver_(s, cluster_.sim(), *this, links) {
    for (const auto& [pair, spec] : links) {
      cluster_.network().SetLink(pair.first, pair.second, spec);
    }
    for (const auto& id : NodeIds(s)) cluster_.SetTrace(id, &traces_[id]);
  }

  // Creates the keygroups and deploys the functions, as a client of the nodes would.
  Status Setup() {
    for (const auto& f : s_.functions) {
      if (f.spec.runtime() != "native" && !f.spec.runtime().empty()) {
        return Status::InvalidArgument("function " + f.spec.name() + ": runtime " +
                                       f.spec.runtime() +
                                       " cannot run in virtual time; simulation runs native "
                                       "functions");
      }
    }
    for (const auto& k : s_.keygroups) {
      proto::Request r;
      auto* c = r.mutable_create_keygroup();
      c->set_name(k.name);
      c->set_mode(k.mode);
      c->set_mutability(k.mutability);
      for (const auto& rep : k.replicas) c->add_replicas(rep);
      ENOKI_RETURN_IF_ERROR(Call(k.replicas[0], r, "keygroup " + k.name));
    }
    cluster_.sim().RunFor(std::chrono::seconds(1));  // the catalog reaches every node
    for (const auto& f : s_.functions) {
      for (const auto& at : f.nodes) {
        proto::Request r;
        *r.mutable_deploy_function()->mutable_spec() = f.spec;
        ENOKI_RETURN_IF_ERROR(Call(at, r, "function " + f.spec.name() + " at " + at));
      }
    }
    return Status::Ok();
  }

  void Drive() {
    driver_.Start();
    // Bounded: a scenario ends; a week of virtual time is more than any does.
    cluster_.sim().RunUntilTrue([this] { return driver_.Done(); }, std::chrono::hours(24 * 7));
  }

  std::vector<KeygroupCheck> CheckReplicas() {
    auto deadline = cluster_.sim().Now() + std::chrono::seconds(10);
    return testbed::CheckReplicas(
        s_,
        [this](const std::string& kg, const std::string& node) {
          if (!cluster_.up(node)) return ReplicaState{node, 0, 0, "down"};
          return testbed::ReadReplica(node, [&](const std::string& start) {
            proto::Request r;
            r.mutable_scan()->set_keygroup(kg);
            r.mutable_scan()->set_start(start);
            r.mutable_scan()->set_limit(1000);
            auto res = cluster_.Call(node, r, std::chrono::seconds(5));
            if (!res) return core::Result<proto::ScanResult>(Status::Unavailable("no answer"));
            if (res->code() != proto::OK) {
              return core::Result<proto::ScanResult>(Status::Internal(res->error()));
            }
            return core::Result<proto::ScanResult>(res->scan());
          });
        },
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
  static std::vector<std::string> NodeIds(const Scenario& s) {
    std::vector<std::string> ids;
    for (const auto& n : s.nodes) {
      if (n.tier != Tier::kClient) ids.push_back(n.name);
    }
    return ids;
  }

  Status Call(const std::string& node, const proto::Request& r, const std::string& what) {
    auto res = cluster_.Call(node, r, std::chrono::seconds(30));
    if (!res) return Status::Unavailable(what + ": node " + node + " did not answer");
    if (res->code() != proto::OK) return Status::InvalidArgument(what + ": " + res->error());
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
  Simulation run(scenario, *links);
  Status st = run.Setup();
  if (!st.ok()) {
    db->reset();
    std::filesystem::remove(path, ec);
    return st;
  }
  run.Drive();
  std::vector<KeygroupCheck> checks = run.CheckReplicas();
  ENOKI_RETURN_IF_ERROR(run.WriteTraces(**db));
  ENOKI_RETURN_IF_ERROR(WriteResults(**db, scenario, info, false, *links, run.driver().requests(),
                                     run.driver().events(), checks));
  return SimulationResult{path, run.events(), run.elapsed()};
}

}  // namespace enoki::testbed
