// ProcessEnv: child processes with pipes to their stdin, stdout and stderr, driven by the event
// loop; how a node runs process functions (node/process_function.h). Real mode implements it
// (adapters/child_processes.h); a simulation has none, which is why process functions exist only in
// real mode and emulation. Every handler runs on the loop's thread. The implementation decides
// which programs may run and as whom (the real one: adapters/child_processes.h, the sandbox).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace enoki::core {

class ProcessEnv {
 public:
  using ProcessId = uint64_t;
  // What a process (with what it starts) may use; 0: no limit.
  struct Limits {
    uint64_t memory_bytes = 0;  // resident memory: over it the process is killed
    uint64_t cpu_seconds = 0;   // CPU time over its life: then it is killed
    uint64_t open_files = 0;    // open descriptors
    uint64_t processes = 0;     // processes of its user
  };
  struct Spec {
    std::vector<std::string> argv;           // argv[0]: the program's absolute path
    std::map<std::string, std::string> env;  // set on top of this process's environment
    Limits limits;
  };
  struct Handlers {
    std::function<void(std::string_view bytes)> on_stdout;  // as they arrive
    std::function<void(std::string_view bytes)> on_stderr;
    // Once, after the process ended and what it wrote was delivered; `how` says how it ended:
    // "exited with status 3", "was killed by SIGSEGV", "exceeded its memory limit (256 MiB) and
    // was killed".
    std::function<void(const std::string& how)> on_exit;
  };

  virtual ~ProcessEnv() = default;
  // Starts a process that dies with this one, in a process group of its own. An error if it
  // cannot be run (no such program, not executable, not a program this env may run, ...).
  virtual Result<ProcessId> Spawn(const Spec& spec, Handlers handlers) = 0;
  // Queues `bytes` for the process's stdin; dropped if it closed its stdin or exited.
  virtual void Write(ProcessId id, std::string_view bytes) = 0;
  // Kills the process and its process group (SIGKILL). No handler of it runs after this returns.
  virtual void Kill(ProcessId id) = 0;
};

}  // namespace enoki::core
