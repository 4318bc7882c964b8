// ProcessFunction against a scripted ProcessEnv, on a simulated node in virtual time: the worker
// protocol frame by frame (also split across reads), store operations, violations, aborting one
// of several busy workers, stderr lines, and the restart backoff. Real processes are exercised by
// tests/integration/process_function_test.cc; here every byte and every death is chosen.
#include <gtest/gtest.h>

#include "node/process_function.h"
#include "sim/cluster.h"

namespace enoki {
namespace {

using node::FunctionContext;
using node::ProcessFunction;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Processes that exist only as what the test writes to them and reads from them.
class ScriptedProcesses : public core::ProcessEnv {
 public:
  struct Process {
    Spec spec;
    Handlers handlers;
    std::string input;  // everything the node wrote to its stdin
    bool killed = false;
  };

  core::Result<ProcessId> Spawn(const Spec& spec, Handlers handlers) override {
    if (fail_spawns) return core::Status::IOError("cannot run " + spec.argv[0]);
    procs.push_back({spec, std::move(handlers), "", false});
    return procs.size();  // ids 1, 2, ...
  }
  void Write(ProcessId id, std::string_view bytes) override { procs.at(id - 1).input += bytes; }
  void Kill(ProcessId id) override {
    procs.at(id - 1).killed = true;
    procs.at(id - 1).handlers = {};
  }

  // What process `id` writes on stdout or stderr, and its end.
  void Out(ProcessId id, std::string_view bytes) { procs.at(id - 1).handlers.on_stdout(bytes); }
  void Err(ProcessId id, std::string_view bytes) { procs.at(id - 1).handlers.on_stderr(bytes); }
  void Exit(ProcessId id, const std::string& how) {
    auto on_exit = std::move(procs.at(id - 1).handlers.on_exit);
    procs.at(id - 1).handlers = {};
    on_exit(how);
  }
  // Takes what the node wrote to `id` so far.
  std::string TakeInput(ProcessId id) { return std::exchange(procs.at(id - 1).input, ""); }

  std::vector<Process> procs;
  bool fail_spawns = false;
};

class ProcessFunctionTest : public ::testing::Test {
 protected:
  ProcessFunctionTest() : cluster_(sim::AllPeers({"a"}), 7, milliseconds(1)) {
    proto::Request r;
    r.mutable_create_keygroup()->set_name("kg");
    EXPECT_EQ(cluster_.Call("a", r)->code(), proto::OK);
    spec_.set_name("f");
    spec_.set_runtime("process");
    spec_.set_handler("/bin/f");
    spec_.set_keygroup("kg");
    spec_.set_concurrency(4);
    (*spec_.mutable_params())["at.cloud"] = "c";
    node::WorkerOptions options;
    options.env = {{"PYTHONPATH", "x"}};
    fn_ = std::make_shared<ProcessFunction>(procs_, cluster_.sim(), spec_, "a", options,
                                            core::ProcessEnv::Limits{}, log_);
    EXPECT_TRUE(fn_->Start().ok());
  }

  // Starts a call with `body`; its result lands in results_[invocation].
  void Call(uint64_t invocation, const std::string& body) {
    contexts_.push_back(std::make_unique<FunctionContext>(
        cluster_.node("a"), "worker", "kg", body, FunctionContext::Params{}, invocation, log_));
    node::Spawn<core::Result<std::string>>(
        fn_->Run(*contexts_.back()),
        [this, invocation](core::Result<std::string> r) { results_.emplace(invocation, r); });
    cluster_.node("a").Flush();
  }
  // Feeds `bytes` to worker `id`'s stdout and lets the node act on it.
  void Out(core::ProcessEnv::ProcessId id, std::string_view bytes) {
    procs_.Out(id, bytes);
    cluster_.node("a").Flush();
    cluster_.sim().RunFor(milliseconds(1));
  }
  std::string Log() {
    std::string all;
    for (const auto& line : log_->lines()) all += line + "\n";
    return all;
  }

  sim::SimCluster cluster_;
  ScriptedProcesses procs_;
  proto::FunctionSpec spec_;
  std::shared_ptr<node::FunctionLog> log_ = std::make_shared<node::FunctionLog>();
  std::shared_ptr<ProcessFunction> fn_;
  std::vector<std::unique_ptr<FunctionContext>> contexts_;
  std::map<uint64_t, core::Result<std::string>> results_;
};

TEST_F(ProcessFunctionTest, WorkersGetTheirEnvironment) {
  ASSERT_EQ(procs_.procs.size(), 1u);  // started at deploy
  const auto& env = procs_.procs[0].spec.env;
  EXPECT_EQ(procs_.procs[0].spec.argv, std::vector<std::string>{"/bin/f"});
  EXPECT_EQ(env.at("PYTHONPATH"), "x");
  EXPECT_EQ(env.at("ENOKI_NODE_ID"), "a");
  EXPECT_EQ(env.at("ENOKI_FUNCTION"), "f");
  EXPECT_EQ(env.at("ENOKI_KEYGROUP"), "kg");
  EXPECT_EQ(env.at("ENOKI_PARAM_AT_CLOUD"), "c");
}

TEST_F(ProcessFunctionTest, FramesSplitAcrossReadsAndStoreOperations) {
  Call(7, "body");
  EXPECT_EQ(procs_.TakeInput(1), "invoke 7 4\nbody");
  Out(1, "pu");
  Out(1, "t 1 2\nk");  // a header and its fields may arrive in any pieces
  Out(1, "vv");
  EXPECT_EQ(procs_.TakeInput(1), "ok\n");
  Out(1, "get 1\nk");
  std::string reply = procs_.TakeInput(1);
  ASSERT_EQ(reply.rfind("ok 2 ", 0), 0u) << reply;
  std::string version = reply.substr(reply.find('\n') + 3);  // after "vv"
  EXPECT_EQ(reply.substr(reply.find('\n') + 1, 2), "vv");
  // A conditional put with a stale version fails; with the current one it applies.
  Out(1, "put 1 1 " + std::to_string(version.size()) + "\nkw" + version);
  EXPECT_EQ(procs_.TakeInput(1), "ok\n");
  Out(1, "put 1 1 " + std::to_string(version.size()) + "\nkx" + version);
  EXPECT_EQ(procs_.TakeInput(1).rfind("error FAILED_PRECONDITION ", 0), 0u);
  Out(1, "get 1\nz");
  EXPECT_EQ(procs_.TakeInput(1).rfind("error NOT_FOUND ", 0), 0u);
  Out(1, "scan 0 0 10\n");
  EXPECT_EQ(procs_.TakeInput(1), "ok 1 1\nkw");
  Out(1, "log 5\nhello");
  EXPECT_TRUE(results_.empty());
  Out(1, "return 2\nhilog 1\nx");  // the result, and then a frame it must not send
  ASSERT_TRUE(results_.contains(7));
  EXPECT_EQ(*results_.at(7), "hi");
  EXPECT_TRUE(procs_.procs[0].killed);  // it broke the protocol after its result
  EXPECT_NE(Log().find("#7 hello"), std::string::npos) << Log();
}

TEST_F(ProcessFunctionTest, AViolationKillsTheWorkerAndFailsItsCall) {
  Call(1, "");
  Out(1, "bogus 1\nx");
  ASSERT_TRUE(results_.contains(1));
  EXPECT_EQ(results_.at(1).status().code(), core::Code::kInternal);
  EXPECT_NE(results_.at(1).status().message().find("broke the protocol: unknown verb 'bogus'"),
            std::string::npos)
      << results_.at(1).status().ToString();
  EXPECT_TRUE(procs_.procs[0].killed);
  Call(2, "");  // the next call gets a new worker
  ASSERT_EQ(procs_.procs.size(), 2u);
  EXPECT_EQ(procs_.TakeInput(2), "invoke 2 0\n");
  Out(2, "put 1\nk");  // too few numbers for put
  EXPECT_NE(results_.at(2).status().message().find("'put' with 1 numbers"), std::string::npos);
  cluster_.sim().RunFor(seconds(1));
  ASSERT_EQ(procs_.procs.size(), 3u);  // a third one was started: none was left
  Out(3, "return 0\n");
  EXPECT_TRUE(procs_.procs[2].killed);  // it wrote while it served no call
}

TEST_F(ProcessFunctionTest, AbortEndsExactlyTheCallThatTimedOut) {
  Call(1, "first");   // worker 1
  Call(2, "second");  // worker 2: worker 1 is busy
  ASSERT_EQ(procs_.procs.size(), 2u);
  fn_->Abort(1);
  ASSERT_TRUE(results_.contains(1));
  EXPECT_NE(results_.at(1).status().message().find("worker killed: its call ran past the timeout"),
            std::string::npos)
      << results_.at(1).status().ToString();
  EXPECT_TRUE(procs_.procs[0].killed);
  EXPECT_FALSE(procs_.procs[1].killed);
  EXPECT_FALSE(results_.contains(2));
  Out(2, "return 2\nok");
  EXPECT_EQ(*results_.at(2), "ok");
}

TEST_F(ProcessFunctionTest, StderrLinesGoToTheLogWithTheLastUnfinishedOne) {
  Call(3, "");
  procs_.Err(1, "first li");
  procs_.Err(1, "ne\nsecond");
  procs_.Exit(1, "exited with status 2");
  cluster_.node("a").Flush();
  ASSERT_TRUE(results_.contains(3));
  EXPECT_EQ(results_.at(3).status().message(), "function 'f': worker exited with status 2");
  std::string log = Log();
  EXPECT_NE(log.find("#3 stderr: first line\n"), std::string::npos) << log;
  EXPECT_NE(log.find("#3 stderr: second\n"), std::string::npos) << log;
  EXPECT_NE(log.find("#3 worker exited with status 2"), std::string::npos) << log;
}

TEST_F(ProcessFunctionTest, DeadWorkersAreRestartedWithABackoffWhileTheyDieYoung) {
  auto spawns_after = [&](milliseconds d) {
    cluster_.sim().RunFor(d);
    return procs_.procs.size();
  };
  procs_.Exit(1, "exited with status 1");  // at once: young
  EXPECT_EQ(spawns_after(milliseconds(99)), 1u);
  EXPECT_EQ(spawns_after(milliseconds(1)), 2u);  // after 100 ms
  procs_.Exit(2, "exited with status 1");
  EXPECT_EQ(spawns_after(milliseconds(199)), 2u);
  EXPECT_EQ(spawns_after(milliseconds(1)), 3u);  // after 200 ms
  procs_.fail_spawns = true;                     // the program is gone: keep trying, slower
  procs_.Exit(3, "exited with status 1");
  EXPECT_EQ(spawns_after(milliseconds(400)), 3u);
  procs_.fail_spawns = false;
  EXPECT_EQ(spawns_after(milliseconds(799)), 3u);
  EXPECT_EQ(spawns_after(milliseconds(1)), 4u);  // 800 ms after the failed attempt
  EXPECT_NE(Log().find("cannot restart a worker: cannot run /bin/f"), std::string::npos);
  // A worker that lived past a second is replaced at once.
  cluster_.sim().RunFor(seconds(2));
  procs_.Exit(4, "was killed by SIGKILL");
  EXPECT_EQ(spawns_after(milliseconds(0)), 5u);
}

TEST_F(ProcessFunctionTest, IdleWorkersAreStoppedAndCallsStartThemAgain) {
  node::WorkerOptions options;
  options.idle_timeout = seconds(60);
  fn_ = std::make_shared<ProcessFunction>(procs_, cluster_.sim(), spec_, "a", options,
                                          core::ProcessEnv::Limits{}, log_);
  ASSERT_TRUE(fn_->Start().ok());
  ASSERT_EQ(procs_.procs.size(), 2u);  // the fixture's function had the first
  cluster_.sim().RunFor(seconds(30));
  Call(1, "x");                        // on worker 2, 30 s after its start
  cluster_.sim().RunFor(seconds(40));  // busy meanwhile: not stopped
  EXPECT_FALSE(procs_.procs[1].killed);
  Out(2, "return 1\ny");
  EXPECT_EQ(*results_.at(1), "y");
  cluster_.sim().RunFor(seconds(59));
  EXPECT_FALSE(procs_.procs[1].killed);
  cluster_.sim().RunFor(seconds(2));  // 60 s after the call ended
  EXPECT_TRUE(procs_.procs[1].killed);
  EXPECT_NE(Log().find("worker stopped: idle for 60000 ms"), std::string::npos) << Log();
  cluster_.sim().RunFor(seconds(10));
  EXPECT_EQ(procs_.procs.size(), 2u);  // not restarted: nothing needs it
  Call(2, "z");
  ASSERT_EQ(procs_.procs.size(), 3u);  // started again on demand
  EXPECT_EQ(procs_.TakeInput(3), "invoke 2 1\nz");
  Out(3, "return 1\nw");
  EXPECT_EQ(*results_.at(2), "w");
}

TEST(ProcessFunctionLimitsTest, TheFunctionsOwnOrTheNodesAndNeverMoreThanTheNodes) {
  core::ProcessEnv::Limits node{512 << 20, 0, 1024, 64};
  proto::FunctionSpec spec;
  spec.set_name("f");
  auto limits = ProcessFunction::Limits(spec, node);
  ASSERT_TRUE(limits.ok());
  EXPECT_EQ(limits->memory_bytes, 512u << 20);
  EXPECT_EQ(limits->open_files, 1024u);
  spec.mutable_limits()->set_memory_bytes(64 << 20);
  spec.mutable_limits()->set_cpu_seconds(100);  // the node sets none: any
  limits = ProcessFunction::Limits(spec, node);
  ASSERT_TRUE(limits.ok());
  EXPECT_EQ(limits->memory_bytes, 64u << 20);
  EXPECT_EQ(limits->cpu_seconds, 100u);
  EXPECT_EQ(limits->processes, 64u);
  spec.mutable_limits()->set_processes(65);
  EXPECT_EQ(ProcessFunction::Limits(spec, node).status().message(),
            "function 'f' asks for 65 processes per worker; this node allows at most 64 "
            "(--worker-procs)");
}

}  // namespace
}  // namespace enoki
