// The function host on simulated nodes: deploy, invoke the built-in functions, redeploy, delete,
// counters, timeouts, the concurrency limit and bad deployments.
#include <gtest/gtest.h>

#include "sim/cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FunctionHostTest : public ::testing::Test {
 protected:
  FunctionHostTest() : cluster_(sim::AllPeers({"edge", "cloud"}), 3, milliseconds(5)) {
    // "state" at the edge; "far" in the cloud, for functions that wait on a remote replica.
    for (auto [kg, at] : {std::pair{"state", "edge"}, std::pair{"far", "cloud"}}) {
      proto::Request r;
      r.mutable_create_keygroup()->set_name(kg);
      r.mutable_create_keygroup()->add_replicas(at);
      EXPECT_EQ(Call("edge", r).code(), proto::OK);
    }
    cluster_.sim().RunFor(milliseconds(100));
  }
  proto::Response Call(const std::string& node, proto::Request r) {
    auto res = cluster_.Call(node, std::move(r));
    EXPECT_TRUE(res.has_value());
    return res.value_or(proto::Response{});
  }
  proto::Response Deploy(const std::string& node, const std::string& name,
                         const std::string& handler, std::map<std::string, std::string> params = {},
                         uint32_t timeout_ms = 0, uint32_t concurrency = 0,
                         const std::string& keygroup = "state") {
    proto::Request r;
    auto* spec = r.mutable_deploy_function()->mutable_spec();
    spec->set_name(name);
    spec->set_handler(handler);
    spec->set_keygroup(keygroup);
    for (auto& [k, v] : params) (*spec->mutable_params())[k] = v;
    spec->set_timeout_ms(timeout_ms);
    spec->set_concurrency(concurrency);
    return Call(node, r);
  }
  proto::Request Invoke(const std::string& name, const std::string& body) {
    proto::Request r;
    r.mutable_invoke()->set_function(name);
    r.mutable_invoke()->set_body(body);
    return r;
  }
  // The response body, or "<CODE>".
  std::string Run(const std::string& node, const std::string& name, const std::string& body) {
    auto res = Call(node, Invoke(name, body));
    return res.code() == proto::OK ? res.invoke().body() : "<" + proto::Code_Name(res.code()) + ">";
  }

  // The counters of the one function deployed at `node`: its calls, their timeouts, and the
  // calls in flight.
  void ExpectCounters(const std::string& node, uint64_t invocations, uint64_t timeouts,
                      uint32_t in_flight) {
    proto::Request list;
    list.mutable_list_functions();
    auto listed = Call(node, list).functions();
    ASSERT_EQ(listed.functions_size(), 1);
    EXPECT_EQ(listed.functions(0).invocations(), invocations);
    EXPECT_EQ(listed.functions(0).timeouts(), timeouts);
    EXPECT_EQ(listed.functions(0).in_flight(), in_flight);
  }

  // The value of `key` in keygroup "state" as `node` serves it, or "<CODE>".
  std::string Get(const std::string& node, const std::string& key) {
    proto::Request r;
    r.mutable_get()->set_keygroup("state");
    r.mutable_get()->set_key(key);
    auto res = Call(node, r);
    return res.code() == proto::OK ? res.get().value() : "<" + proto::Code_Name(res.code()) + ">";
  }

  sim::SimCluster cluster_;
};

TEST_F(FunctionHostTest, BuiltInFunctions) {
  ASSERT_EQ(Deploy("edge", "echo", "echo").code(), proto::OK);
  EXPECT_EQ(Run("edge", "echo", "hello"), "hello");

  ASSERT_EQ(Deploy("edge", "inc", "increment").code(), proto::OK);
  EXPECT_EQ(Run("edge", "inc", ""), "1");
  EXPECT_EQ(Run("edge", "inc", ""), "2");
  EXPECT_EQ(Run("edge", "inc", "other"), "1");
  proto::Request word;
  word.mutable_put()->set_keygroup("state");
  word.mutable_put()->set_key("word");
  word.mutable_put()->set_value("abc");
  ASSERT_EQ(Call("edge", word).code(), proto::OK);
  EXPECT_EQ(Run("edge", "inc", "word"), "<FAILED_PRECONDITION>");

  ASSERT_EQ(Deploy("edge", "read", "read", {{"size", "100"}}).code(), proto::OK);
  EXPECT_EQ(Run("edge", "read", "7"), std::string(100, 'x'));  // written on first use

  // A parameter the function does not read is refused, naming the ones it reads.
  auto sized = Deploy("edge", "write", "write", {{"size", "3"}});
  EXPECT_EQ(sized.code(), proto::INVALID_ARGUMENT);
  EXPECT_EQ(sized.error(), "native function 'write' has no parameter 'size' (it takes none)");
  EXPECT_EQ(Deploy("edge", "ma", "movingaverage", {{"windw", "3"}}).error(),
            "native function 'movingaverage' has no parameter 'windw' (it takes window)");
  ASSERT_EQ(Deploy("edge", "write", "write").code(), proto::OK);
  std::string k1 = Run("edge", "write", "abc"), k2 = Run("edge", "write", "de");
  EXPECT_NE(k1, k2);
  EXPECT_EQ(Get("edge", k1), "abc");  // the uploaded item, under the key it returned
  EXPECT_EQ(Get("edge", k2), "de");

  ASSERT_EQ(Deploy("edge", "ma", "movingaverage", {{"window", "3"}}).code(), proto::OK);
  EXPECT_EQ(Run("edge", "ma", "t1 10"), "10");
  EXPECT_EQ(Run("edge", "ma", "t1 20"), "15");
  EXPECT_EQ(Run("edge", "ma", "t1 30"), "20");
  EXPECT_EQ(Run("edge", "ma", "t1 90"), "46.6667");  // 20, 30, 90: the 10 left the window
  EXPECT_EQ(Run("edge", "ma", "t2 1"), "1");         // another caller's own window
  EXPECT_EQ(Run("edge", "ma", "t1 x"), "<INVALID_ARGUMENT>");

  ASSERT_EQ(Deploy("edge", "replication", "replication").code(), proto::OK);
  EXPECT_EQ(Run("edge", "replication", ""), "");
  EXPECT_EQ(Run("edge", "replication", "42"), "42");
  EXPECT_EQ(Run("edge", "replication", ""), "42");
}

TEST_F(FunctionHostTest, AFunctionWithoutALocalReplicaUsesTheRemoteOne) {
  ASSERT_EQ(Deploy("cloud", "replication", "replication").code(), proto::OK);
  EXPECT_EQ(Run("cloud", "replication", "7"), "7");
  EXPECT_EQ(Get("edge", "counter"), "7");
}

TEST_F(FunctionHostTest, RedeployDeleteAndCounters) {
  ASSERT_EQ(Deploy("edge", "f", "echo").code(), proto::OK);
  EXPECT_EQ(Run("edge", "f", "a"), "a");
  ASSERT_EQ(Deploy("edge", "f", "replication").code(), proto::OK);  // a new version
  EXPECT_EQ(Run("edge", "f", "5"), "5");
  EXPECT_EQ(Run("edge", "f", ""), "5");
  proto::Request list;
  list.mutable_list_functions();
  auto listed = Call("edge", list);
  ASSERT_EQ(listed.functions().functions_size(), 1);
  const auto& info = listed.functions().functions(0);
  EXPECT_EQ(info.spec().handler(), "replication");
  EXPECT_EQ(info.invocations(), 2u);  // counters start again with each deployed version
  proto::Request del;
  del.mutable_delete_function()->set_name("f");
  EXPECT_EQ(Call("edge", del).code(), proto::OK);
  EXPECT_EQ(Run("edge", "f", ""), "<NOT_FOUND>");
  EXPECT_EQ(Call("edge", del).code(), proto::NOT_FOUND);
}

TEST_F(FunctionHostTest, TimeoutAnswersAndTheLateResultIsDropped) {
  ASSERT_EQ(Deploy("edge", "slow", "replication", {}, /*timeout_ms=*/100, 0, "far").code(),
            proto::OK);
  cluster_.Crash("cloud");  // the forwarded read waits its 2 s forward timeout
  auto res = Call("edge", Invoke("slow", ""));
  EXPECT_EQ(res.code(), proto::DEADLINE_EXCEEDED);
  EXPECT_NE(res.error().find("timeout of 100 ms"), std::string::npos) << res.error();
  cluster_.sim().RunFor(seconds(5));  // the function ends later; nothing else is answered
  ExpectCounters("edge", 1, 1, 0);
}

// Calls of one deployment share one deadline timer: each still times out at its own deadline,
// and once the cause is gone the next call runs to its end.
TEST_F(FunctionHostTest, OverlappingCallsTimeOutEachAtItsOwnDeadline) {
  ASSERT_EQ(Deploy("edge", "slow", "replication", {}, /*timeout_ms=*/100, 0, "far").code(),
            proto::OK);
  cluster_.Crash("cloud");  // the forwarded reads wait their 2 s forward timeout
  struct Timed {
    core::TimePoint sent, answered;
    std::optional<proto::Response> response;
  };
  std::vector<Timed> calls(3);
  for (size_t i = 0; i < calls.size(); ++i) {
    calls[i].sent = cluster_.sim().Now();
    cluster_.network().Request("", "edge", Invoke("slow", ""), [&, i](auto&& r) {
      calls[i].response = r;
      calls[i].answered = cluster_.sim().Now();
    });
    cluster_.sim().RunFor(milliseconds(i == 0 ? 30 : 45));
  }
  cluster_.sim().RunFor(seconds(1));
  std::vector<core::Duration> took(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    ASSERT_TRUE(calls[i].response.has_value()) << "call " << i;
    EXPECT_EQ(calls[i].response->code(), proto::DEADLINE_EXCEEDED) << i;
    took[i] = calls[i].answered - calls[i].sent;
  }
  // The same time for each: the timeout plus the client's round trip (each answer was awaited
  // from its call's own start, so none waited for another's).
  EXPECT_GE(took[0], milliseconds(100));
  EXPECT_LT(took[0], milliseconds(130));
  EXPECT_EQ(took[1], took[0]);
  EXPECT_EQ(took[2], took[0]);

  ASSERT_TRUE(cluster_.Restart("cloud").ok());
  cluster_.sim().RunFor(seconds(3));  // the late results arrive and are dropped
  EXPECT_EQ(Call("edge", Invoke("slow", "")).code(), proto::OK);
  ExpectCounters("edge", 4, 3, 0);
}

TEST_F(FunctionHostTest, ConcurrencyLimit) {
  ASSERT_EQ(Deploy("edge", "one", "replication", {}, 0, /*concurrency=*/1, "far").code(),
            proto::OK);
  std::optional<proto::Response> first, second;
  cluster_.network().Request("", "edge", Invoke("one", ""), [&](auto&& x) { first = x; });
  cluster_.network().Request("", "edge", Invoke("one", ""), [&](auto&& x) { second = x; });
  cluster_.sim().RunFor(seconds(1));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->code(), proto::OK);
  EXPECT_EQ(second->code(), proto::UNAVAILABLE);
  EXPECT_NE(second->error().find("concurrency limit"), std::string::npos);
}

TEST_F(FunctionHostTest, AsyncCallsAreAcceptedAtOnceAndRunInTheBackground) {
  ASSERT_EQ(Deploy("cloud", "inc", "increment").code(), proto::OK);  // state at the edge replica
  auto start = cluster_.sim().Now();
  proto::Request call = Invoke("inc", "n");
  call.mutable_invoke()->set_async(true);
  auto accepted = Call("cloud", call);
  EXPECT_EQ(accepted.code(), proto::OK);
  EXPECT_EQ(accepted.invoke().body(), "");
  // Answered after the client round trip alone, before the function's remote get and put.
  EXPECT_LT(cluster_.sim().Now() - start, milliseconds(15));
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Run("cloud", "inc", "n"), "2");  // the background call did run
  call.mutable_invoke()->set_function("missing");
  EXPECT_EQ(Call("cloud", call).code(), proto::NOT_FOUND);
}

TEST_F(FunctionHostTest, LogsKeepDeploymentsFailuresAndTimeouts) {
  ASSERT_EQ(Deploy("edge", "f", "fail").code(), proto::OK);
  EXPECT_EQ(Run("edge", "f", "disk on fire"), "<INTERNAL>");
  ASSERT_EQ(Deploy("edge", "f", "echo").code(), proto::OK);  // the log outlives a redeploy
  EXPECT_EQ(Run("edge", "f", "fine"), "fine");
  proto::Request logs;
  logs.mutable_function_logs()->set_name("f");
  auto all = Call("edge", logs).logs();
  ASSERT_EQ(all.lines_size(), 3);
  EXPECT_NE(all.lines(0).find("deployed native:fail on keygroup state"), std::string::npos);
  EXPECT_NE(all.lines(1).find("failed: internal error: function threw: disk on fire"),
            std::string::npos)
      << all.lines(1);
  EXPECT_NE(all.lines(2).find("deployed native:echo"), std::string::npos);
  logs.mutable_function_logs()->set_tail(1);
  EXPECT_EQ(Call("edge", logs).logs().lines_size(), 1);
  logs.mutable_function_logs()->set_name("nothing");
  EXPECT_EQ(Call("edge", logs).code(), proto::NOT_FOUND);
}

TEST_F(FunctionHostTest, DeploymentsSurviveARestartOfTheNode) {
  ASSERT_EQ(Deploy("edge", "kept", "movingaverage", {{"window", "2"}}, 1234).code(), proto::OK);
  ASSERT_EQ(Deploy("edge", "dropped", "echo").code(), proto::OK);
  proto::Request del;
  del.mutable_delete_function()->set_name("dropped");
  ASSERT_EQ(Call("edge", del).code(), proto::OK);
  EXPECT_EQ(Run("edge", "kept", "4"), "4");
  cluster_.Crash("edge");
  ASSERT_TRUE(cluster_.Restart("edge").ok());
  EXPECT_EQ(Run("edge", "kept", "6"), "5");  // the function and its state are back
  EXPECT_EQ(Run("edge", "dropped", ""), "<NOT_FOUND>");
  proto::Request list;
  list.mutable_list_functions();
  auto listed = Call("edge", list).functions();
  ASSERT_EQ(listed.functions_size(), 1);
  EXPECT_EQ(listed.functions(0).spec().timeout_ms(), 1234u);
  EXPECT_EQ(listed.functions(0).spec().params().at("window"), "2");
}

TEST_F(FunctionHostTest, BadDeploymentsAreRefused) {
  auto bad_handler = Deploy("edge", "f", "nope");
  EXPECT_EQ(bad_handler.code(), proto::INVALID_ARGUMENT);
  EXPECT_NE(
      bad_handler.error().find(
          "available: echo, emergencydetection, fail, idle, increment, lightphasecalculation"),
      std::string::npos)
      << bad_handler.error();
  EXPECT_EQ(Deploy("edge", "bad name", "echo").code(), proto::INVALID_ARGUMENT);
  proto::Request r;
  auto* spec = r.mutable_deploy_function()->mutable_spec();
  spec->set_name("p");
  spec->set_runtime("process");  // a simulated node has no processes
  spec->set_handler("/bin/cat");
  spec->set_keygroup("state");
  auto no_processes = Call("edge", r);
  EXPECT_EQ(no_processes.code(), proto::INVALID_ARGUMENT);
  EXPECT_NE(no_processes.error().find("runtime 'process' runs programs, which only real nodes can"),
            std::string::npos)
      << no_processes.error();
  spec->set_runtime("native");
  spec->set_handler("echo");
  spec->set_concurrency(4294967295u);  // every call at once would be no limit at all
  auto concurrency = Call("edge", r);
  EXPECT_EQ(concurrency.code(), proto::INVALID_ARGUMENT);
  EXPECT_EQ(concurrency.error(),
            "function 'p': a concurrency of 4294967295 is over the 1024 a node allows");
  spec->set_concurrency(0);
  spec->mutable_limits()->set_memory_bytes(1 << 20);
  EXPECT_EQ(Call("edge", r).error(), "function 'p': only runtime 'process' takes worker limits");
  spec->clear_limits();
  spec->set_runtime("wasm");
  auto runtime = Call("edge", r);
  EXPECT_EQ(runtime.code(), proto::INVALID_ARGUMENT);
  EXPECT_NE(runtime.error().find("runtime 'wasm' is not supported; available: native, process"),
            std::string::npos)
      << runtime.error();
  EXPECT_EQ(Run("edge", "missing", ""), "<NOT_FOUND>");
}

}  // namespace
}  // namespace enoki
