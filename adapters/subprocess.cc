// fork/exec child processes, with bounded waits.
#include "adapters/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

extern char** environ;

namespace enoki::adapters {

core::Result<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return core::Status::InvalidArgument("no program to start");
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : options.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string name(entry.substr(0, entry.find('=')));
    if (!options.env.contains(name) &&
        (!options.inherit_env || options.inherit_env->contains(name))) {
      env_strings.emplace_back(entry);
    }
  }
  for (const auto& [name, value] : options.env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t parent = ::getpid();
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  for (int c : options.placement.cpus) {
    if (c < 0 || c >= CPU_SETSIZE)
      return core::Status::InvalidArgument("no CPU " + std::to_string(c));
    CPU_SET(c, &cpus);
  }

  // A pipe closed on exec tells the parent whether exec worked.
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    return core::Status::IOError(std::string("pipe: ") + std::strerror(errno));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    return core::Status::IOError(std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    auto fail = [&](int e) {
      (void)!::write(err_pipe[1], &e, sizeof e);
      ::_exit(127);
    };
    if (options.own_process_group) ::setpgid(0, 0);
    if (!options.placement.netns.empty()) {
      int ns = ::open(options.placement.netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) fail(errno);
    }
    if (!options.placement.cpus.empty() && ::sched_setaffinity(0, sizeof cpus, &cpus) != 0) {
      fail(errno);
    }
    // Limits before the user changes: RLIMIT_NPROC is checked against it from then on.
    for (const auto& r : options.rlimits) {
      rlimit limit{static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)};
      if (::setrlimit(r.resource, &limit) != 0) fail(errno);
    }
    if (options.user) {
      gid_t gid = options.user->second;
      if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(options.user->first) != 0) {
        fail(errno);
      }
    }
    // After the user changed, which clears it.
    if (options.die_with_parent) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(errno);
      if (::getppid() != parent) ::_exit(127);  // the parent died before the line above
    }
    if (options.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(errno);
    if (!options.dir.empty() && ::chdir(options.dir.c_str()) != 0) fail(errno);
    int fds[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
    for (int target = 0; target < 3; ++target) {
      if (fds[target] >= 0 && ::dup2(fds[target], target) < 0) fail(errno);
    }
    // Only the three standard descriptors and the error pipe (closed by exec) stay open.
    int keep = err_pipe[1];
    if (keep > 3) ::close_range(3, static_cast<unsigned>(keep) - 1, 0);
    ::close_range(static_cast<unsigned>(keep) + 1, ~0U, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGPIPE, SIGINT, SIGTERM}) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(args[0], args.data(), envp.data());
    fail(errno);
  }
  // Also here: a Kill of its group right after Spawn returns must not miss it.
  if (options.own_process_group) ::setpgid(pid, pid);
  ::close(err_pipe[1]);
  int child_errno = 0;
  ssize_t n = ::read(err_pipe[0], &child_errno, sizeof child_errno);
  ::close(err_pipe[0]);
  if (n == sizeof child_errno) {
    ::waitpid(pid, nullptr, 0);
    return core::Status::IOError("cannot run " + options.argv[0] + ": " +
                                 std::strerror(child_errno));
  }
  return pid;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

core::Result<std::string> RunCommand(const std::vector<std::string>& argv,
                                     std::chrono::milliseconds timeout) {
  if (argv.empty()) return core::Status::InvalidArgument("no program to run");
  SpawnOptions options;
  options.argv = argv;
  if (argv[0].find('/') == std::string::npos) {
    const char* path = std::getenv("PATH");
    std::string dirs = std::string(path == nullptr ? "" : path) + ":/usr/sbin:/sbin";
    for (size_t pos = 0; pos <= dirs.size();) {
      size_t end = std::min(dirs.find(':', pos), dirs.size());
      std::string candidate = dirs.substr(pos, end - pos) + "/" + argv[0];
      if (end > pos && ::access(candidate.c_str(), X_OK) == 0) {
        options.argv[0] = candidate;
        break;
      }
      pos = end + 1;
    }
  }
  std::string command;
  for (const auto& a : argv) command += (command.empty() ? "" : " ") + a;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return core::Status::IOError(std::string("pipe: ") + std::strerror(errno));
  }
  options.stdout_fd = options.stderr_fd = out[1];
  options.own_process_group = true;  // a Ctrl-C at the terminal does not cut it short
  auto pid = Spawn(options);
  ::close(out[1]);
  if (!pid.ok()) {
    ::close(out[0]);
    return pid.status();
  }
  Subprocess child(*pid);
  std::string output;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{out[0], POLLIN, 0};
    int ready = left.count() <= 0 ? 0 : ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      ::close(out[0]);
      return core::Status::DeadlineExceeded(command + ": still running after " +
                                            std::to_string(timeout.count()) + " ms");
    }
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  auto status = child.Wait(
      std::max(std::chrono::milliseconds(1), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 deadline - std::chrono::steady_clock::now())));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    std::string how = status ? DescribeWaitStatus(*status) : "did not end";
    while (!output.empty() && output.back() == '\n') output.pop_back();
    return core::Status::Internal(command + ": " + how + (output.empty() ? "" : ": " + output));
  }
  return output;
}

core::Result<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                           const std::string& log_path, const Placement& where) {
  SpawnOptions options;
  options.argv = argv;
  options.placement = where;
  options.die_with_parent = true;
  int log_fd = -1;
  if (!log_path.empty()) {
    log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return core::Status::IOError("cannot open log " + log_path + ": " + std::strerror(errno));
    }
    options.stdout_fd = options.stderr_fd = log_fd;
  }
  auto pid = Spawn(options);
  if (log_fd >= 0) ::close(log_fd);
  if (!pid.ok()) return pid.status();
  return Subprocess(*pid);
}

std::string Subprocess::SelfPath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "enoki";
  return std::string(buf, static_cast<size_t>(n));
}

Subprocess::Subprocess(Subprocess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = other.pid_;
    other.pid_ = -1;
  }
  return *this;
}

Subprocess::~Subprocess() { Kill(); }

void Subprocess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int Subprocess::Stop(std::chrono::milliseconds grace) {
  Signal(SIGTERM);
  if (auto status = Wait(grace)) return *status;
  Signal(SIGKILL);
  return Wait(std::chrono::seconds(10)).value_or(-1);
}

void Subprocess::Kill() {
  if (pid_ <= 0) return;
  Signal(SIGKILL);
  (void)Wait(std::chrono::seconds(10));
}

}  // namespace enoki::adapters
