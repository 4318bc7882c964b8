// From a hosts file to a run on "machines", end to end, as a user does it: three hosts that are
// network namespaces made here, each with its own address on a bridge; two run an ssh server
// (Debian's openssh-server, with a host key and an authorized key made for the test) and take the
// scenario's cloud and edge node, the third runs `enoki run` (the scenario's client node: its
// callers). `enoki cluster plan` places scenarios/paper/simple.yaml on the two, `ansible-playbook
// deploy/ansible/deploy.yml` installs a source build and starts the nodes over ssh (each host
// installs under a folder of its own: they share this machine's files), `enoki run --cluster`
// runs the scenario, shortened, and writes its database, and deploy/ansible/remove.yml stops the
// nodes and removes everything: no process, no file, no user is left. And many nodes on one host
// (Ansible's local connection). Needs root, ansible-core and openssh (scripts/setup.sh --tests);
// skipped, saying so, without them.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "testbed/report.h"
#include "tests/integration/commands.h"
#include "tests/integration/namespaces.h"
#include "tests/integration/results_query.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using testing::Enoki;
using testing::Namespaces;
using testing::Output;
using testing::Query;
using testing::RunShell;

const std::string kScenario = std::string(ENOKI_SCENARIOS) + "/paper/simple.yaml";
const std::string kPlaybooks = std::string(ENOKI_SOURCE_DIR) + "/deploy/ansible";

// Why this test cannot run here, or empty.
std::string Unavailable() {
  if (std::string why = Namespaces::Unavailable(); !why.empty()) return why;
  if (std::string why = Namespaces::SshdUnavailable(); !why.empty()) return why;
  if (RunShell("command -v ansible-playbook >/dev/null").status != 0) {
    return "needs ansible-playbook (ansible-core, scripts/setup.sh --tests)";
  }
  if (RunShell("command -v start-stop-daemon >/dev/null && command -v objcopy >/dev/null").status !=
      0) {
    return "needs start-stop-daemon (dpkg) and objcopy (binutils)";
  }
  return "";
}

// The processes whose program lies under `dir`, as "PID PROGRAM" lines.
std::string ProcessesUnder(const std::string& dir) {
  std::string found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string exe = fs::read_symlink(e.path() / "exe", ec).string();
    if (!ec && exe.rfind(dir, 0) == 0) found += pid + " " + exe + "\n";
  }
  return found;
}

// The user id of process `pid`'s real user, or -1.
long ProcessUid(const std::string& pid) {
  struct stat st {};
  if (::stat(("/proc/" + pid).c_str(), &st) != 0) return -1;
  return st.st_uid;
}

// "at N s": the time since `start`.
std::string Elapsed(std::chrono::steady_clock::time_point start) {
  char text[32];
  std::snprintf(text, sizeof text, "at %.1f s",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return text;
}

// The options of every ssh connection to the hosts: their key checked against the test's
// known_hosts; one master connection per host that the tasks share (closed by CloseSsh).
std::string SshOptions(const std::string& dir) {
  return "-o UserKnownHostsFile=" + dir +
         "/known_hosts -o StrictHostKeyChecking=yes -o "
         "ControlMaster=auto -o ControlPersist=120s -o ControlPath=" +
         dir + "/ssh-%h";
}

// Ends the master connection to `address`, so that nothing of the test outlives it.
void CloseSsh(const std::string& dir, const std::string& address) {
  RunShell("ssh " + SshOptions(dir) + " -O exit root@" + address + " 2>/dev/null");
}

// `ansible-playbook -i DIR/plan/inventory.yaml PLAYBOOK ARGS`, its settings in the environment:
// ssh as SshOptions says, Ansible's own files in the test's folder.
Output Playbook(const std::string& dir, const std::string& playbook, const std::string& args) {
  std::string env = "ANSIBLE_HOME=" + dir + "/ansible ANSIBLE_LOCAL_TEMP=" + dir +
                    "/ansible/tmp ANSIBLE_REMOTE_TEMP=" + dir +
                    "/ansible/remote ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 "
                    "ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_SSH_ARGS='" +
                    SshOptions(dir) + "' ";
  return RunShell(env + "ansible-playbook -i " + dir + "/plan/inventory.yaml " + kPlaybooks + "/" +
                  playbook + " " + args + " 2>&1");
}

// A test's folder (/tmp/enoki-ansible-PID: the hosts' install prefixes, the plan, the keys) and
// a source build without its debugging information (a tenth of the size to copy) in it. At the
// end, what a failed test left (remove.yml did not run, or not to its end) goes: the processes
// whose program lies in the folder, the users named User(), the folder.
class AnsibleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Unavailable(); !why.empty()) GTEST_SKIP() << why;
    started_ = std::chrono::steady_clock::now();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // The service users reach their host's install prefix below it.
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
    Output strip =
        RunShell("objcopy --strip-debug " + std::string(ENOKI_BINARY) + " " + dir_ + "/enoki 2>&1");
    ASSERT_EQ(strip.status, 0) << strip.text;
  }
  void TearDown() override {
    if (IsSkipped()) return;
    std::istringstream left(ProcessesUnder(dir_ + "/"));
    for (std::string line; std::getline(left, line);) ::kill(std::stoi(line), SIGKILL);
    for (const auto& u : users_) RunShell("userdel " + u + " 2>/dev/null");
    std::error_code ec;
    fs::remove_all(dir_, ec);
    std::cout << Elapsed(started_) << " (the whole test)\n";
  }

  // The service user of host `host`, one per host (the hosts share this machine's users).
  std::string User(const std::string& host) {
    std::string u = "enk" + std::to_string(::getpid()) + host;
    if (std::find(users_.begin(), users_.end(), u) == users_.end()) users_.push_back(u);
    return u;
  }

  // `enoki cluster plan SCENARIO` of the hosts file `hosts_yaml` into DIR/plan; a failure is a
  // test failure.
  void Plan(const std::string& scenario, const std::string& hosts_yaml, Output* out) {
    std::ofstream(dir_ + "/hosts.yaml") << hosts_yaml;
    *out = Enoki("cluster plan " + scenario + " --hosts " + dir_ + "/hosts.yaml --out " + dir_ +
                 "/plan");
    ASSERT_EQ(out->status, 0) << out->text;
  }

  // deploy.yml with the test's build, checked from this process's `enoki` (`more`: more
  // options).
  Output Deploy(const std::string& more = "") {
    Output out = Playbook(dir_, "deploy.yml",
                          "-e enoki_binary=" + dir_ +
                              "/enoki -e enoki_controller_binary=" + ENOKI_BINARY + " " + more);
    std::cout << "deploy.yml:\n" << out.text << Elapsed(started_) << "\n";
    return out;
  }
  Output Remove(const std::string& more = "") {
    Output out = Playbook(dir_, "remove.yml", more);
    std::cout << "remove.yml:\n" << out.text << Elapsed(started_) << "\n";
    return out;
  }

  // Checks what deploy.yml left on host `host` for its `nodes`: each runs from the host's prefix
  // as the host's user, whose only its key is; its config is readable by that user's group.
  void CheckDeployed(const std::string& host, const std::vector<std::string>& nodes) {
    std::string prefix = dir_ + "/" + host;
    std::string uid = RunShell("id -u " + User(host)).text;
    std::istringstream running(ProcessesUnder(prefix + "/"));
    size_t count = 0;
    for (std::string line; std::getline(running, line); ++count) {
      EXPECT_EQ(std::to_string(ProcessUid(line.substr(0, line.find(' ')))) + "\n", uid) << line;
    }
    EXPECT_EQ(count, nodes.size()) << host;
    for (const auto& node : nodes) {
      struct stat st {};
      ASSERT_EQ(::stat((prefix + "/etc/enoki/keys/" + node + ".key").c_str(), &st), 0) << node;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << node;
      EXPECT_EQ(std::to_string(st.st_uid) + "\n", uid) << node;
      ASSERT_EQ(::stat((prefix + "/etc/enoki/" + node + ".toml").c_str(), &st), 0) << node;
      EXPECT_EQ(st.st_mode & 0777, 0640u) << node;
    }
  }

  // Checks that remove.yml left nothing on host `host`: no process, no file, no user.
  void CheckRemoved(const std::string& host) {
    std::string prefix = dir_ + "/" + host;
    EXPECT_EQ(ProcessesUnder(prefix + "/"), "") << host;
    EXPECT_EQ(RunShell("find " + prefix + " -mindepth 1").text, "") << host;
    EXPECT_NE(RunShell("getent passwd " + User(host)).status, 0) << host;
  }

  // The hosts file's entry of host `host` at `address`, with its own prefix and user; `fields`:
  // more of its lines, `vars`: more lines of its vars.
  std::string HostEntry(const std::string& host, const std::string& address,
                        const std::string& fields, const std::string& vars) {
    fs::create_directories(dir_ + "/" + host);
    return "  " + host + ":\n    address: " + address + "\n" + fields + "    prefix: " + dir_ +
           "/" + host + "\n    vars:\n      enoki_user: " + User(host) + "\n" + vars;
  }

  const std::string dir_ = "/tmp/enoki-ansible-" + std::to_string(::getpid());
  std::chrono::steady_clock::time_point started_;
  std::vector<std::string> users_;
};

// simple.yaml on three hosts over ssh: the cloud on h1, the edge on h2, the run on h3.
TEST_F(AnsibleTest, APlannedClusterIsDeployedRunAndRemovedOverSsh) {
  Namespaces hosts({"h1", "h2", "h3"});
  if (HasFatalFailure()) return;
  // The ssh keys: one host key for the servers, one client key for root's login.
  Output keys = RunShell("ssh-keygen -q -t ed25519 -N '' -f " + dir_ + "/ssh_host_key && " +
                         "ssh-keygen -q -t ed25519 -N '' -f " + dir_ + "/client_key && cp " + dir_ +
                         "/client_key.pub " + dir_ + "/authorized_keys 2>&1");
  ASSERT_EQ(keys.status, 0) << keys.text;
  std::ifstream host_pub(dir_ + "/ssh_host_key.pub");
  std::string host_key((std::istreambuf_iterator<char>(host_pub)), {});
  std::ofstream known(dir_ + "/known_hosts");
  for (const char* h : {"h1", "h2"}) known << hosts.Address(h) << " " << host_key;
  known.close();
  for (const char* h : {"h1", "h2"}) {
    hosts.StartSshd(h, dir_);
    if (HasFatalFailure()) return;
  }
  // The master connections end before the ssh servers do.
  struct CloseMasters {
    std::string dir;
    const Namespaces& hosts;
    ~CloseMasters() {
      for (const char* h : {"h1", "h2"}) CloseSsh(dir, hosts.Address(h));
    }
  } close_masters{dir_, hosts};

  // The cloud host and the edge host, each installing under a folder of its own and running its
  // nodes as a user of its own (they share this machine's files and users).
  std::string ssh =
      "      ansible_user: root\n      ansible_ssh_private_key_file: " + dir_ + "/client_key\n";
  Output plan;
  Plan(kScenario,
       "hosts:\n" + HostEntry("h1", hosts.Address("h1"), "    tiers: [cloud]\n", ssh) +
           HostEntry("h2", hosts.Address("h2"), "    tiers: [edge]\n", ssh),
       &plan);
  if (HasFatalFailure()) return;
  EXPECT_NE(plan.text.find("h1 (" + hosts.Address("h1") + "): cloud:7000"), std::string::npos)
      << plan.text;
  EXPECT_NE(plan.text.find("h2 (" + hosts.Address("h2") + "): edge:7000"), std::string::npos)
      << plan.text;

  Output deploy = Deploy();
  ASSERT_EQ(deploy.status, 0) << deploy.text;
  CheckDeployed("h1", {"cloud"});
  CheckDeployed("h2", {"edge"});

  // The run, from the third host.
  std::string in_h3;
  for (const auto& a : hosts.Exec("h3")) in_h3 += a + " ";
  Output run = RunShell(in_h3 + ENOKI_BINARY + " run " + kScenario + " --cluster " + dir_ +
                        "/plan/cluster.yaml --duration 12 -q --results " + dir_ + "/results 2>&1");
  std::cout << run.text << Elapsed(started_) << "\n";
  EXPECT_EQ(run.status, 0) << run.text;
  std::string db;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ + "/results", ec)) {
    if (e.path().extension() == ".db") db = e.path().string();
  }
  EXPECT_NE(db, "") << run.text;
  if (!db.empty()) {
    auto report = testbed::ReadReport(db);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->run.mode, "cluster");
    EXPECT_TRUE(report->errors.empty());
    EXPECT_EQ(Query(db, "SELECT count(*) FROM requests WHERE status != 'OK'"), "0");
    // The round trips measured before the run, and the delay the shaping added.
    std::cout << RunShell("sqlite3 -header " + db + " 'SELECT * FROM network' 2>&1").text;
    ASSERT_EQ(report->workloads.size(), 2u);
    for (const auto& w : report->workloads) {
      EXPECT_GT(w.count, 30) << w.name;
      EXPECT_EQ(w.errors, 0) << w.name;
      // The scenario's links, shaped on top of the namespaces' own: the edge's floor is the
      // client-edge round trip (2 ms), the cloud's adds four edge-cloud round trips (4 x 50 ms).
      // Above the floor: the nodes' own work (the cloud's for four forwarded store operations,
      // two of them durable writes) and what the hosts take beyond their quickest round trip
      // (CURVE, TCP, wake-ups). How close to the floor a run comes is a matter of fidelity,
      // measured where a machine's load does not decide the outcome (results/fidelity/, the
      // emulation's lateness in the report); a CI run beside other tests gave the cloud 7.4 ms
      // above its floor. What is asserted here: the links are shaped once, on top of the
      // network (their arithmetic is checked exactly in run_cluster_test.cc): an unshaped link
      // answers under 1 ms, one shaped twice in at least twice the floor (4 and 404 ms).
      double floor = w.name == "edge" ? 2.0 : 202.0;
      EXPECT_GT(w.ms.p50, floor) << w.name;
      EXPECT_LT(w.ms.p50, 2 * floor) << w.name;
    }
  }

  // Stop and remove: nothing is left of what deploy.yml installed.
  Output remove = Remove();
  EXPECT_EQ(remove.status, 0) << remove.text;
  CheckRemoved("h1");
  CheckRemoved("h2");
}

// Many nodes on one host: the three nodes of a scenario on this machine (Ansible's local
// connection, the nodes on loopback ports one after another), each started, answering, stopped
// and removed on its own.
TEST_F(AnsibleTest, ManyNodesShareAHost) {
  Output plan;
  Plan(std::string(ENOKI_TEST_SCENARIOS) + "/on_cluster.yaml",
       "hosts:\n" + HostEntry("local", "127.0.0.1", "    port: 17300\n", ""), &plan);
  if (HasFatalFailure()) return;
  EXPECT_NE(plan.text.find("local (127.0.0.1): cloud:17300 edge1:17301 edge2:17302"),
            std::string::npos)
      << plan.text;
  Output deploy = Deploy("-c local");
  ASSERT_EQ(deploy.status, 0) << deploy.text;
  CheckDeployed("local", {"cloud", "edge1", "edge2"});
  Output remove = Remove("-c local");
  EXPECT_EQ(remove.status, 0) << remove.text;
  CheckRemoved("local");
}

}  // namespace
}  // namespace enoki
