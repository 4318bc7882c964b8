// Child processes on the event loop: pipes, pidfds, reaping.
#include "adapters/child_processes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "adapters/subprocess.h"

namespace enoki::adapters {

struct ChildProcesses::Child {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1, pidfd = -1;
  EventLoop::WatchId in_watch = 0, out_watch = 0, err_watch = 0, exit_watch = 0;
  std::string pending;  // bytes for stdin not written yet
  Handlers handlers;
  bool killed = false;  // by Kill: its pipes are closed, it waits to be reaped
};

namespace {

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("was killed by SIG") + (name != nullptr ? name : "?");
  }
  return "ended";
}

// How much one wakeup reads from one pipe: a child that writes without pause must not keep the
// loop from its other work (poll reports the rest next round).
constexpr size_t kReadBudget = 256 * 1024;

}  // namespace

ChildProcesses::ChildProcesses(EventLoop& loop) : loop_(loop) { ::signal(SIGPIPE, SIG_IGN); }

ChildProcesses::~ChildProcesses() {
  for (auto& [id, c] : children_) {
    ::kill(c->pid, SIGKILL);
    ::waitpid(c->pid, nullptr, 0);
    Close(*c);
  }
}

core::Result<core::ProcessEnv::ProcessId> ChildProcesses::Spawn(const Spec& spec,
                                                                Handlers handlers) {
  // Pipes: [0] read end, [1] write end; this side's ends are non-blocking, all close on exec.
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err}) {
      CloseFd(p[0]);
      CloseFd(p[1]);
    }
  };
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    close_all();
    return core::Status::IOError(std::string("pipe: ") + std::strerror(e));
  }
  adapters::SpawnOptions options;
  options.argv = spec.argv;
  options.env = spec.env;
  options.stdin_fd = in[0];
  options.stdout_fd = out[1];
  options.stderr_fd = err[1];
  options.die_with_parent = true;
  auto pid = adapters::Spawn(options);
  CloseFd(in[0]);
  CloseFd(out[1]);
  CloseFd(err[1]);
  if (!pid.ok()) {
    close_all();
    return pid.status();
  }
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0));
  if (pidfd < 0) {
    int e = errno;
    ::kill(*pid, SIGKILL);
    ::waitpid(*pid, nullptr, 0);
    close_all();
    return core::Status::IOError(std::string("pidfd_open: ") + std::strerror(e));
  }
  for (int fd : {in[1], out[0], err[0]}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  ProcessId id = next_id_++;
  auto c = std::make_shared<Child>();
  c->pid = *pid;
  c->in = in[1];
  c->out = out[0];
  c->err = err[0];
  c->pidfd = pidfd;
  c->handlers = std::move(handlers);
  Child* raw = c.get();
  c->in_watch = loop_.WatchFd(c->in, 0, [this, raw](short) { OnStdin(*raw); });
  c->out_watch = loop_.WatchFd(c->out, ZMQ_POLLIN, [this, raw](short) { Drain(*raw, false); });
  c->err_watch = loop_.WatchFd(c->err, ZMQ_POLLIN, [this, raw](short) { Drain(*raw, true); });
  c->exit_watch = loop_.WatchFd(pidfd, ZMQ_POLLIN, [this, id](short) { OnExit(id); });
  children_.emplace(id, std::move(c));
  return id;
}

void ChildProcesses::Write(ProcessId id, std::string_view bytes) {
  auto it = children_.find(id);
  if (it == children_.end() || it->second->in < 0) return;  // gone, killed, or stdin closed
  Child& c = *it->second;
  c.pending.append(bytes);
  OnStdin(c);
}

void ChildProcesses::OnStdin(Child& c) {
  while (!c.pending.empty()) {
    ssize_t n = ::write(c.in, c.pending.data(), c.pending.size());
    if (n > 0) {
      c.pending.erase(0, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {  // EPIPE: it closed its stdin; what it has not read is dropped
      c.pending.clear();
      loop_.Unwatch(c.in_watch);
      CloseFd(c.in);
      return;
    }
  }
  loop_.SetFdEvents(c.in_watch, c.pending.empty() ? 0 : ZMQ_POLLOUT);
}

void ChildProcesses::Drain(Child& c, bool err) {
  int& fd = err ? c.err : c.out;
  if (fd < 0) return;
  // Handlers are copied: one may kill this child (and so drop them) while it runs.
  auto handler = err ? c.handlers.on_stderr : c.handlers.on_stdout;
  char buf[65536];
  for (size_t budget = kReadBudget; budget > 0;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      if (handler) handler(std::string_view(buf, static_cast<size_t>(n)));
      if (fd < 0) return;  // the handler killed it
      budget -= std::min(budget, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    loop_.Unwatch(err ? c.err_watch : c.out_watch);
    CloseFd(fd);
    return;
  }
}

void ChildProcesses::OnExit(ProcessId id) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  std::shared_ptr<Child> c = it->second;
  // What it wrote before it ended is delivered first (unless a handler kills it meanwhile), up
  // to a budget: a descendant that holds its pipes open may still be writing.
  Drain(*c, false);
  Drain(*c, true);
  int status = 0;
  ::waitpid(c->pid, &status, WNOHANG);
  auto on_exit = std::move(c->handlers.on_exit);
  Close(*c);
  children_.erase(id);
  if (on_exit) on_exit(DescribeExit(status));
}

void ChildProcesses::Kill(ProcessId id) {
  auto it = children_.find(id);
  if (it == children_.end() || it->second->killed) return;
  Child& c = *it->second;
  ::kill(c.pid, SIGKILL);
  // Reaped once its pidfd says it is gone (SIGKILL is quick, but this never blocks the loop).
  c.killed = true;
  c.handlers = {};
  for (auto w : {c.in_watch, c.out_watch, c.err_watch}) loop_.Unwatch(w);
  for (int* fd : {&c.in, &c.out, &c.err}) CloseFd(*fd);
}

void ChildProcesses::Close(Child& c) {
  for (auto w : {c.in_watch, c.out_watch, c.err_watch, c.exit_watch}) loop_.Unwatch(w);
  for (int* fd : {&c.in, &c.out, &c.err, &c.pidfd}) CloseFd(*fd);
  c.handlers = {};
}

}  // namespace enoki::adapters
