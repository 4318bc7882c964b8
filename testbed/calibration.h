// Calibration: the compute costs a simulation gives what its scenario does not cost, each native
// function's invocation and the store's commit, measured once on this machine on a real node as
// an emulation runs one (SQLite storage in WAL mode, ZeroMQ over loopback TCP, its own event loop
// thread; the function's keygroup on the node itself), and kept in a file, so that later runs,
// and their databases, use the same numbers until the file is removed. What is measured: over
// 200 invocations (after 20 to warm up), the median round trip of one from a client, its commits'
// time left out (the function's work and the messaging both ways: what a real node adds to the
// network's delay), and per call that committed, its mean commit: their distributions
// (sim::CostModel::Measured), from which a simulation draws. The commit is measured with the
// first functions measured and kept after.
// The wake-up is measured with the first function measured too, as the emulation's callers call
// a node on their host, from an event loop (adapters::EventLoop) with nothing else to do: 50
// calls, each after the node and the caller were left idle 100 ms, each handed to the node
// net::kDeliveryLead ahead of its arrival time and stamped with it (the node holds it until then,
// asleep), its answer taken a link of kDeliveryLead after the node sent it; per call, the time
// from the request's arrival to the answer's, less that link, less the median round trip of the
// function's back-to-back calls (their commits in): what a node woken from idle, and its caller,
// take beyond the function's and the commit's costs (their wake-ups, their cold caches). The
// simulation charges it to a node that was idle (sim::SimCluster::Costs::wakeup).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/status.h"
#include "net/proto/enoki.pb.h"
#include "sim/cost_model.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

struct Calibration {
  std::string measured;   // where and when: "host, N cores, 2026-11-27T08:00:00Z"
  sim::CostModel commit;  // one commit of the store (measured: its percentiles)
  sim::CostModel wakeup;  // what a node idle for a while pays beyond them (see above)
  std::map<std::string, sim::CostModel> functions;  // one invocation, by CalibrationKey
};

// A function to measure: deployed as `spec`, invoked with the body template `body` (a workload's,
// testbed/scenario.h) expanded per call (caller 0, sequence number i).
struct Probe {
  proto::FunctionSpec spec;
  std::string body;
};

// What a native function's cost depends on: its handler, its parameters and the body it is
// called with ("movingaverage window=10 body=c{caller} {int:0:100}").
std::string CalibrationKey(const Probe& probe);

// The probe of each function entry of `s` that a simulation calibrates (a native function the
// scenario gives no cost), with the body the first workload calling it there sends; nullopt for
// the others.
std::vector<std::optional<Probe>> CalibratedFunctions(const Scenario& s);

// Reads the calibration at `path` (a missing file: none yet), measures what it lacks (the commit,
// the wake-up, and each probe whose key it has not), and writes the file back when it measured
// anything.
core::Result<Calibration> Calibrate(const std::string& path, const std::vector<Probe>& probes);

// `enoki calibrate`: the commit, the wake-up and `probes` measured afresh, `repeats` times over
// (each a node of its own), and why the repeats say the machine was not quiet enough, one line per
// cost (empty: they agree). Repeats disagree when a cost's p50 differs between two of them by more
// than half the smaller plus 0.1 ms, or when a repeat's p99 is more than 20 times its p50 and
// more than 0.5 ms above it (a busy machine's preemptions: a quiet one's tails stay within a few
// times); the wake-up, whose tail is what it measures, by its p50s only.
struct CalibrationRepeats {
  std::vector<Calibration> repeats;
  std::vector<std::string> disagreements;
};
core::Result<CalibrationRepeats> MeasureRepeats(const std::vector<Probe>& probes, int repeats);
// What `enoki calibrate` keeps of its repeats (at least one, each with the same functions): each
// cost from the repeat whose p99 of it is the median one (of an even number, the lower middle),
// so that a stall during one repeat does not become every simulation's tail; `measured` from
// the last.
Calibration MedianRepeat(const std::vector<Calibration>& repeats);
// Writes `c`'s commit, wake-up and functions into the file at `path` (a missing file: created),
// replacing what it had of them and keeping its other functions.
core::Status KeepCalibration(const std::string& path, const Calibration& c);
// The 64-bit FNV-1a of the calibration file at `path`, as 16 hex digits; empty when unreadable.
std::string CalibrationDigest(const std::string& path);

// $XDG_CACHE_HOME/enoki/calibration.tsv, else $HOME/.cache/enoki/calibration.tsv.
std::string DefaultCalibrationPath();

}  // namespace enoki::testbed
