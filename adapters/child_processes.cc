// Child processes on the event loop: pipes, pidfds, reaping, the sandbox.
#include "adapters/child_processes.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "adapters/subprocess.h"

namespace enoki::adapters {

struct ChildProcesses::Child {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1, pidfd = -1;
  EventLoop::WatchId in_watch = 0, out_watch = 0, err_watch = 0, exit_watch = 0;
  std::string pending;  // bytes for stdin not written yet
  Handlers handlers;
  bool killed = false;  // by Kill: its pipes are closed, it waits to be reaped
  Limits limits;
  std::string reason;  // set when the sandbox killed it: how it ended, for on_exit
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

// SIGKILL to a child and to its process group (what it started and did not move elsewhere).
void KillGroup(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
}

// The resident size of process `pid` in bytes, from /proc/PID/statm; 0 if it is gone.
uint64_t ResidentBytes(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/statm", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  unsigned long long size = 0, resident = 0;  // in pages
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// How much one wakeup reads from one pipe: a child that writes without pause must not keep the
// loop from its other work (poll reports the rest next round).
constexpr size_t kReadBudget = 256 * 1024;

}  // namespace

std::string DescribeBytes(uint64_t bytes) {
  if (bytes != 0 && bytes % (1 << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes != 0 && bytes % (1 << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

core::Result<ProcessSandbox> MakeProcessSandbox(const std::vector<std::string>& dirs,
                                                const std::string& user) {
  ProcessSandbox sandbox;
  for (const auto& dir : dirs) {
    std::error_code ec;
    auto real = std::filesystem::canonical(dir, ec);
    if (ec || !std::filesystem::is_directory(real)) {
      return core::Status::InvalidArgument("--process-dir " + dir + " is not a folder" +
                                           (ec ? " (" + ec.message() + ")" : ""));
    }
    sandbox.dirs.push_back(real.string());
  }
  uid_t self = ::geteuid();
  std::string name = user.empty() && self == 0 ? "nobody" : user;
  const passwd* pw = name.empty() ? ::getpwuid(self) : ::getpwnam(name.c_str());
  if (pw == nullptr) {
    return core::Status::InvalidArgument(name.empty() ? "this process's user " +
                                                            std::to_string(self) + " has no name"
                                                      : "--worker-user " + name + ": no such user");
  }
  sandbox.user = pw->pw_name;
  sandbox.home = pw->pw_dir;
  if (self == 0) {
    if (pw->pw_uid == 0) {
      return core::Status::InvalidArgument(
          "--worker-user " + name +
          ": a node never runs process functions as root; name an unprivileged user");
    }
    sandbox.switch_to = std::make_pair(pw->pw_uid, pw->pw_gid);
  } else if (pw->pw_uid != self) {
    return core::Status::InvalidArgument("--worker-user " + name +
                                         ": only a node that runs as root can run workers as "
                                         "another user; this one runs as uid " +
                                         std::to_string(self));
  }
  return sandbox;
}

ChildProcesses::ChildProcesses(EventLoop& loop, ProcessSandbox sandbox)
    : loop_(loop), sandbox_(std::move(sandbox)) {
  ::signal(SIGPIPE, SIG_IGN);
}

ChildProcesses::~ChildProcesses() {
  if (memory_timer_) loop_.Cancel(*memory_timer_);
  for (auto& [id, c] : children_) {
    KillGroup(c->pid);
    ::waitpid(c->pid, nullptr, 0);
    Close(*c);
  }
}

core::Result<std::string> ChildProcesses::Admit(const std::string& program) const {
  std::string dirs;
  for (const auto& d : sandbox_.dirs) dirs += (dirs.empty() ? "" : ", ") + d;
  if (!std::filesystem::path(program).is_absolute()) {
    return core::Status::InvalidArgument("the program " + program +
                                         " must be an absolute path (in " + dirs + ")");
  }
  std::error_code ec;
  std::string real = std::filesystem::canonical(program, ec).string();
  if (ec) return core::Status::IOError("cannot run " + program + ": " + ec.message());
  for (const auto& d : sandbox_.dirs) {
    if (real.size() > d.size() && real.compare(0, d.size(), d) == 0 &&
        (d == "/" || real[d.size()] == '/')) {
      return real;
    }
  }
  return core::Status::PermissionDenied(
      "the program " + program + (real == program ? " is" : " leads to " + real + ", which is") +
      " outside the node's process directories (--process-dir): " + dirs);
}

core::Result<core::ProcessEnv::ProcessId> ChildProcesses::Spawn(const Spec& spec,
                                                                Handlers handlers) {
  if (spec.argv.empty()) return core::Status::InvalidArgument("no program to start");
  auto program = Admit(spec.argv[0]);
  if (!program.ok()) return program.status();
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
  options.argv[0] = *program;  // what was checked, not what a symlink changed to since
  // Only what a program needs from the node's environment, which may hold the operator's secrets.
  options.inherit_env = std::set<std::string>{"PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ"};
  options.env = {{"HOME", sandbox_.home}, {"USER", sandbox_.user}, {"LOGNAME", sandbox_.user}};
  for (const auto& [name, value] : spec.env) options.env[name] = value;
  options.stdin_fd = in[0];
  options.stdout_fd = out[1];
  options.stderr_fd = err[1];
  options.die_with_parent = true;
  options.own_process_group = true;
  options.dir = std::filesystem::path(*program).parent_path().string();
  options.user = sandbox_.switch_to;
  options.no_new_privs = true;
  const Limits& l = spec.limits;
  // The address space of each of its processes: a backstop, far above what it may keep resident
  // (runtimes such as Python's reserve more than they use).
  if (l.memory_bytes != 0)
    options.rlimits.push_back({RLIMIT_AS, 4 * l.memory_bytes, 4 * l.memory_bytes});
  // SIGXCPU at the limit (on_exit says why), SIGKILL a second later if it catches that.
  if (l.cpu_seconds != 0) options.rlimits.push_back({RLIMIT_CPU, l.cpu_seconds, l.cpu_seconds + 1});
  if (l.open_files != 0) options.rlimits.push_back({RLIMIT_NOFILE, l.open_files, l.open_files});
  if (l.processes != 0) options.rlimits.push_back({RLIMIT_NPROC, l.processes, l.processes});
  // Only root may raise a hard limit: below root, a limit is at most the node's own.
  for (auto& r : options.rlimits) {
    rlimit mine{};
    if (::geteuid() == 0 || ::getrlimit(r.resource, &mine) != 0 || mine.rlim_max == RLIM_INFINITY) {
      continue;
    }
    r.soft = std::min<uint64_t>(r.soft, mine.rlim_max);
    r.hard = std::min<uint64_t>(r.hard, mine.rlim_max);
  }
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
    KillGroup(*pid);
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
  c->limits = spec.limits;
  Child* raw = c.get();
  c->in_watch = loop_.WatchFd(c->in, 0, [this, raw](short) { OnStdin(*raw); });
  c->out_watch = loop_.WatchFd(c->out, ZMQ_POLLIN, [this, raw](short) { Drain(*raw, false); });
  c->err_watch = loop_.WatchFd(c->err, ZMQ_POLLIN, [this, raw](short) { Drain(*raw, true); });
  c->exit_watch = loop_.WatchFd(pidfd, ZMQ_POLLIN, [this, id](short) { OnExit(id); });
  children_.emplace(id, std::move(c));
  if (spec.limits.memory_bytes != 0 && !memory_timer_) {
    memory_timer_ = loop_.Schedule(kMemoryCheckInterval, [this] { CheckMemory(); });
  }
  return id;
}

void ChildProcesses::CheckMemory() {
  memory_timer_.reset();
  bool watching = false;
  for (auto& [id, c] : children_) {
    uint64_t limit = c->limits.memory_bytes;
    if (limit == 0 || c->killed || !c->reason.empty()) continue;
    watching = true;
    if (ResidentBytes(c->pid) <= limit) continue;
    // Its exit, seen on its pidfd, tells the owner why.
    c->reason = "exceeded its memory limit (" + DescribeBytes(limit) + ") and was killed";
    KillGroup(c->pid);
  }
  if (watching) memory_timer_ = loop_.Schedule(kMemoryCheckInterval, [this] { CheckMemory(); });
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
  // What it started goes with it; before it is reaped, while its pid still names the group.
  ::kill(-c->pid, SIGKILL);
  int status = 0;
  ::waitpid(c->pid, &status, WNOHANG);
  std::string how = c->reason;
  if (how.empty() && c->limits.cpu_seconds != 0 && WIFSIGNALED(status) &&
      WTERMSIG(status) == SIGXCPU) {
    how = "used up its CPU time limit (" + std::to_string(c->limits.cpu_seconds) +
          " s) and was killed";
  }
  if (how.empty()) how = DescribeExit(status);
  auto on_exit = std::move(c->handlers.on_exit);
  Close(*c);
  children_.erase(id);
  if (on_exit) on_exit(how);
}

void ChildProcesses::Kill(ProcessId id) {
  auto it = children_.find(id);
  if (it == children_.end() || it->second->killed) return;
  Child& c = *it->second;
  KillGroup(c.pid);
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
