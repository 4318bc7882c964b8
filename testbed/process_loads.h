// ProcessLoads: how the processes of a real-time run kept up over the run (proto::LoopStats,
// adapters/loop_stats.h): the run's own process (the driver and its callers, on its event loop)
// and every node (and a cluster run's client hosts), asked over the wire (`loop_stats`,
// docs/protocol.md). When the workloads start,
// every process starts a new window (Start); at the end of the run each says how late its loop ran
// its timers and handed on shaped messages in it, and what CPU it and its host used (Collect).
// The emulation and the cluster mode share it; the simulation, in virtual time, has no lateness.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "adapters/client.h"
#include "adapters/event_loop.h"
#include "adapters/loop_stats.h"
#include "testbed/driver.h"
#include "testbed/node_calls.h"
#include "testbed/results.h"

namespace enoki::testbed {

class ProcessLoads {
 public:
  // A process of the run besides this one: its name (a node's, a client host's) and its role
  // ("node", "client host"), as ProcessRecord has them.
  struct Process {
    std::string name, role;
  };

  // `loop`: this process's, which must outlive this.
  explicit ProcessLoads(adapters::EventLoop& loop) : own_(loop) {}

  // The workloads start: this process's window starts now, and each of `processes` is asked over
  // `calls` to start its own, without waiting (one that cannot be asked is recorded in `driver`
  // as a `warning` event: its window then starts with it). A node restarted later starts its
  // window with its new process.
  void Start(NodeCalls& calls, Driver& driver, const std::vector<Process>& processes);

  // The windows end now (after the run, on the thread of the loop, which no longer runs): this
  // process's figures ("driver") and those of each of `processes` that `connect(name)` reaches (a
  // blocking client addressed to it), in that order. One that does not answer is left out, and
  // `warnings` says why.
  using Connect = std::function<adapters::Client(const std::string& name)>;
  std::vector<ProcessRecord> Collect(const std::vector<Process>& processes, const Connect& connect,
                                     std::vector<std::string>& warnings);

 private:
  adapters::LoopStats own_;
};

}  // namespace enoki::testbed
