// Subprocess: starts a program as a child process and stops it, for the CLI's demo, the test
// harness and the emulation orchestrator. The child's stdout and stderr go to a log file (or are
// inherited). POSIX only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/status.h"

namespace enoki::adapters {

// Where a child runs: its network namespace and the CPUs it may use.
struct Placement {
  std::string netns;      // non-empty: a network namespace file (/run/netns/NAME) to enter
  std::vector<int> cpus;  // non-empty: its CPU affinity (inherited by its own children)
};

// A resource limit (setrlimit) of a child.
struct ResourceLimit {
  int resource;  // RLIMIT_...
  uint64_t soft;
  uint64_t hard;
};

// What Spawn starts, and how.
struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0]: the program's path
  std::map<std::string, std::string> env;  // set on top of this process's environment
  // The variables of this process's environment the child keeps besides `env`; nullopt: all.
  std::optional<std::set<std::string>> inherit_env;
  // Descriptors the child gets as its stdin, stdout and stderr (-1: inherited).
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  bool die_with_parent = false;    // SIGKILL when the parent dies (even by SIGKILL)
  bool own_process_group = false;  // out of the terminal's: its Ctrl-C does not reach the child
  Placement placement;
  std::string dir;  // the child's working directory; empty: inherited
  // The sandbox of a process function's worker (adapters/child_processes.h): the user it runs as
  // (its only group is `gid`), no_new_privs (so no setuid program gives it more), and resource
  // limits.
  std::optional<std::pair<uid_t, gid_t>> user;
  bool no_new_privs = false;
  std::vector<ResourceLimit> rlimits;
};

// Starts a child process (fork and exec) with every other descriptor closed and default signal
// dispositions; returns its pid, or the reason it could not be run.
core::Result<pid_t> Spawn(const SpawnOptions& options);

// What a wait status (as from waitpid) says: "exited with status 3", "was killed by signal 9
// (Killed)".
std::string DescribeWaitStatus(int status);

// Runs a program to its end (up to `timeout`, then kills it) and returns what it wrote to stdout
// and stderr together. A program name without a '/' is looked up in PATH, then in /usr/sbin and
// /sbin (where `ip` and `tc` live, often not on a user's PATH). An exit status other than 0 is an
// error whose message holds the command and its output. The program runs in a process group of
// its own, so that a Ctrl-C meant for this process does not stop it halfway.
core::Result<std::string> RunCommand(const std::vector<std::string>& argv,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(30));

class Subprocess {
 public:
  // Starts `argv` (argv[0] is a path), to be killed when this process dies (even by SIGKILL).
  // Output goes to `log_path` (appended) if it is not empty.
  static core::Result<Subprocess> Start(const std::vector<std::string>& argv,
                                        const std::string& log_path = "",
                                        const Placement& where = {});
  // The path of the running executable (for a program that starts copies of itself).
  static std::string SelfPath();

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  Subprocess(const Subprocess&) = delete;
  // Kills (SIGKILL) and reaps a child that is still running.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  // Sends `signal` to the child.
  void Signal(int signal);
  // Waits up to `timeout` for the child to exit; its exit status (as from waitpid) or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // SIGKILL and reap.
  void Kill();

 private:
  friend core::Result<std::string> RunCommand(const std::vector<std::string>&,
                                              std::chrono::milliseconds);
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;  // -1 once reaped
};

}  // namespace enoki::adapters
