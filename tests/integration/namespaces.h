// Namespaces: "hosts" for integration tests: network namespaces of their own on one bridge, each
// with its own address (10.X.Y.i/24, X.Y from this process's id), and this process's namespace
// with one more address on the bridge (.254) to reach them as a client. Made with `ip` and
// removed by the destructor (the processes inside must have ended by then), or by the next run
// if this one dies first. Needs root. A host may also run an ssh server (StartSshd), for tests
// that reach the hosts as Ansible does.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "adapters/node_process.h"
#include "adapters/subprocess.h"
#include "tests/integration/commands.h"

namespace enoki::testing {

// A node of a test in a namespace of its own.
struct HostNode {
  std::optional<adapters::Subprocess> process;  // none: it did not start (the test failed)
  std::string endpoint;                         // tcp://ADDRESS:7000
};

class Namespaces {
 public:
  // Why the test cannot make namespaces here, or empty when it can.
  static std::string Unavailable() {
    if (::geteuid() != 0) return "needs root";
    if (RunShell("ip -V >/dev/null 2>&1").status != 0) return "needs iproute2 (ip)";
    return "";
  }

  explicit Namespaces(const std::vector<std::string>& hosts) : hosts_(hosts) {
    ip_ = RunShell("command -v ip").text;
    while (!ip_.empty() && ip_.back() == '\n') ip_.pop_back();
    RemoveLeftovers();
    std::string id = std::to_string(::getpid());
    // Two runs at once (ctest -j) get other subnets unless their ids agree modulo 37500.
    subnet_ = "10." + std::to_string(100 + ::getpid() / 250 % 150) + "." +
              std::to_string(::getpid() % 250);
    bridge_ = "enkb" + id;
    Must("ip link add " + bridge_ + " type bridge && ip link set " + bridge_ +
         " up && ip addr add " + subnet_ + ".254/24 dev " + bridge_);
    for (size_t i = 0; i < hosts_.size(); ++i) {
      std::string ns = Netns(hosts_[i]);
      std::string veth = "enk" + id + "h" + std::to_string(i);
      Must("ip netns add " + ns + " && ip link add " + veth + " type veth peer name " + veth +
           "p && ip link set " + veth + "p netns " + ns + " && ip link set " + veth + " master " +
           bridge_ + " up && ip -n " + ns + " link set " + veth + "p name eth0 && ip -n " + ns +
           " addr add " + Address(hosts_[i]) + "/24 dev eth0 && ip -n " + ns +
           " link set eth0 up && ip -n " + ns + " link set lo up");
    }
  }
  ~Namespaces() {
    for (auto& [host, sshd] : sshds_) sshd.Stop();
    if (made_sshd_dir_) RunShell("rmdir " + std::string(kSshdDir) + " 2>/dev/null");
    for (const auto& h : hosts_) RunShell("ip netns del " + Netns(h) + " 2>/dev/null");
    RunShell("ip link del " + bridge_ + " 2>/dev/null");
  }

  // Why a test cannot run ssh servers here (on top of Unavailable()), or empty when it can.
  static std::string SshdUnavailable() {
    if (RunShell("test -x /usr/sbin/sshd && command -v ssh-keygen >/dev/null").status != 0) {
      return "needs openssh-server and openssh-client (scripts/setup.sh --tests)";
    }
    return "";
  }
  // Starts an ssh server (the system's sshd, with a config of its own in `dir`) in `host`'s
  // namespace on its address, port 22: host key `dir`/ssh_host_key, root may log in with the keys
  // of `dir`/authorized_keys only (the test makes these files), log `dir`/sshd-HOST.log. Waits
  // (up to 5 s) until it accepts connections; a failure is a test failure. The destructor stops
  // it (sessions it opened end with their clients).
  void StartSshd(const std::string& host, const std::string& dir) {
    if (!std::filesystem::exists(kSshdDir)) {
      std::filesystem::create_directories(kSshdDir);  // sshd's privilege separation folder
      made_sshd_dir_ = true;
    }
    std::string config = dir + "/sshd-" + host + ".conf";
    std::ofstream(config) << "ListenAddress " << Address(host) << ":22\n"
                          << "HostKey " << dir << "/ssh_host_key\n"
                          << "AuthorizedKeysFile " << dir << "/authorized_keys\n"
                          << "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                          << "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                          << "PidFile none\nSubsystem sftp internal-sftp\nLogLevel ERROR\n";
    std::vector<std::string> argv = Exec(host);
    for (std::string a : {"/usr/sbin/sshd", "-D", "-e", "-f", config.c_str()}) argv.push_back(a);
    auto p = adapters::Subprocess::Start(argv, dir + "/sshd-" + host + ".log");
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    sshds_.emplace_back(host, std::move(*p));
    for (int i = 0; i < 50; ++i) {
      if (RunShell("timeout 1 bash -c '</dev/tcp/" + Address(host) + "/22' 2>/dev/null").status ==
          0) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "sshd in " << host << " does not accept connections; its log: " << dir << "/sshd-"
           << host << ".log";
  }

  std::string Address(const std::string& host) const {
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i] == host) return subnet_ + "." + std::to_string(i + 1);
    }
    ADD_FAILURE() << "no host " << host;
    return "";
  }
  std::string Netns(const std::string& host) const {
    return "enk" + std::to_string(::getpid()) + "-" + host;
  }
  // The command prefix that runs a program inside `host`'s namespace.
  std::vector<std::string> Exec(const std::string& host) const {
    return {ip_, "netns", "exec", Netns(host)};
  }
  // Starts `enoki node` with id `host` in `host`'s namespace, listening on its address (with
  // --insecure: beyond loopback), its data directory, ready file and log `dir`/host...; waits
  // until it is ready (a failure is a test failure, and no process).
  HostNode StartNode(const std::string& host, const std::string& dir,
                     std::vector<std::string> args) const {
    adapters::NodeProcessOptions o;
    o.binary = ENOKI_BINARY;
    o.id = host;
    o.listen = "tcp://" + Address(host) + ":7000";
    o.data_dir = dir + "/" + host;
    o.ready_file = dir + "/" + host + ".ready";
    o.log_level = "info";
    o.retry_interval = std::chrono::milliseconds(50);
    o.more = std::move(args);
    o.more.push_back("--insecure");
    std::vector<std::string> argv = Exec(host);
    for (auto& a : adapters::NodeCommandLine(o)) argv.push_back(std::move(a));
    std::string log = dir + "/" + host + ".log";
    auto p = adapters::Subprocess::Start(argv, log);
    if (!p.ok()) {
      ADD_FAILURE() << p.status().ToString();
      return {std::nullopt, o.listen};
    }
    auto ready = adapters::WaitForReadyFile(o.ready_file, host, *p, std::chrono::seconds(10));
    if (!ready.ok()) {
      ADD_FAILURE() << ready.status().ToString() << "; log: " << log;
      return {std::nullopt, o.listen};
    }
    return {std::move(*p), o.listen};
  }

  // Runs a shell command inside `host`'s namespace; its output and status.
  Output Run(const std::string& host, const std::string& command) const {
    return RunShell("ip netns exec " + Netns(host) + " sh -c '" + command + "' 2>&1");
  }

 private:
  // What runs whose process died (a crash, a kill) left: their namespaces and bridges, named with
  // their process id.
  static void RemoveLeftovers() {
    RunShell(
        "for n in $(ip netns list | sed -n 's/^enk\\([0-9]*\\)-.*/&/p' | cut -d' ' -f1); do "
        "p=${n#enk}; p=${p%%-*}; [ -d /proc/$p ] || ip netns del $n; done; "
        "for b in $(ip -o link show type bridge | sed -n 's/^[0-9]*: \\(enkb[0-9]*\\).*/\\1/p'); "
        "do "
        "p=${b#enkb}; [ -d /proc/$p ] || ip link del $b; done 2>/dev/null");
  }
  static void Must(const std::string& command) {
    Output out = RunShell("(" + command + ") 2>&1");
    ASSERT_EQ(out.status, 0) << command << ": " << out.text;
  }

  static constexpr const char* kSshdDir = "/run/sshd";

  std::vector<std::string> hosts_;
  std::vector<std::pair<std::string, adapters::Subprocess>> sshds_;
  bool made_sshd_dir_ = false;  // it made kSshdDir, which the destructor removes
  std::string ip_;              // the path of `ip` (a process started without a shell needs it)
  std::string subnet_;
  std::string bridge_;
};

}  // namespace enoki::testing
