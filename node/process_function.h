// ProcessFunction: a program (any executable: a Python or shell script, a compiled binary) as a
// function. It runs as worker processes that are kept alive between calls and serve one
// invocation at a time over the worker protocol on their stdin and stdout (docs/functions.md,
// "Process functions"). The store operations and calls a worker asks for run through the
// invocation's FunctionContext, exactly like a native function's. Workers are started as calls
// need them (at most the function's concurrency), restarted when they die (with a backoff when
// they die young), stopped when they were idle for the node's idle timeout, and what they write
// on stderr goes to the function's log. Which programs may run, as whom and within which limits
// is the ProcessEnv's to enforce (the real one: adapters/child_processes.h); the limits come from
// here: the function's own, or the node's.
//
// The processes come from a core::ProcessEnv, which only real mode has: in a simulation there are
// no process functions.
#pragma once

#include <coroutine>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/process_env.h"
#include "node/function_context.h"
#include "node/task.h"

namespace enoki::node {

// How a node runs its process functions' workers.
struct WorkerOptions {
  std::map<std::string, std::string> env;  // variables every worker gets (PYTHONPATH, ...)
  core::ProcessEnv::Limits limits;         // the node's: each function's default and maximum
  core::Duration idle_timeout{0};          // a worker idle this long is stopped; 0: never
};

class ProcessFunction : public std::enable_shared_from_this<ProcessFunction> {
 public:
  // The limits of the worker protocol.
  static constexpr size_t kMaxHeaderBytes = 64 * 1024;
  static constexpr uint64_t kMaxFieldBytes = 64ull << 20;

  // The limits of `spec`'s workers: what it asks for, the node's where it asks for nothing (0).
  // An error naming the node's option when it asks for more than the node allows.
  static core::Result<core::ProcessEnv::Limits> Limits(const proto::FunctionSpec& spec,
                                                       const core::ProcessEnv::Limits& node);

  // `options.env`: variables every worker gets besides its own (ENOKI_FUNCTION, ENOKI_KEYGROUP,
  // ENOKI_NODE_ID, ENOKI_PARAM_<NAME>); `limits`: as Limits() made them.
  ProcessFunction(core::ProcessEnv& processes, core::Env& env, const proto::FunctionSpec& spec,
                  const std::string& node_id, const WorkerOptions& options,
                  const core::ProcessEnv::Limits& limits, std::shared_ptr<FunctionLog> log);
  // Kills every worker.
  ~ProcessFunction();
  ProcessFunction(const ProcessFunction&) = delete;
  ProcessFunction& operator=(const ProcessFunction&) = delete;

  // Starts the first worker, so that a program that cannot run fails the deployment.
  core::Status Start();
  // Runs one invocation on an idle worker, or a new one. A worker that dies or breaks the
  // protocol during the call fails it with INTERNAL.
  Task<core::Result<std::string>> Run(FunctionContext& ctx);
  // Kills the worker running `invocation` (its timeout passed), which ends its Run.
  void Abort(uint64_t invocation);
  // Workers alive now, busy or idle.
  size_t workers() const { return workers_.size(); }

  // The name of an environment variable that carries parameter `name`: ENOKI_PARAM_ and the name
  // in capitals, with every character other than a letter or digit made '_'.
  static std::string ParamVariable(const std::string& name);

 private:
  struct Frame {
    std::string verb;
    std::vector<std::string> fields;
    uint64_t number = 0;  // scan: the limit; call: 1 for async
  };
  struct Worker {
    core::ProcessEnv::ProcessId id = 0;
    core::TimePoint started;
    uint64_t invocation = 0;  // the call it serves; 0 when idle
    std::string out;          // stdout bytes not parsed into frames yet
    std::string err;          // a stderr line not finished yet
    std::deque<Frame> frames;
    std::coroutine_handle<> waiter;   // Run, waiting for a frame
    std::optional<std::string> gone;  // why it serves no more: exited, killed, broke the protocol
    core::TimePoint idle_since;       // when its last call ended (or it started)
    bool idle_check = false;          // whether a timer will look whether it idles too long
  };
  // Awaitable: the worker's next frame, or why it has gone. It holds a plain pointer (the caller
  // keeps the worker alive): GCC 12 may destroy an awaiter temporary twice.
  struct NextFrame {
    Worker* w;
    bool await_ready() const noexcept { return !w->frames.empty() || w->gone.has_value(); }
    void await_suspend(std::coroutine_handle<> h) { w->waiter = h; }
    core::Result<Frame> await_resume();
  };

  core::Result<std::shared_ptr<Worker>> StartWorker();
  void OnStdout(const std::shared_ptr<Worker>& w, std::string_view bytes);
  void OnStderr(Worker& w, std::string_view bytes);
  void LogStderrLine(Worker& w);
  // Parses the frames at the start of w.out; an error when they break the protocol.
  core::Status Parse(Worker& w);
  // Takes `w` out of service: killed unless it exited by itself; its call, if any, fails with
  // `why`; another worker is started when none is left.
  void Lose(std::shared_ptr<Worker> w, const std::string& why, bool kill);
  static void Wake(Worker& w);
  void RestartLater(core::Duration delay);
  // Stops `w` once it has been idle for the idle timeout (checked by one timer per worker).
  void StopWhenIdle(const std::shared_ptr<Worker>& w);
  // Serves one store operation or call a worker asked for; returns the reply frame.
  static Task<std::string> Serve(FunctionContext& ctx, Frame frame);

  core::ProcessEnv& processes_;
  core::Env& env_;
  std::string name_;
  core::ProcessEnv::Spec spec_;
  uint32_t max_workers_;
  core::Duration idle_timeout_;
  std::shared_ptr<FunctionLog> log_;
  std::vector<std::shared_ptr<Worker>> workers_;  // alive and serving, busy or idle
  core::Duration restart_delay_{0};
  bool restart_pending_ = false;
};

}  // namespace enoki::node
