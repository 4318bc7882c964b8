// Native functions as C++20 coroutines against a FunctionContext, run on simulated nodes: local
// and remote state, nested tasks, and a function that throws.
#include <gtest/gtest.h>

#include <map>

#include "functions/builtins.h"
#include "net/trace.h"
#include "node/function_context.h"
#include "node/function_host.h"
#include "sim/cluster.h"

namespace enoki {
namespace {

using node::FunctionContext;
using node::Task;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Reads "count" (absent: 0), writes it back plus the number in the body, returns the new value.
Task<core::Result<std::string>> AddToCount(FunctionContext& ctx) {
  auto old = co_await ctx.kv().Get("count");
  if (!old.ok() && old.status().code() != core::Code::kNotFound) co_return old.status();
  long n = (old.ok() ? std::stol(*old) : 0) + std::stol(ctx.body());
  core::Status st = co_await ctx.kv().Put("count", std::to_string(n));
  if (!st.ok()) co_return st;
  co_return std::to_string(n);
}

Task<core::Result<std::string>> ReadThenWrite(FunctionContext& ctx) {
  auto before = co_await ctx.kv().GetVersioned("k");
  if (!before.ok()) co_return before.status();
  core::Status st = co_await ctx.kv().Put("k", ctx.body());
  if (!st.ok()) co_return st;
  co_return std::string("ok");
}

// A trace kept in memory.
struct Collected : net::TraceSink {
  std::vector<proto::TraceRecord> records;
  void Record(proto::TraceRecord&& r) override { records.push_back(std::move(r)); }
  std::vector<proto::WriteTrace> Writes() const {
    std::vector<proto::WriteTrace> out;
    for (const auto& r : records) {
      if (r.has_write()) out.push_back(r.write());
    }
    return out;
  }
  std::vector<proto::KvOpTrace> Ops() const {
    std::vector<proto::KvOpTrace> out;
    for (const auto& r : records) {
      if (r.has_kv_op()) out.push_back(r.kv_op());
    }
    return out;
  }
};

Task<core::Result<std::string>> Twice(FunctionContext& ctx) {
  auto first = co_await AddToCount(ctx);  // a task awaiting another task
  if (!first.ok()) co_return first;
  co_return co_await AddToCount(ctx);
}

Task<core::Result<std::string>> Throws(FunctionContext& ctx) {
  co_await ctx.kv().Get("anything");
  throw std::runtime_error("boom");
}

// Calls "echo" at the node named in the body ("" : this node) and returns what it answered.
Task<core::Result<std::string>> CallsEcho(FunctionContext& ctx) {
  std::string body = ctx.body().empty() ? "via local" : "via " + ctx.body();
  co_return co_await ctx.Call("echo", body, ctx.body());
}

// Calls a function that is deployed nowhere.
Task<core::Result<std::string>> CallsMissing(FunctionContext& ctx) {
  co_return co_await ctx.Call("nowhere", "", ctx.body());
}

// Starts "increment" at node b asynchronously, then returns at once.
Task<core::Result<std::string>> CallsAsync(FunctionContext& ctx) {
  co_return co_await ctx.Call("inc", "async-key", "b", /*async=*/true);
}

// Calls "echo" at node c with a short timeout.
Task<core::Result<std::string>> CallsWithTimeout(FunctionContext& ctx) {
  co_return co_await ctx.Call("echo", "x", "c", false, milliseconds(300));
}

class FunctionTest : public ::testing::Test {
 protected:
  FunctionTest() : cluster_(sim::AllPeers({"a", "b", "c"}), 5, milliseconds(5)) {
    proto::Request r;
    r.mutable_create_keygroup()->set_name("state");
    r.mutable_create_keygroup()->add_replicas("a");
    r.mutable_create_keygroup()->add_replicas("b");
    EXPECT_EQ(cluster_.Call("a", r)->code(), proto::OK);
    cluster_.sim().RunFor(milliseconds(100));
  }

  // Runs `fn` at node `at` with `body` and the simulation until it finishes.
  core::Result<std::string> Run(const std::string& at,
                                Task<core::Result<std::string>> (*fn)(FunctionContext&),
                                const std::string& body) {
    FunctionContext ctx(cluster_.node(at), "test", "state", body);
    std::optional<core::Result<std::string>> result;
    node::Spawn<core::Result<std::string>>(
        fn(ctx), [&](core::Result<std::string> r) { result.emplace(std::move(r)); });
    cluster_.node(at).Flush();
    EXPECT_TRUE(cluster_.sim().RunUntilTrue([&] { return result.has_value(); }, seconds(10)));
    return result.has_value() ? std::move(*result)
                              : core::Result<std::string>(core::Status::Internal("no result"));
  }
  std::string At(const std::string& node, const std::string& key) {
    proto::Request g;
    g.mutable_get()->set_keygroup("state");
    g.mutable_get()->set_key(key);
    auto res = cluster_.Call(node, g);
    return res->code() == proto::OK ? res->get().value() + "@" + res->served_by() : "<absent>";
  }

  sim::SimCluster cluster_;
};

TEST_F(FunctionTest, ReadsAndWritesItsStateAtALocalReplica) {
  auto r = Run("a", AddToCount, "5");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "5");
  r = Run("a", AddToCount, "2");
  EXPECT_EQ(*r, "7");
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(At("b", "count"), "7@b");  // replicated like any write
}

TEST_F(FunctionTest, ReachesARemoteReplicaWhereItHoldsNone) {
  auto r = Run("c", AddToCount, "3");  // c holds no replica of "state"
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "3");
  EXPECT_EQ(At("a", "count"), "3@a");
}

TEST_F(FunctionTest, ConcurrentIncrementsThroughARemoteReplicaAreNeverLost) {
  // c holds no replica: every get and conditional put crosses the network, so the 50
  // invocations interleave between their read and their write, and some must retry.
  constexpr int kCalls = 50;
  std::vector<std::unique_ptr<FunctionContext>> contexts;
  int done = 0;
  for (int i = 0; i < kCalls; ++i) {
    contexts.push_back(std::make_unique<FunctionContext>(cluster_.node("c"), "test", "state", "n"));
    node::Spawn<core::Result<std::string>>(
        functions::Builtins().at("increment").run(*contexts.back()),
        [&](core::Result<std::string> r) {
          EXPECT_TRUE(r.ok()) << r.status().ToString();
          ++done;
        });
  }
  cluster_.node("c").Flush();
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return done == kCalls; }, seconds(60)));
  EXPECT_EQ(At("a", "n"), std::to_string(kCalls) + "@a");
}

TEST_F(FunctionTest, ConcurrentIncrementsAtTwoReplicasCanLoseOneButConverge) {
  // What docs/functions.md says of writers at two replicas: a and b both hold "state"; each
  // checks its conditional put against its own replica, so both increments succeed, and last
  // writer wins when they replicate.
  FunctionContext at_a(cluster_.node("a"), "test", "state", "n");
  FunctionContext at_b(cluster_.node("b"), "test", "state", "n");
  std::vector<std::string> results;
  for (auto* ctx : {&at_a, &at_b}) {
    node::Spawn<core::Result<std::string>>(functions::Builtins().at("increment").run(*ctx),
                                           [&](core::Result<std::string> r) {
                                             ASSERT_TRUE(r.ok()) << r.status().ToString();
                                             results.push_back(*r);
                                           });
  }
  cluster_.node("a").Flush();
  cluster_.node("b").Flush();
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return results.size() == 2; }, seconds(10)));
  EXPECT_EQ(results, (std::vector<std::string>{"1", "1"}));
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(At("a", "n"), "1@a");
  EXPECT_EQ(At("b", "n"), "1@b");
}

TEST_F(FunctionTest, TasksAwaitTasks) {
  auto r = Run("b", Twice, "4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "8");
}

TEST_F(FunctionTest, AnExceptionBecomesAnErrorAndTheNodeKeepsServing) {
  auto r = Run("a", Throws, "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::Code::kInternal);
  EXPECT_EQ(r.status().message(), "function threw: boom");
  EXPECT_EQ(*Run("a", AddToCount, "1"), "1");
}

TEST_F(FunctionTest, FunctionsCallFunctionsHereAndAtOtherNodes) {
  proto::Request deploy;
  auto* spec = deploy.mutable_deploy_function()->mutable_spec();
  spec->set_name("echo");
  spec->set_handler("echo");
  spec->set_keygroup("state");
  for (const char* n : {"a", "b", "c"}) ASSERT_EQ(cluster_.Call(n, deploy)->code(), proto::OK);
  spec->set_name("inc");
  spec->set_handler("increment");
  ASSERT_EQ(cluster_.Call("b", deploy)->code(), proto::OK);

  EXPECT_EQ(*Run("a", CallsEcho, ""), "via local");
  auto start = cluster_.sim().Now();
  EXPECT_EQ(*Run("a", CallsEcho, "b"), "via b");
  EXPECT_GE(cluster_.sim().Now() - start, milliseconds(10));  // a round trip to b
  EXPECT_EQ(Run("a", CallsMissing, "b").status().code(), core::Code::kNotFound);
  EXPECT_EQ(Run("a", CallsMissing, "").status().code(), core::Code::kNotFound);
  EXPECT_EQ(Run("a", CallsMissing, "zz").status().code(), core::Code::kInvalidArgument);

  start = cluster_.sim().Now();
  EXPECT_EQ(*Run("a", CallsAsync, ""), "");
  EXPECT_LT(cluster_.sim().Now() - start, milliseconds(10));  // no round trip to b
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(At("a", "async-key"), "1@a");  // it ran at b, its state is at the replica a

  cluster_.Crash("c");
  auto timed_out = Run("a", CallsWithTimeout, "");
  EXPECT_EQ(timed_out.status().code(), core::Code::kUnavailable);
  EXPECT_NE(timed_out.status().message().find("node c did not serve the request (c: no answer)"),
            std::string::npos)
      << timed_out.status().message();
}

TEST_F(FunctionTest, StoreErrorsReachTheFunction) {
  FunctionContext ctx(cluster_.node("a"), "test", "no-such-keygroup", "1");
  std::optional<core::Result<std::string>> result;
  node::Spawn<core::Result<std::string>>(
      AddToCount(ctx), [&](core::Result<std::string> r) { result.emplace(std::move(r)); });
  cluster_.node("a").Flush();
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), core::Code::kNotFound);
}

TEST_F(FunctionTest, TraceHasEveryStoreOperationAndEveryWriteWhenDurable) {
  std::map<std::string, Collected> traces;
  for (const char* n : {"a", "b", "c"}) cluster_.node(n).SetTrace(&traces[n]);
  struct Unset {  // the nodes outlive `traces`, also when an assertion ends the test early
    sim::SimCluster& cluster;
    ~Unset() {
      for (const char* n : {"a", "b", "c"}) cluster.node(n).SetTrace(nullptr);
    }
  } unset{cluster_};
  auto ns = [](const auto& t) { return std::chrono::nanoseconds(t); };

  // At c, which holds no replica: both operations go to a replica, 5 ms away each way.
  ASSERT_TRUE(Run("c", ReadThenWrite, "1").ok());
  cluster_.sim().RunFor(milliseconds(100));  // replication
  auto ops = traces["c"].Ops();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].kind(), "get");
  EXPECT_EQ(ops[0].code(), proto::NOT_FOUND);
  EXPECT_FALSE(ops[0].has_version());
  EXPECT_EQ(ops[1].kind(), "put");
  EXPECT_EQ(ops[1].code(), proto::OK);
  for (const auto& op : ops) {
    EXPECT_EQ(op.function(), "test");
    EXPECT_EQ(op.keygroup(), "state");
    EXPECT_EQ(op.key(), "k");
    EXPECT_FALSE(op.local());
    EXPECT_GE(ns(op.end_ns() - op.start_ns()), milliseconds(10));  // the round trip
  }
  EXPECT_TRUE(traces["c"].Writes().empty());
  // The replica that served the put made the version (origin); the other applied it one link
  // delay or more after it was durable at the origin.
  const proto::Version v = ops[1].version();
  std::string origin = v.node();
  std::string other = origin == "a" ? "b" : "a";
  ASSERT_TRUE(origin == "a" || origin == "b") << origin;
  auto made = traces[origin].Writes();
  auto applied = traces[other].Writes();
  ASSERT_EQ(made.size(), 1u);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_TRUE(made[0].origin());
  EXPECT_FALSE(applied[0].origin());
  for (const auto& w : {made[0], applied[0]}) {
    EXPECT_EQ(w.key(), "k");
    EXPECT_EQ(w.version().SerializeAsString(), v.SerializeAsString());
  }
  EXPECT_GE(ns(applied[0].durable_ns() - made[0].durable_ns()), milliseconds(5));
  EXPECT_LE(ns(made[0].durable_ns() - ops[1].start_ns()), milliseconds(5));  // on the way out

  // At a, a replica: local, and the read sees the first write's version.
  ASSERT_TRUE(Run("a", ReadThenWrite, "2").ok());
  cluster_.sim().RunFor(milliseconds(100));
  ops = traces["a"].Ops();
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_TRUE(ops[0].local());
  EXPECT_TRUE(ops[1].local());
  EXPECT_EQ(ops[0].version().SerializeAsString(), v.SerializeAsString());
  EXPECT_EQ(ops[0].end_ns(), ops[0].start_ns());  // virtual time: a local read takes none
  EXPECT_EQ(traces["b"].Writes().back().version().SerializeAsString(),
            ops[1].version().SerializeAsString());
}

}  // namespace
}  // namespace enoki
