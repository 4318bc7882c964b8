// Emulation: runs a scenario on this host. Every cloud and edge node is a real `enoki node`
// process; the callers of the client nodes run in this process, on one event loop. The links are
// emulated by one of two backends:
//  - the shaper: the nodes listen on loopback and each node's transport shapes its own links
//    (the user-space link shaper); the callers shape theirs with the same link model;
//  - netem: every node runs in a network namespace of its own, and the kernel shapes every link
//    (adapters/netem.h); the callers bind to their client's address on the namespaces' bridge.
// The orchestrator starts the nodes, runs the Driver on its event loop (which creates the
// keygroups, deploys the functions, drives the workloads and the timeline, and checks at the end
// that the replicas of every keygroup converged, waiting up to 10 s for replication to catch up),
// records every request and event in the run's results database, stops every process it started
// (also when interrupted), and moves the nodes' traces (every write, every store operation of a
// function) into the database.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

enum class Links { kAuto, kNetem, kShaper };
const char* LinksName(Links links);

// Which backend a run of `s` with `requested` uses, and why (auto: netem when
// adapters::NetemNetwork is available and no link of `s` drops whole messages, which netem cannot,
// else the shaper). An explicit netem that cannot run here, or cannot emulate `s`, is an error
// saying why.
struct LinksChoice {
  Links links;
  std::string why;
};
core::Result<LinksChoice> ChooseLinks(Links requested, const Scenario& s);

struct EmulateOptions {
  Links links = Links::kShaper;  // a choice made by ChooseLinks (not kAuto)
  std::string enoki_binary;      // the `enoki` to start nodes with
  std::string results_dir;       // empty: the scenario's
  core::Duration duration{0};    // > 0: shorten the run to about this long (times scale down)
  bool progress = false;         // a progress line on stderr every second
  double time_scale = 1;         // what Shorten returned, stored with the run
};

struct EmulationResult {
  std::string database;  // the results database's path (ReadReport summarizes it)
  bool interrupted = false;
};

// Runs `scenario`. Stops early, cleanly, when `stop_requested` (polled often) returns true.
core::Result<EmulationResult> Emulate(const Scenario& scenario, const EmulateOptions& options,
                                      const std::function<bool()>& stop_requested);

// Shortens a scenario to about `duration`: every time in it (workload starts, durations and think
// times, the timeline, the warm-up) scales by duration / its natural length, and so do request
// counts. The natural length counts workloads with a duration or a rate and requests, and the
// timeline. Returns the factor: 1 when the scenario is short enough already, or when it has no
// natural length (closed loops bounded by a request count only, and no timeline).
double Shorten(Scenario& scenario, core::Duration duration);

}  // namespace enoki::testbed
