// Process functions through real node processes: Python and shell programs from
// tests/integration/functions as kept-alive workers, with their state in the node's store, and
// what happens when a worker dies, hangs, breaks the protocol, or is replaced by a redeploy; and
// their sandbox: programs only from the process directories, workers as an unprivileged user
// with no_new_privs in a process group of their own, killed over their memory limit, stopped
// when idle.
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/commands.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::NodeCluster;

// The node option that lets the test programs run.
const std::vector<std::string> kProcessDir = {"--process-dir", ENOKI_TEST_FUNCTIONS};

proto::FunctionSpec Program(const std::string& name, const std::string& file,
                            const std::string& keygroup, uint32_t concurrency = 0,
                            uint32_t timeout_ms = 0) {
  proto::FunctionSpec s;
  s.set_name(name);
  s.set_runtime("process");
  s.set_handler(std::string(ENOKI_TEST_FUNCTIONS) + "/" + file);
  s.set_keygroup(keygroup);
  s.set_concurrency(concurrency);
  s.set_timeout_ms(timeout_ms);
  return s;
}

void CreateKeygroup(adapters::Client& c, const std::string& name, std::vector<std::string> replicas,
                    proto::ReplicationMode mode = proto::ASYNC) {
  proto::CreateKeygroupRequest kg;
  kg.set_name(name);
  kg.set_mode(mode);
  for (const auto& r : replicas) kg.add_replicas(r);
  ASSERT_TRUE(c.CreateKeygroup(kg).ok());
}

// The processes whose parent is `parent`.
std::vector<int> Children(int parent) {
  std::vector<int> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after its closing parenthesis.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state;
    int ppid;
    if (rest >> state >> ppid && ppid == parent && state != 'Z') {
      out.push_back(std::stoi(entry.path().filename()));
    }
  }
  return out;
}

// Whether process `pid` exists (a zombie counts as gone).
bool Alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto state = line.find(") ");
  return state != std::string::npos && line[state + 2] != 'Z';
}

TEST(ProcessFunctionTest, PythonCounterEndsAtExactlyOneHundredOnASyncKeygroup) {
  NodeCluster cluster({"a", "b"}, kProcessDir);
  auto a = cluster.Client("a");
  auto b = cluster.Client("b");
  CreateKeygroup(*a, "counters", {"a", "b"}, proto::SYNC);
  ASSERT_TRUE(NodeCluster::Eventually([&] { return b->KeygroupInfo("counters").ok(); }));
  auto deployed = a->DeployFunction(Program("counter", "counter.py", "counters", 10));
  ASSERT_TRUE(deployed.ok()) << deployed.ToString();

  // 10 clients, 10 calls each, all at once: up to 10 workers read and write the same key.
  constexpr int kClients = 10, kCalls = 10;
  std::vector<std::thread> clients;
  std::mutex mu;
  std::set<std::string> answers;
  std::atomic<int> failures = 0;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      auto c = cluster.Client("a", std::chrono::seconds(20));
      for (int j = 0; j < kCalls; ++j) {
        auto r = c->Invoke("counter", "hits");
        if (!r.ok()) {
          ++failures;
          ADD_FAILURE() << r.status().ToString();
          continue;
        }
        std::lock_guard lock(mu);
        answers.insert(*r);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(answers.size(), 100u);  // every call saw a different count: 1 to 100
  EXPECT_TRUE(answers.contains("1") && answers.contains("100"));
  // Synchronous: every acknowledged write was applied at b before its call returned.
  auto at_b = b->Get("counters", "hits");
  ASSERT_TRUE(at_b.ok()) << at_b.status().ToString();
  EXPECT_EQ(at_b->value(), "100");
  auto list = a->ListFunctions();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->functions(0).invocations(), 100u);
  EXPECT_EQ(list->functions(0).errors(), 0u);
}

TEST(ProcessFunctionTest, PythonReachesItsKeygroupLocallyAndAtARemoteReplica) {
  NodeCluster cluster({"edge", "cloud"}, kProcessDir);
  auto edge = cluster.Client("edge");
  auto cloud = cluster.Client("cloud");
  CreateKeygroup(*edge, "only-edge", {"edge"});
  ASSERT_TRUE(NodeCluster::Eventually([&] { return cloud->KeygroupInfo("only-edge").ok(); }));
  auto spec = Program("tool", "tool.py", "only-edge");
  (*spec.mutable_params())["greeting.text"] = "hello";
  ASSERT_TRUE(cloud->DeployFunction(spec).ok());
  ASSERT_TRUE(edge->DeployFunction(spec).ok());
  proto::FunctionSpec echo;
  echo.set_name("echo");
  echo.set_handler("echo");
  echo.set_keygroup("only-edge");
  ASSERT_TRUE(edge->DeployFunction(echo).ok());

  // cloud holds no replica: its worker's operations run at edge's replica.
  EXPECT_EQ(*cloud->Invoke("tool", "put k1 v1"), "ok");
  EXPECT_EQ(*cloud->Invoke("tool", "put k2 v2"), "ok");
  auto at_edge = edge->Get("only-edge", "k1");
  ASSERT_TRUE(at_edge.ok());
  EXPECT_EQ(at_edge->value(), "v1");
  EXPECT_EQ(*cloud->Invoke("tool", "get k2"), "v2");
  EXPECT_EQ(*cloud->Invoke("tool", "scan k z"), "k1=v1,k2=v2");
  EXPECT_EQ(*cloud->Invoke("tool", "delete k1"), "ok");
  EXPECT_EQ(*edge->Invoke("tool", "get k1"), "<absent>");  // and locally at edge
  EXPECT_EQ(*cloud->Invoke("tool", "param greeting.text"), "hello");
  EXPECT_EQ(*cloud->Invoke("tool", "call echo hi edge"), "hi");  // a call to another node
  EXPECT_EQ(*cloud->Invoke("tool", "number 5"), "5");
  EXPECT_EQ(*cloud->Invoke("tool", "stdin"), "0 0");
  auto big = cloud->Invoke("tool", "big 300000");  // more than a pipe holds at once
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->size(), 300000u);
}

TEST(ProcessFunctionTest, ShellFunctionSpeaksTheProtocolWithReadAndHead) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  ASSERT_TRUE(a->DeployFunction(Program("upper", "upper.sh", "kg")).ok());
  auto r = a->Invoke("upper", "quiet words");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "QUIET WORDS");
  auto last = a->Get("kg", "last");  // written by the function's put frame
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->value(), "quiet words");
}

TEST(ProcessFunctionTest, FailuresReachTheCallerAndWorkersAreReplaced) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  ASSERT_TRUE(a->DeployFunction(Program("tool", "tool.py", "kg", 4, 1000)).ok());
  auto pid = [&] { return std::stoi(*a->Invoke("tool", "pid")); };

  auto raised = a->Invoke("tool", "raise bad input");
  EXPECT_EQ(raised.status().code(), core::Code::kInternal);
  EXPECT_EQ(raised.status().message(), "function failed: ValueError: bad input");
  int first = pid();  // an exception does not end the worker
  EXPECT_EQ(pid(), first);

  auto exited = a->Invoke("tool", "exit 3");
  EXPECT_EQ(exited.status().code(), core::Code::kInternal);
  EXPECT_NE(exited.status().message().find("worker exited with status 3"), std::string::npos)
      << exited.status().ToString();
  int second = pid();
  EXPECT_NE(second, first);

  ::kill(second, SIGKILL);  // dies between calls: restarted in the background, with no call
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto workers = Children(cluster.pid("a"));
    return workers.size() == 1 && workers[0] != second;
  }));
  EXPECT_EQ(pid(), Children(cluster.pid("a")).at(0));

  auto broke = a->Invoke("tool", "garbage");
  EXPECT_EQ(broke.status().code(), core::Code::kInternal);
  EXPECT_NE(broke.status().message().find("broke the protocol: unknown verb 'this'"),
            std::string::npos)
      << broke.status().ToString();

  int before = pid();
  auto slow = a->Invoke("tool", "sleep 30");
  EXPECT_EQ(slow.status().code(), core::Code::kDeadlineExceeded);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return !Alive(before); }));  // killed, not left
  EXPECT_NE(pid(), before);

  EXPECT_EQ(*a->Invoke("tool", "print to the log"), "printed");
  auto logs = a->FunctionLogs("tool", 0);
  ASSERT_TRUE(logs.ok());
  std::string all;
  for (const auto& line : logs->lines()) all += line + "\n";
  for (const char* expected :
       {"stderr: ValueError: bad input", "worker exited with status 3", "stderr: to the log",
        "logged to the log", "worker killed: its call ran past the timeout",
        "worker broke the protocol"}) {
    EXPECT_NE(all.find(expected), std::string::npos) << expected << " not in:\n" << all;
  }
  // A worker that writes stderr without pause cannot starve the node: it answers other requests
  // meanwhile, and the call still times out.
  std::thread flood([&] {
    auto c = cluster.Client("a");
    EXPECT_EQ(c->Invoke("tool", "flood").status().code(), core::Code::kDeadlineExceeded);
  });
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_TRUE(cluster.Client("a", milliseconds(500))->ListFunctions().ok());
  flood.join();
  auto list = a->ListFunctions();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->functions(0).timeouts(), 2u);
}

TEST(ProcessFunctionTest, RedeployLetsCallsInFlightFinishOnTheOldWorkers) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  auto v1 = Program("tool", "tool.py", "kg");
  (*v1.mutable_params())["version"] = "1";
  ASSERT_TRUE(a->DeployFunction(v1).ok());
  int old_pid = std::stoi(*a->Invoke("tool", "pid"));

  std::thread slow_call([&] {
    auto c = cluster.Client("a");
    auto r = c->Invoke("tool", "sleep 1");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, "slept");
  });
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    auto list = a->ListFunctions();
    return list.ok() && list->functions(0).in_flight() == 1;
  }));
  auto v2 = v1;
  (*v2.mutable_params())["version"] = "2";
  ASSERT_TRUE(a->DeployFunction(v2).ok());
  EXPECT_EQ(*a->Invoke("tool", "param version"), "2");
  slow_call.join();
  EXPECT_TRUE(NodeCluster::Eventually([&] { return !Alive(old_pid); }));  // retired with v1
}

TEST(ProcessFunctionTest, WorkersComeBackWithTheNodeAndDieWithIt) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  ASSERT_TRUE(a->DeployFunction(Program("counter", "counter.py", "kg")).ok());
  EXPECT_EQ(*a->Invoke("counter", ""), "1");
  auto tool = Program("tool", "tool.py", "kg");
  ASSERT_TRUE(a->DeployFunction(tool).ok());
  int pid = std::stoi(*a->Invoke("tool", "pid"));
  // In a call, the worker does not read its input, so only PR_SET_PDEATHSIG can end it.
  std::thread busy([&] {
    auto c = cluster.Client("a", milliseconds(3000));
    EXPECT_FALSE(c->Invoke("tool", "sleep 60").ok());
  });
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    auto list = a->ListFunctions();
    return list.ok() && list->functions(1).in_flight() == 1;
  }));

  cluster.Kill("a");  // SIGKILL: the node cannot clean up, its workers die with it anyway
  EXPECT_TRUE(NodeCluster::Eventually([&] { return !Alive(pid); }));
  busy.join();
  cluster.Start("a");
  auto again = cluster.Client("a");
  auto r = again->Invoke("counter", "");  // deployed again from the node's own storage
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "2");
}

TEST(ProcessFunctionTest, AProgramThatCannotRunIsRefusedAtDeploy) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  auto missing = a->DeployFunction(Program("f", "no-such-program.py", "kg"));
  EXPECT_EQ(missing.code(), core::Code::kIOError);
  EXPECT_NE(missing.message().find("no-such-program.py: No such file or directory"),
            std::string::npos)
      << missing.ToString();
  auto not_executable = a->DeployFunction(Program("f", "README.md", "kg"));
  EXPECT_NE(not_executable.message().find("Permission denied"), std::string::npos)
      << not_executable.ToString();
  EXPECT_EQ(a->Invoke("f", "").status().code(), core::Code::kNotFound);
}

// A folder of its own under the temporary folder (mode 0755, owned by the test's user), removed
// at the end.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("enoki-sandbox-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
    fs::permissions(path_, fs::perms(0755));
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

proto::FunctionSpec ProgramAt(const std::string& name, const std::string& path) {
  proto::FunctionSpec s;
  s.set_name(name);
  s.set_runtime("process");
  s.set_handler(path);
  s.set_keygroup("kg");
  return s;
}

TEST(SandboxTest, ProcessFunctionsAreOffWithoutAProcessDir) {
  NodeCluster cluster({"a"});
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  auto refused = a->DeployFunction(Program("tool", "tool.py", "kg"));
  EXPECT_EQ(refused.code(), core::Code::kInvalidArgument);
  EXPECT_EQ(refused.message(),
            "process functions are off at node a: it runs programs only from the folders it was "
            "started with (--process-dir DIR)");
  EXPECT_EQ(a->Invoke("tool", "pid").status().code(), core::Code::kNotFound);
}

TEST(SandboxTest, AHandlerOutsideTheProcessDirsOrEscapingByASymlinkIsRefused) {
  TempDir dir;
  fs::create_symlink("/bin/sh", dir / "sh");  // leads outside
  fs::create_symlink(std::string(ENOKI_TEST_FUNCTIONS) + "/tool.py", dir / "tool.py");  // too
  fs::copy_file(std::string(ENOKI_TEST_FUNCTIONS) + "/tool.py", dir / "inside.py");
  fs::create_symlink(dir / "inside.py", dir / "alias.py");  // a symlink that stays inside
  NodeCluster cluster({"a"}, {"--process-dir", dir.path()});
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  std::string real_dir = fs::canonical(dir.path()).string();

  auto sh = a->DeployFunction(ProgramAt("sh", "/bin/sh"));
  EXPECT_EQ(sh.code(), core::Code::kPermissionDenied);
  EXPECT_NE(sh.message().find("the program /bin/sh "), std::string::npos) << sh.message();
  EXPECT_NE(
      sh.message().find("outside the node's process directories (--process-dir): " + real_dir),
      std::string::npos)
      << sh.message();
  auto link = a->DeployFunction(ProgramAt("sh", dir / "sh"));
  EXPECT_EQ(link.code(), core::Code::kPermissionDenied);
  EXPECT_NE(link.message().find("the program " + (dir / "sh") + " leads to " +
                                fs::canonical("/bin/sh").string() + ", which is outside"),
            std::string::npos)
      << link.message();
  EXPECT_EQ(a->DeployFunction(ProgramAt("t", dir / "tool.py")).code(),
            core::Code::kPermissionDenied);
  std::string up;  // enough "../" to climb from the folder to "/"
  for (int i = 0; i < 32; ++i) up += "../";
  EXPECT_EQ(a->DeployFunction(ProgramAt("t", dir / (up + "bin/sh"))).code(),
            core::Code::kPermissionDenied);
  auto relative = a->DeployFunction(ProgramAt("t", "inside.py"));
  EXPECT_EQ(relative.code(), core::Code::kInvalidArgument);
  EXPECT_NE(relative.message().find("must be an absolute path"), std::string::npos)
      << relative.message();
  for (const auto& name : {"sh", "t"}) {
    EXPECT_EQ(a->Invoke(name, "pid").status().code(), core::Code::kNotFound);
  }

  ASSERT_TRUE(a->DeployFunction(ProgramAt("alias", dir / "alias.py")).ok());
  auto answer = a->Invoke("alias", "param x");
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(*answer, "<unset>");
}

// What process `pid` says in /proc/PID/status under `field` ("NoNewPrivs", "Uid", ...).
std::string StatusField(int pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream words(line.substr(field.size() + 1));
      std::string first;
      words >> first;
      return first;
    }
  }
  return "";
}

TEST(SandboxTest, AWorkerRunsAsNobodyInItsOwnGroupAndDiesAtItsMemoryLimitNotTheNode) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: a node switches users only when it is root";
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  TempDir root_owned;  // root's, mode 0755: others may enter, not write
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a", milliseconds(15000));
  CreateKeygroup(*a, "kg", {"a"});
  auto spec = Program("tool", "tool.py", "kg", 2, 12000);
  spec.mutable_limits()->set_memory_bytes(64 << 20);
  auto deployed = a->DeployFunction(spec);
  ASSERT_TRUE(deployed.ok()) << deployed.ToString();

  auto ids = a->Invoke("tool", "ids");
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  std::istringstream words(*ids);
  unsigned uid = 0, gid = 0;
  int pgrp = 0, pid = 0;
  ASSERT_TRUE(words >> uid >> gid >> pgrp >> pid) << *ids;
  EXPECT_EQ(uid, nobody->pw_uid);
  EXPECT_EQ(gid, nobody->pw_gid);
  EXPECT_EQ(pgrp, pid);  // a process group of its own
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  EXPECT_EQ(*a->Invoke("tool", "nonewprivs"), "1");
  EXPECT_EQ(StatusField(pid, "Groups"), std::to_string(nobody->pw_gid));  // root's groups dropped
  EXPECT_EQ(*a->Invoke("tool", "write " + root_owned.path()), "refused: PermissionError");
  EXPECT_FALSE(fs::exists(root_owned / "written-by-a-function"));

  auto start = std::chrono::steady_clock::now();
  auto grown = a->Invoke("tool", "grow 150");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(grown.status().code(), core::Code::kInternal);
  EXPECT_EQ(grown.status().message(),
            "function 'tool': worker exceeded its memory limit (64 MiB) and was killed");
  EXPECT_LT(took, std::chrono::seconds(5));  // killed, not left to end its sleep
  EXPECT_TRUE(NodeCluster::Eventually([&] { return !Alive(pid); }));
  // The node carries on, and so does the function, on a new worker.
  EXPECT_TRUE(a->ListFunctions().ok());
  auto again = a->Invoke("tool", "param x");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, "<unset>");
  auto logs = a->FunctionLogs("tool", 0);
  ASSERT_TRUE(logs.ok());
  std::string all;
  for (const auto& line : logs->lines()) all += line + "\n";
  EXPECT_NE(all.find("worker exceeded its memory limit (64 MiB) and was killed"), std::string::npos)
      << all;

  // A function may ask for less than the node's limit, not more.
  spec.mutable_limits()->set_memory_bytes(1ull << 40);
  auto greedy = a->DeployFunction(spec);
  EXPECT_EQ(greedy.code(), core::Code::kInvalidArgument);
  EXPECT_NE(greedy.message().find("this node allows at most 536870912 (--worker-memory)"),
            std::string::npos)
      << greedy.message();
}

// A worker keeps only what a program needs of the node's environment (PATH, the locale), not
// what else the operator's environment holds.
TEST(SandboxTest, AWorkerGetsNoneOfTheNodesEnvironmentButPathAndLocale) {
  ::setenv("ENOKI_TEST_SECRET", "s3cret", 1);
  NodeCluster cluster({"a"}, kProcessDir);
  ::unsetenv("ENOKI_TEST_SECRET");
  auto a = cluster.Client("a", milliseconds(15000));
  CreateKeygroup(*a, "kg", {"a"});
  auto deployed = a->DeployFunction(Program("tool", "tool.py", "kg", 1, 12000));
  ASSERT_TRUE(deployed.ok()) << deployed.ToString();
  EXPECT_EQ(*a->Invoke("tool", "env ENOKI_TEST_SECRET"), "<unset>");
  EXPECT_EQ(*a->Invoke("tool", "env PATH"), std::getenv("PATH"));
  EXPECT_EQ(*a->Invoke("tool", "env ENOKI_FUNCTION"), "tool");
  EXPECT_NE(*a->Invoke("tool", "env HOME"), "<unset>");
}

TEST(SandboxTest, CpuTimeAndOpenFilesAreLimitedPerFunction) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a", milliseconds(15000));
  CreateKeygroup(*a, "kg", {"a"});
  auto spec = Program("tool", "tool.py", "kg", 1, 10000);
  spec.mutable_limits()->set_cpu_seconds(1);
  spec.mutable_limits()->set_open_files(16);
  ASSERT_TRUE(a->DeployFunction(spec).ok());
  int opened = std::stoi(*a->Invoke("tool", "files 100"));
  EXPECT_GT(opened, 0);
  EXPECT_LT(opened, 16);  // stdin, stdout, stderr and the module's own take some of the 16
  auto spun = a->Invoke("tool", "spin");
  EXPECT_EQ(spun.status().code(), core::Code::kInternal);
  EXPECT_EQ(spun.status().message(),
            "function 'tool': worker used up its CPU time limit (1 s) and was killed");
  EXPECT_EQ(*a->Invoke("tool", "param x"), "<unset>");  // a new worker
}

TEST(SandboxTest, ARootNodeNeverRunsWorkersAsRoot) {
  TempDir dir;
  std::string args = "node --id a --in-memory --listen ipc://" + (dir / "s") + " --process-dir " +
                     dir.path() + " --worker-user root";
  testing::Output out = testing::Enoki(args);
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.text.find(::geteuid() == 0 ? "a node never runs process functions as root"
                                           : "only a node that runs as root can run workers"),
            std::string::npos)
      << out.text;
}

TEST(SandboxTest, IdleWorkersAreStoppedAndStartedAgainOnDemand) {
  NodeCluster cluster({"a"},
                      {"--process-dir", ENOKI_TEST_FUNCTIONS, "--worker-idle-timeout", "0.5"});
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  ASSERT_TRUE(a->DeployFunction(Program("tool", "tool.py", "kg")).ok());
  int first = std::stoi(*a->Invoke("tool", "pid"));
  auto idle_from = std::chrono::steady_clock::now();
  ASSERT_TRUE(NodeCluster::Eventually([&] { return !Alive(first); }, std::chrono::seconds(5)));
  auto stopped_after = std::chrono::steady_clock::now() - idle_from;
  EXPECT_GE(stopped_after, milliseconds(450));
  std::printf(
      "idle worker gone %lld ms after its last call (timeout 500 ms)\n",
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(stopped_after).count()));
  EXPECT_TRUE(Children(cluster.pid("a")).empty());
  auto again = a->Invoke("tool", "pid");  // started again for this call
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NE(std::stoi(*again), first);
  auto logs = a->FunctionLogs("tool", 0);
  ASSERT_TRUE(logs.ok());
  std::string all;
  for (const auto& line : logs->lines()) all += line + "\n";
  EXPECT_NE(all.find("worker stopped: idle for 500 ms"), std::string::npos) << all;
}

}  // namespace
}  // namespace enoki
