// ProcessEnv: child processes with pipes to their stdin, stdout and stderr, driven by the event
// loop; how a node runs process functions (node/process_function.h). Real mode implements it
// (adapters/child_processes.h); a simulation has none, which is why process functions exist only in
// real mode and emulation. Every handler runs on the loop's thread.
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
  struct Spec {
    std::vector<std::string> argv;           // argv[0]: the program's path
    std::map<std::string, std::string> env;  // set on top of this process's environment
  };
  struct Handlers {
    std::function<void(std::string_view bytes)> on_stdout;  // as they arrive
    std::function<void(std::string_view bytes)> on_stderr;
    // Once, after the process ended and what it wrote was delivered; `how` says how it ended:
    // "exited with status 3", "was killed by SIGSEGV".
    std::function<void(const std::string& how)> on_exit;
  };

  virtual ~ProcessEnv() = default;
  // Starts a process that dies with this one. An error if it cannot be run (no such program,
  // not executable, ...).
  virtual Result<ProcessId> Spawn(const Spec& spec, Handlers handlers) = 0;
  // Queues `bytes` for the process's stdin; dropped if it closed its stdin or exited.
  virtual void Write(ProcessId id, std::string_view bytes) = 0;
  // Kills the process (SIGKILL). No handler of it runs after this returns.
  virtual void Kill(ProcessId id) = 0;
};

}  // namespace enoki::core
