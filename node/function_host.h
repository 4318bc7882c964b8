// FunctionHost: the FaaS side of a node. It registers with the Node as its function handler: the
// Node hands it every function request (deploy, delete, list, invoke), whether it came from a
// client, from a function on this node, or from another node.
// An invocation runs the deployed native function as a coroutine with a FunctionContext on the
// function's keygroup; it answers with the function's result, its error, or DEADLINE_EXCEEDED
// after the timeout (the function's later result is then dropped). A function that throws answers
// INTERNAL; the node and the other functions keep running.
//
// Counters (invocations, errors, timeouts) belong to one deployed version and start again when the
// function is redeployed. Deployments are durable (the Node stores them with its state): a
// restarted node deploys them again; counters and logs start afresh.
//
// A process function's code may come with its deployment (DeployFunctionRequest.files): the host
// checks it (CheckUpload), keeps it as a new generation in the runtime's CodeStore, runs the
// handler from there, and removes the generations no deployment runs once the deployment (or
// the deletion) is durable; at start it removes those no stored deployment names.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/env.h"
#include "core/process_env.h"
#include "node/code_store.h"
#include "node/function_context.h"
#include "node/node.h"
#include "node/process_function.h"

namespace enoki::node {

// A built-in function and the deployment parameters it reads (no others are accepted).
struct NativeFunction {
  using Fn = Task<core::Result<std::string>> (*)(FunctionContext&);
  Fn run = nullptr;
  std::vector<std::string> params;
};

// Native functions by handler name: what a host can run (functions/builtins.h has the built-in
// ones).
using NativeFunctions = std::map<std::string, NativeFunction>;

// Whether `spec` (runtime native) names one of `natives` and only parameters it reads; the error
// names what is wrong and what it takes.
core::Status CheckNativeSpec(const NativeFunctions& natives, const proto::FunctionSpec& spec);

// Uploaded code (DeployFunctionRequest.files): the most a node takes by default
// (--max-upload-bytes), the most files and the longest path in one upload.
inline constexpr uint64_t kDefaultMaxUploadBytes = 16ull << 20;
inline constexpr size_t kMaxUploadFiles = 10000;
inline constexpr size_t kMaxUploadPathBytes = 1024;
inline constexpr size_t kMaxUploadNameBytes = 255;  // of one part of a path (a file system's)

// Whether the upload `files` of function `name` may be stored: at most `max_bytes` in all
// (RESOURCE_EXHAUSTED naming the size and the limit), at most kMaxUploadFiles files, each path
// relative and inside the upload's folder (no leading '/', no '..' or '.' part, no empty part, no
// control character; at most kMaxUploadPathBytes), none twice or both a file and a folder, and
// `handler` one of them, executable (INVALID_ARGUMENT naming the path and the rule). Returns the
// total size.
core::Result<uint64_t> CheckUpload(const std::string& name, const std::string& handler,
                                   const CodeStore::Files& files, uint64_t max_bytes);

// What process functions need from the node's mode: child processes (a real node started with
// process directories has them; a simulation does not) and how workers run.
struct ProcessRuntime {
  core::ProcessEnv* processes = nullptr;
  WorkerOptions workers;
  // Without processes: why a process function is refused.
  std::string off = "runtime 'process' runs programs, which only real nodes can (not a simulation)";
  // Where uploaded code is kept (it must outlive the host); nullptr: uploads are refused.
  CodeStore* code = nullptr;
  uint64_t max_upload_bytes = kDefaultMaxUploadBytes;  // the most one upload may hold in all
};

class FunctionHost {
 public:
  static constexpr uint32_t kDefaultTimeoutMs = 10000;
  static constexpr uint32_t kDefaultConcurrency = 100;
  static constexpr uint32_t kMaxConcurrency = 1024;

  // Registers with `node` (which must outlive it) as its function handler; runtime "native" runs
  // `natives` (which must outlive it). Without `process_runtime.processes`, deploying a process
  // function is refused with `process_runtime.off`.
  FunctionHost(Node& node, core::Env& env, const NativeFunctions& natives,
               ProcessRuntime process_runtime = {});
  ~FunctionHost();
  FunctionHost(const FunctionHost&) = delete;
  FunctionHost& operator=(const FunctionHost&) = delete;

  // Appends the functions' metrics (calls, errors, timeouts, calls in flight, process workers;
  // docs/operations.md) to `w`.
  void WriteMetrics(MetricsWriter& w) const;

  // Called as each invocation starts, with its function (a simulation charges its compute time
  // to the node here); nullptr: nothing.
  void SetInvokeHook(std::function<void(const proto::FunctionSpec&)> hook) {
    invoke_hook_ = std::move(hook);
  }

 private:
  // Serves one function request (`caller`: who asked); `done` is called exactly once.
  void Execute(proto::Request request, const net::Caller& caller, Node::Done done);

  struct Call;
  struct Deployment {
    proto::FunctionSpec spec;
    NativeFunction::Fn fn = nullptr;           // runtime "native"
    std::shared_ptr<ProcessFunction> process;  // runtime "process"
    uint64_t invocations = 0;
    uint64_t errors = 0;
    uint64_t timeouts = 0;
    uint32_t in_flight = 0;
    std::shared_ptr<FunctionLog> log;  // shared by the versions of one function
    // The calls not known to be over, in the order they started: the order of their deadlines,
    // as every call of one deployment has its spec's timeout. One timer serves them all; while
    // any is here it is armed, due at the first's deadline or before.
    std::deque<std::pair<core::TimePoint, std::weak_ptr<Call>>> deadlines;
    bool deadline_armed = false;
  };

  // Whether a named caller may deploy `spec` within its quota: the functions it owns here, their
  // process workers, a function's concurrency. A spec without a concurrency gets the most the
  // quota leaves it (at most the node's default).
  core::Status FitQuota(proto::FunctionSpec& spec, const net::Caller& caller) const;
  core::Status Deploy(proto::FunctionSpec spec);
  // Checks and stores the uploaded `files` of `spec` as a new generation, which `spec` then
  // names.
  core::Status StoreUpload(proto::FunctionSpec& spec, const CodeStore::Files& files);
  // Removes the stored code of `name` other than the generation its deployment runs now (all of
  // it when none does); failures are logged.
  void DropOldCode(const std::string& name);
  void Invoke(const proto::InvokeRequest& request, proto::Response response, Node::Done done);
  static void Finish(Call& call, core::Result<std::string> result, bool timed_out);
  // Arms the deployment's deadline timer for its first call, unless it is armed.
  void ArmDeadline(const std::shared_ptr<Deployment>& d);
  // Fails the calls past their deadline, forgets those that are over, and arms the timer again
  // for the first of the others.
  void OnDeadline(const std::shared_ptr<Deployment>& d);

  Node& node_;
  core::Env& env_;
  const NativeFunctions& natives_;
  ProcessRuntime process_runtime_;
  std::map<std::string, std::shared_ptr<Deployment>> functions_;
  uint64_t next_invocation_ = 1;
  std::function<void(const proto::FunctionSpec&)> invoke_hook_;
  // Expires with the host: a deadline timer that fires later (the node crashed) does nothing.
  std::shared_ptr<FunctionHost*> self_ = std::make_shared<FunctionHost*>(this);
};

}  // namespace enoki::node
