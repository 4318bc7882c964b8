// Simulation: runs a scenario in virtual time, in this process: every cloud and edge node is a
// node::Node with its function host on the simulator (sim::SimCluster), every link is the
// shaper's link model in the simulated network (client hosts included), and the same Driver as
// the emulation runs the run's life cycle (set-up, workloads and timeline, replica check) in
// virtual time (crashes lose what a node had not committed to its in-memory storage). The results
// database has the emulation's schema, with mode `simulate` and backend `virtual`; the same
// scenario and seed give the same database, byte for byte (the run's host and start time are left
// empty for that), as long as the calibration file stays the same.
//
// Compute costs: each invocation keeps its node's CPU busy for its function's cost, each commit
// of a node's store takes the commit cost on its commit thread (sim::SimCluster::Costs): the
// scenario's (a function's
// `cost`, `commit_cost`), else the calibrated ones (testbed/calibration.h). A process function
// cannot run in virtual time: it needs a cost, and a stand-in (the native `idle`) answers for it
// with an empty body. The costs used are recorded in the database (table costs).
#pragma once

#include <string>

#include "core/status.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

struct SimulateOptions {
  std::string results_dir;  // empty: the scenario's
  double time_scale = 1;    // what Shorten returned, stored with the run
  std::string calibration;  // the calibration file (testbed/calibration.h); empty: the default
};

struct SimulationResult {
  std::string database;            // its path (ReadReport summarizes it)
  uint64_t events = 0;             // the simulator's events, set-up included
  core::Duration virtual_time{0};  // from the start of the set-up to the end
  // Wall time (s) of the phases: calibrating (if needed), building the cluster and deploying;
  // running the workloads and the timeline (and the replica check); writing the database.
  double setup_s = 0, run_s = 0, write_s = 0;
};

// Runs `scenario`.
core::Result<SimulationResult> Simulate(const Scenario& scenario, const SimulateOptions& options);

}  // namespace enoki::testbed
