// From a hosts file to a run on "machines", end to end, as a user does it: three hosts that are
// network namespaces made here, each with its own address on a bridge; two run an ssh server
// (Debian's openssh-server, with a host key and an authorized key made for the test) and take the
// scenario's cloud and edge node, the third runs `enoki run` (the scenario's client node: its
// callers). `enoki cluster plan` places scenarios/paper/simple.yaml on the two, `ansible-playbook
// deploy/ansible/deploy.yml` installs a source build and starts the nodes over ssh (each host
// installs under a folder of its own: they share this machine's files), `enoki run --cluster`
// runs the scenario, shortened, and writes its database, and deploy/ansible/remove.yml stops the
// nodes and removes everything: no process, no file, no user is left. Needs root, ansible-core and
// openssh (scripts/setup.sh --tests); skipped, saying so, without them.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

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

// `ansible-playbook -i INVENTORY PLAYBOOK ARGS`, its settings in the environment: ssh checks the
// hosts' key against the test's known_hosts and opens a connection per task (no master that
// outlives the playbook), Ansible's own files go to the test's folder.
Output Playbook(const std::string& dir, const std::string& playbook, const std::string& args) {
  std::string env =
      "ANSIBLE_HOME=" + dir + "/ansible ANSIBLE_LOCAL_TEMP=" + dir +
      "/ansible/tmp ANSIBLE_REMOTE_TEMP=" + dir +
      "/ansible/remote ANSIBLE_PIPELINING=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 "
      "ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_SSH_ARGS='-o ControlMaster=no -o "
      "UserKnownHostsFile=" +
      dir + "/known_hosts -o StrictHostKeyChecking=yes' ";
  return RunShell(env + "ansible-playbook -i " + dir + "/plan/inventory.yaml " + kPlaybooks + "/" +
                  playbook + " " + args + " 2>&1");
}

TEST(AnsibleTest, APlannedClusterIsDeployedRunAndRemovedOverSsh) {
  if (std::string why = Unavailable(); !why.empty()) GTEST_SKIP() << why;
  auto started = std::chrono::steady_clock::now();
  std::string id = std::to_string(::getpid());
  std::string dir = "/tmp/enoki-ansible-" + id;
  fs::remove_all(dir);
  fs::create_directories(dir);
  // The service users reach their host's install prefix below it.
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  // What a failed test leaves (remove.yml did not run, or not to its end) goes at the end.
  struct Cleanup {
    std::string dir, id;
    ~Cleanup() {
      std::istringstream left(ProcessesUnder(dir + "/"));
      for (std::string line; std::getline(left, line);) ::kill(std::stoi(line), SIGKILL);
      for (const char* h : {"h1", "h2"}) RunShell("userdel enk" + id + h + " 2>/dev/null");
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir, id};
  {
    Namespaces hosts({"h1", "h2", "h3"});
    if (::testing::Test::HasFatalFailure()) return;

    // The ssh keys: one host key for the servers, one client key for root's login.
    Output keys = RunShell("ssh-keygen -q -t ed25519 -N '' -f " + dir + "/ssh_host_key && " +
                           "ssh-keygen -q -t ed25519 -N '' -f " + dir + "/client_key && cp " + dir +
                           "/client_key.pub " + dir + "/authorized_keys 2>&1");
    ASSERT_EQ(keys.status, 0) << keys.text;
    std::ifstream host_pub(dir + "/ssh_host_key.pub");
    std::string host_key((std::istreambuf_iterator<char>(host_pub)), {});
    std::ofstream known(dir + "/known_hosts");
    for (const char* h : {"h1", "h2"}) known << hosts.Address(h) << " " << host_key;
    known.close();
    for (const char* h : {"h1", "h2"}) {
      hosts.StartSshd(h, dir);
      if (::testing::Test::HasFatalFailure()) return;
    }

    // A source build, without its debugging information (a tenth of the size to copy).
    Output strip =
        RunShell("objcopy --strip-debug " + std::string(ENOKI_BINARY) + " " + dir + "/enoki 2>&1");
    ASSERT_EQ(strip.status, 0) << strip.text;

    // The hosts file: the cloud host, the edge host, each installing under a folder of its own
    // and running its nodes as a user of its own (they share this machine's files and users).
    std::string hosts_file = dir + "/hosts.yaml";
    {
      std::ofstream out(hosts_file);
      out << "hosts:\n";
      for (const auto& [h, tier] : {std::pair{"h1", "cloud"}, std::pair{"h2", "edge"}}) {
        fs::create_directories(dir + "/" + h);
        out << "  " << h << ":\n    address: " << hosts.Address(h) << "\n    tiers: [" << tier
            << "]\n    prefix: " << dir << "/" << h << "\n    vars:\n      ansible_user: root\n"
            << "      ansible_ssh_private_key_file: " << dir << "/client_key\n"
            << "      enoki_user: enk" << id << h << "\n";
      }
    }
    Output plan =
        Enoki("cluster plan " + kScenario + " --hosts " + hosts_file + " --out " + dir + "/plan");
    ASSERT_EQ(plan.status, 0) << plan.text;
    EXPECT_NE(plan.text.find("h1 (" + hosts.Address("h1") + "): cloud:7000"), std::string::npos)
        << plan.text;
    EXPECT_NE(plan.text.find("h2 (" + hosts.Address("h2") + "): edge:7000"), std::string::npos)
        << plan.text;

    // Install and start.
    Output deploy =
        Playbook(dir, "deploy.yml",
                 "-e enoki_binary=" + dir + "/enoki -e enoki_controller_binary=" + ENOKI_BINARY);
    std::cout << "deploy.yml:\n" << deploy.text;
    ASSERT_EQ(deploy.status, 0) << deploy.text;
    // Each node runs as its host's user, from its host's prefix; its key is that user's only.
    for (const auto& [h, node] : {std::pair{"h1", "cloud"}, std::pair{"h2", "edge"}}) {
      std::string prefix = dir + "/" + h;
      std::string running = ProcessesUnder(prefix + "/");
      ASSERT_NE(running, "") << h;
      std::string uid = RunShell("id -u enk" + id + h).text;
      EXPECT_EQ(std::to_string(ProcessUid(running.substr(0, running.find(' ')))) + "\n", uid) << h;
      struct stat st {};
      ASSERT_EQ(::stat((prefix + "/etc/enoki/keys/" + node + ".key").c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u) << node;
      EXPECT_EQ(std::to_string(st.st_uid) + "\n", uid) << node;
      ASSERT_EQ(::stat((prefix + "/etc/enoki/" + node + ".toml").c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0640u) << node;
    }

    // The run, from the third host.
    std::vector<std::string> exec = hosts.Exec("h3");
    std::string in_h3;
    for (const auto& a : exec) in_h3 += a + " ";
    Output run = RunShell(in_h3 + ENOKI_BINARY + " run " + kScenario + " --cluster " + dir +
                          "/plan/cluster.yaml --duration 12 -q --results " + dir + "/results 2>&1");
    std::cout << run.text;
    EXPECT_EQ(run.status, 0) << run.text;
    std::string db;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir + "/results", ec)) {
      if (e.path().extension() == ".db") db = e.path().string();
    }
    EXPECT_NE(db, "") << run.text;
    if (!db.empty()) {
      auto report = testbed::ReadReport(db);
      ASSERT_TRUE(report.ok()) << report.status().ToString();
      EXPECT_EQ(report->run.mode, "cluster");
      EXPECT_TRUE(report->errors.empty());
      EXPECT_EQ(Query(db, "SELECT count(*) FROM requests WHERE status != 'OK'"), "0");
      ASSERT_EQ(report->workloads.size(), 2u);
      for (const auto& w : report->workloads) {
        EXPECT_GT(w.count, 30) << w.name;
        EXPECT_EQ(w.errors, 0) << w.name;
        // The scenario's links, shaped on top of the namespaces' own (microseconds): the edge's
        // floor is the client-edge round trip (2 ms), the cloud's adds four edge-cloud round
        // trips (4 x 50 ms).
        if (w.name == "edge") {
          EXPECT_NEAR(w.ms.p50, 2.0, 0.3) << w.name;
        } else {
          EXPECT_NEAR(w.ms.p50, 202.0, 0.5) << w.name;
        }
      }
    }

    // Stop and remove: nothing is left of what deploy.yml installed.
    Output remove = Playbook(dir, "remove.yml", "");
    std::cout << "remove.yml:\n" << remove.text;
    EXPECT_EQ(remove.status, 0) << remove.text;
    for (const char* h : {"h1", "h2"}) {
      std::string prefix = dir + "/" + h;
      EXPECT_EQ(ProcessesUnder(prefix + "/"), "") << h;
      EXPECT_EQ(RunShell("find " + prefix + " -mindepth 1").text, "") << h;
      EXPECT_NE(RunShell("getent passwd enk" + id + h).status, 0) << h;
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "the whole test: " << seconds << " s\n";
}

}  // namespace
}  // namespace enoki
