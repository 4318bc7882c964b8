// ChildProcesses: the real ProcessEnv. Children run with pipes on their stdin, stdout and stderr,
// watched by the event loop (non-blocking on this side), and a pidfd that tells when they end.
// Children die with the node (PR_SET_PDEATHSIG), even when it is killed. The node ignores SIGPIPE
// from the moment this exists, so a child that closes its stdin cannot kill it.
#pragma once

#include <map>
#include <memory>

#include "adapters/event_loop.h"
#include "core/process_env.h"

namespace enoki::adapters {

class ChildProcesses : public core::ProcessEnv {
 public:
  explicit ChildProcesses(EventLoop& loop);
  // Kills and reaps every child still running.
  ~ChildProcesses() override;

  core::Result<ProcessId> Spawn(const Spec& spec, Handlers handlers) override;
  void Write(ProcessId id, std::string_view bytes) override;
  void Kill(ProcessId id) override;

 private:
  struct Child;
  void OnStdin(Child& c);
  // Hands what is there (up to a budget) to the handler; closes the pipe at end of file.
  void Drain(Child& c, bool err);
  void OnExit(ProcessId id);
  void Close(Child& c);

  EventLoop& loop_;
  std::map<ProcessId, std::shared_ptr<Child>> children_;
  ProcessId next_id_ = 1;
};

}  // namespace enoki::adapters
