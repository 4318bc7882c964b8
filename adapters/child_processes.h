// ChildProcesses: the real ProcessEnv, and the sandbox of process functions' workers. Children run
// with pipes on their stdin, stdout and stderr, watched by the event loop (non-blocking on this
// side), and a pidfd that tells when they end. Children die with the node (PR_SET_PDEATHSIG), even
// when it is killed. The node ignores SIGPIPE from the moment this exists, so a child that closes
// its stdin cannot kill it.
//
// The sandbox (docs/security.md, "The sandbox"): a program runs only when its real path (symlinks
// resolved) lies inside one of the allowed folders; it runs in its own folder and process group,
// as the sandbox's user, with no_new_privs, and with the limits of its Spec: open files,
// processes and CPU time as resource limits; memory by watching its resident size every 100 ms
// (over the limit, its group is killed and `on_exit` says so), with an address-space limit of 4x
// as a backstop for what it starts.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/event_loop.h"
#include "core/process_env.h"

namespace enoki::adapters {

// Which programs may run as process functions, and as whom.
struct ProcessSandbox {
  std::vector<std::string> dirs;                     // real paths, without a trailing '/'
  std::string user;                                  // the user the workers run as
  std::string home;                                  // its home folder
  std::optional<std::pair<uid_t, gid_t>> switch_to;  // set when that is not this process's user
};

// The sandbox for folders `dirs` (each must exist; kept as its real path) and the user `user`.
// An empty `user` is `nobody` when this process runs as root, else this process's own user. A
// process that runs as root never runs workers as root; any other process can run them only as
// itself. The error names what is wrong.
core::Result<ProcessSandbox> MakeProcessSandbox(const std::vector<std::string>& dirs,
                                                const std::string& user);

// A size for messages: "256 MiB", "3 KiB", "1000 bytes".
std::string DescribeBytes(uint64_t bytes);

class ChildProcesses : public core::ProcessEnv {
 public:
  // How often the resident size of a child with a memory limit is read.
  static constexpr auto kMemoryCheckInterval = std::chrono::milliseconds(100);

  ChildProcesses(EventLoop& loop, ProcessSandbox sandbox);
  // Kills and reaps every child still running (and its process group).
  ~ChildProcesses() override;

  // Refuses (PERMISSION_DENIED) a program outside the sandbox's folders, naming it and them.
  core::Result<ProcessId> Spawn(const Spec& spec, Handlers handlers) override;
  void Write(ProcessId id, std::string_view bytes) override;
  void Kill(ProcessId id) override;

  // The real path of `program` if it may run here; otherwise why not.
  core::Result<std::string> Admit(const std::string& program) const;

 private:
  struct Child;
  void OnStdin(Child& c);
  // Hands what is there (up to a budget) to the handler; closes the pipe at end of file.
  void Drain(Child& c, bool err);
  void OnExit(ProcessId id);
  void Close(Child& c);
  // Kills the children over their memory limit; runs every kMemoryCheckInterval while one has one.
  void CheckMemory();

  EventLoop& loop_;
  ProcessSandbox sandbox_;
  std::map<ProcessId, std::shared_ptr<Child>> children_;
  ProcessId next_id_ = 1;
  std::optional<core::TimerId> memory_timer_;
};

}  // namespace enoki::adapters
