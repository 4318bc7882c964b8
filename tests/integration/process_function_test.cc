// Process functions through real node processes: Python and shell programs from
// tests/integration/functions as kept-alive workers, with their state in the node's store, and
// what happens when a worker dies, hangs, breaks the protocol, or is replaced by a redeploy.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using testing::NodeCluster;

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
  NodeCluster cluster({"a", "b"});
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
  NodeCluster cluster({"edge", "cloud"});
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

TEST(ProcessFunctionTest, ShellFunctionUsesTheEnokiCliWithNoAddressGiven) {
  NodeCluster cluster({"a"});
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  ASSERT_TRUE(a->DeployFunction(Program("upper", "upper.sh", "kg")).ok());
  auto r = a->Invoke("upper", "quiet words");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "QUIET WORDS");
  auto last = a->Get("kg", "last");  // written by `enoki kv put` inside the function
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->value(), "quiet words");
}

TEST(ProcessFunctionTest, FailuresReachTheCallerAndWorkersAreReplaced) {
  NodeCluster cluster({"a"});
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
  NodeCluster cluster({"a"});
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
  NodeCluster cluster({"a"});
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
  NodeCluster cluster({"a"});
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg", {"a"});
  auto missing = a->DeployFunction(Program("f", "no-such-program.py", "kg"));
  EXPECT_EQ(missing.code(), core::Code::kIOError);
  EXPECT_NE(missing.message().find("no-such-program.py: No such file or directory"),
            std::string::npos)
      << missing.ToString();
  auto not_executable = a->DeployFunction(Program("f", "../node_cluster.h", "kg"));
  EXPECT_NE(not_executable.message().find("Permission denied"), std::string::npos)
      << not_executable.ToString();
  EXPECT_EQ(a->Invoke("f", "").status().code(), core::Code::kNotFound);
}

}  // namespace
}  // namespace enoki
