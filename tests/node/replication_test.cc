// The store and its replication, in-process: nodes on the simulator with a manual (virtual) clock
// and the simulated network. No sleeps; every wait is a bounded run of virtual time.
#include <gtest/gtest.h>

#include <tuple>
#include <utility>
#include <vector>

#include "sim/cluster.h"
#include "tests/node/requests.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using testing::Create;
using testing::Del;
using testing::Get;
using testing::Put;

class ReplicationTest : public ::testing::Test {
 protected:
  ReplicationTest() : cluster_(sim::AllPeers({"a", "b", "c"}), 42, milliseconds(5)) {}

  proto::Response Call(const std::string& node, proto::Request r) {
    auto res = cluster_.Call(node, std::move(r));
    EXPECT_TRUE(res.has_value()) << "no answer from " << node;
    return res.value_or(proto::Response{});
  }
  void ExpectOk(const std::string& node, proto::Request r) {
    auto res = Call(node, std::move(r));
    EXPECT_EQ(res.code(), proto::OK) << res.error();
  }
  // The value of `key` at `node`, or "<code>" when the get fails.
  std::string Value(const std::string& node, const std::string& kg, const std::string& key) {
    auto res = Call(node, Get(kg, key));
    if (res.code() != proto::OK) return "<" + proto::Code_Name(res.code()) + ">";
    return res.get().value();
  }
  // Crashes `node`, restarts it, and expects it to hold each (key, value) of keygroup "kg".
  void ExpectKeptAcrossACrash(const std::string& node,
                              const std::vector<std::pair<std::string, std::string>>& items) {
    cluster_.Crash(node);
    ASSERT_TRUE(cluster_.Restart(node).ok());
    for (const auto& [key, value] : items) EXPECT_EQ(Value(node, "kg", key), value) << key;
  }

  sim::SimCluster cluster_;
};

TEST_F(ReplicationTest, WriteAtOneReadAtTheOthers) {
  ExpectOk("a", Create("kg", {"a", "b", "c"}));
  ExpectOk("a", Put("kg", "k", "v1"));
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Value("b", "kg", "k"), "v1");
  EXPECT_EQ(Value("c", "kg", "k"), "v1");
  EXPECT_EQ(Call("c", Get("kg", "k")).served_by(), "c");
  EXPECT_EQ(cluster_.node("a").OutboxSize(), 0u);
}

TEST_F(ReplicationTest, ConcurrentWritesConvergeOnOneValue) {
  ExpectOk("a", Create("kg", {"a", "b", "c"}));
  cluster_.sim().RunFor(milliseconds(100));
  // Both writes are in flight at once; no replica has seen the other's write when it makes its own.
  std::optional<proto::Response> ra, rb;
  cluster_.network().Request("", "a", Put("kg", "k", "from-a"), [&](auto&& r) { ra = r; });
  cluster_.network().Request("", "b", Put("kg", "k", "from-b"), [&](auto&& r) { rb = r; });
  cluster_.sim().RunFor(milliseconds(200));
  ASSERT_TRUE(ra && rb);
  std::string v = Value("a", "kg", "k");
  EXPECT_TRUE(v == "from-a" || v == "from-b") << v;
  EXPECT_EQ(Value("b", "kg", "k"), v);
  EXPECT_EQ(Value("c", "kg", "k"), v);
}

TEST_F(ReplicationTest, ConditionalPutAppliesOnlyAtTheExpectedVersion) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  cluster_.sim().RunFor(milliseconds(100));
  auto if_version = [](proto::Request r, const proto::Version& v) {
    *r.mutable_put()->mutable_expected() = v;
    return r;
  };
  proto::Version absent;
  ExpectOk("a", if_version(Put("kg", "k", "v1"), absent));  // created: it was absent
  auto again = Call("a", if_version(Put("kg", "k", "v2"), absent));
  EXPECT_EQ(again.code(), proto::FAILED_PRECONDITION);
  EXPECT_NE(again.error().find("not the expected one"), std::string::npos) << again.error();
  proto::Version v1 = Call("a", Get("kg", "k")).get().version();
  ExpectOk("a", Put("kg", "k", "v2"));  // another writer
  EXPECT_EQ(Call("a", if_version(Put("kg", "k", "v3"), v1)).code(), proto::FAILED_PRECONDITION);
  EXPECT_EQ(Value("a", "kg", "k"), "v2");
  // Checked against the version at the replica that runs it, also when forwarded from c.
  cluster_.sim().RunFor(milliseconds(100));
  proto::Version v2 = Call("b", Get("kg", "k")).get().version();
  ExpectOk("c", if_version(Put("kg", "k", "v3"), v2));
  EXPECT_EQ(Call("c", if_version(Put("kg", "k", "v4"), v2)).code(), proto::FAILED_PRECONDITION);
  ExpectOk("a", Del("kg", "k"));
  ExpectOk("a", if_version(Put("kg", "k", "v5"), absent));  // a deleted key counts as absent
  EXPECT_EQ(Value("a", "kg", "k"), "v5");
}

TEST_F(ReplicationTest, CrashedReplicaCatchesUpWithoutRestartingOthers) {
  ExpectOk("a", Create("kg", {"a", "b", "c"}));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.Crash("c");
  for (int i = 0; i < 1000; ++i) ExpectOk("a", Put("kg", "key" + std::to_string(i), "v"));
  cluster_.sim().RunFor(seconds(5));
  EXPECT_EQ(cluster_.node("a").OutboxSize(), 1000u);  // everything still owed to c
  ASSERT_TRUE(cluster_.Restart("c").ok());
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                          seconds(10)));
  for (int i = 0; i < 1000; i += 37) EXPECT_EQ(Value("c", "kg", "key" + std::to_string(i)), "v");
  EXPECT_EQ(Value("c", "kg", "key999"), "v");
}

TEST_F(ReplicationTest, PartitionedReplicaCatchesUpWhenHealed) {
  ExpectOk("a", Create("kg", {"a", "b", "c"}));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.network().SetCut("a", "c", true);
  ExpectOk("a", Put("kg", "k", "during-cut"));
  cluster_.sim().RunFor(seconds(3));
  EXPECT_EQ(Value("c", "kg", "k"), "<NOT_FOUND>");
  cluster_.network().SetCut("a", "c", false);
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                          seconds(10)));
  EXPECT_EQ(Value("c", "kg", "k"), "during-cut");
}

TEST_F(ReplicationTest, AcknowledgedWritesSurviveACrashOfTheWriter) {
  ExpectOk("a", Create("kg", {"a"}));
  for (int i = 0; i < 20; ++i) ExpectOk("a", Put("kg", "k" + std::to_string(i), "x"));
  cluster_.Crash("a");
  ASSERT_TRUE(cluster_.Restart("a").ok());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Value("a", "kg", "k" + std::to_string(i)), "x");
}

// A node whose commits fail (a full disk) refuses writes with the storage's error, serves what
// is durable, keeps replicating it out, and takes writes again once a commit succeeds; the write
// that was in the failing commit is answered only then, and nothing acknowledged is lost.
TEST_F(ReplicationTest, AFailingDiskRefusesWritesServesReadsAndRecovers) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ExpectOk("a", Put("kg", "k", "v1"));
  cluster_.network().SetCut("a", "b", true);
  ExpectOk("a", Put("kg", "owed", "to-b"));  // durable at a, not yet at b
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.FailCommits("a",
                       core::Status::ResourceExhausted("/data/a.db: database or disk is full"));

  std::optional<proto::Response> held;
  cluster_.network().Request("", "a", Put("kg", "k", "v2"), [&](auto&& r) { held = r; });
  cluster_.sim().RunFor(seconds(1));
  EXPECT_FALSE(held.has_value()) << "answered before it was durable: " << held->DebugString();
  EXPECT_EQ(Value("a", "kg", "k"), "v1");  // what is durable, at once
  auto refused = Call("a", Put("kg", "k2", "x"));
  EXPECT_EQ(refused.code(), proto::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error().find("node a cannot make writes durable (/data/a.db: database or disk "
                                 "is full)"),
            std::string::npos)
      << refused.error();
  EXPECT_EQ(Call("a", Create("other", {"a"})).code(), proto::RESOURCE_EXHAUSTED);
  // b, a replica too, takes its own writes.
  EXPECT_EQ(Call("b", Put("kg", "from-b", "y")).code(), proto::OK);
  proto::Request status;
  status.mutable_node_status();
  EXPECT_NE(Call("a", status).status().storage_fault().find("database or disk is full"),
            std::string::npos);

  // Replication out goes on (what is durable: "owed", and "k" at v1, not the held v2); in, it
  // waits (b's write stays owed to a).
  cluster_.network().SetCut("a", "b", false);
  cluster_.sim().RunFor(seconds(5));
  EXPECT_EQ(Value("b", "kg", "owed"), "to-b");
  EXPECT_EQ(Value("b", "kg", "k"), "v1");
  EXPECT_EQ(Value("a", "kg", "from-b"), "<NOT_FOUND>");
  EXPECT_GT(cluster_.node("b").OutboxSize(), 0u);
  EXPECT_FALSE(held.has_value());

  cluster_.FailCommits("a", core::Status::Ok());
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return held.has_value(); }, seconds(5)));
  EXPECT_EQ(held->code(), proto::OK) << held->error();
  ExpectOk("a", Put("kg", "k2", "x"));
  ASSERT_TRUE(cluster_.sim().RunUntilTrue(
      [&] { return cluster_.node("a").OutboxSize() == 0 && cluster_.node("b").OutboxSize() == 0; },
      seconds(10)));
  EXPECT_EQ(Value("b", "kg", "k"), "v2");
  EXPECT_EQ(Value("a", "kg", "from-b"), "y");
  ExpectKeptAcrossACrash("a", {{"k", "v2"}, {"k2", "x"}, {"from-b", "y"}});
}

// A node that crashes while its disk fails loses only what it never acknowledged.
TEST_F(ReplicationTest, ACrashDuringADiskFaultLosesNothingAcknowledged) {
  ExpectOk("a", Create("kg", {"a"}));
  ExpectOk("a", Put("kg", "k", "v1"));
  cluster_.FailCommits("a", core::Status::IOError("/data/a.db: disk I/O error"));
  std::optional<proto::Response> held;
  cluster_.network().Request("", "a", Put("kg", "k", "v2"), [&](auto&& r) { held = r; });
  cluster_.sim().RunFor(seconds(1));
  auto refused = Call("a", Del("kg", "k"));
  EXPECT_EQ(refused.code(), proto::UNAVAILABLE) << refused.error();
  cluster_.Crash("a");
  cluster_.FailCommits("a", core::Status::Ok());
  ASSERT_TRUE(cluster_.Restart("a").ok());
  EXPECT_FALSE(held.has_value());
  EXPECT_EQ(Value("a", "kg", "k"), "v1");
}

// A stalled disk (a frozen file system: a commit that does not end) holds the writes and what
// read them, not the node: reads of durable items are answered at once, and peers still hear
// from it. Once the disk goes on, everything held is answered, in the one commit after.
TEST_F(ReplicationTest, AStalledDiskHoldsWritesButNotReadsOfDurableItems) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ExpectOk("a", Create("solo", {"a"}));
  ExpectOk("a", Put("kg", "k1", "v1"));
  ExpectOk("a", Put("kg", "k2", "v2"));
  ExpectOk("a", Put("solo", "s", "only-at-a"));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.StallCommits("a", true);

  std::optional<proto::Response> put1, put3, read1, scan;
  cluster_.network().Request("", "a", Put("kg", "k1", "v1b"), [&](auto&& r) { put1 = r; });
  cluster_.sim().RunFor(milliseconds(50));
  // Behind the stalled commit: a second write, a read of the item being committed, a scan over it.
  cluster_.network().Request("", "a", Put("kg", "k3", "v3"), [&](auto&& r) { put3 = r; });
  cluster_.network().Request("", "a", Get("kg", "k1"), [&](auto&& r) { read1 = r; });
  proto::Request whole;
  whole.mutable_scan()->set_keygroup("kg");
  cluster_.network().Request("", "a", whole, [&](auto&& r) { scan = r; });
  // A durable item is read at once; so is a range that no pending write touches.
  auto read2 = cluster_.Call("a", Get("kg", "k2"), milliseconds(50));
  ASSERT_TRUE(read2.has_value()) << "a read of a durable item waited for the stalled commit";
  EXPECT_EQ(read2->get().value(), "v2");
  proto::Request head = whole;
  head.mutable_scan()->set_end("k1");
  EXPECT_TRUE(cluster_.Call("a", head, milliseconds(50)).has_value());
  auto missing = cluster_.Call("a", Get("kg", "nothing"), milliseconds(50));
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->code(), proto::NOT_FOUND);
  cluster_.sim().RunFor(seconds(5));
  EXPECT_FALSE(put1 || put3 || read1 || scan) << "answered before its commit was durable";
  // Peers hear from it: its pongs, and its answers to forwarded reads of durable items.
  proto::Request measure;
  measure.mutable_measure_rtt()->add_peers("a");
  measure.mutable_measure_rtt()->set_probes(3);
  auto rtt = Call("b", measure);
  ASSERT_EQ(rtt.rtts().peers_size(), 1);
  EXPECT_EQ(rtt.rtts().peers(0).answered(), 3u);
  EXPECT_EQ(Value("c", "solo", "s"), "only-at-a");

  cluster_.StallCommits("a", false);
  ASSERT_TRUE(
      cluster_.sim().RunUntilTrue([&] { return put1 && put3 && read1 && scan; }, seconds(1)));
  EXPECT_EQ(put1->code(), proto::OK) << put1->error();
  EXPECT_EQ(put3->code(), proto::OK) << put3->error();
  EXPECT_EQ(read1->get().value(), "v1b");
  EXPECT_EQ(scan->scan().items_size(), 3);
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                          seconds(5)));
  EXPECT_EQ(Value("b", "kg", "k1"), "v1b");
  EXPECT_EQ(Value("b", "kg", "k3"), "v3");
  ExpectKeptAcrossACrash("a", {{"k1", "v1b"}, {"k3", "v3"}});
}

// A commit that fails after a stall takes the writes made behind it along: neither is answered,
// reads see what is durable, and both are answered (and kept) once the disk works again.
TEST_F(ReplicationTest, AStalledCommitThatFailsHoldsTheWritesBehindItToo) {
  ExpectOk("a", Create("kg", {"a"}));
  ExpectOk("a", Put("kg", "x", "old"));
  cluster_.StallCommits("a", true);
  std::optional<proto::Response> first, second;
  cluster_.network().Request("", "a", Put("kg", "x", "new"), [&](auto&& r) { first = r; });
  cluster_.sim().RunFor(milliseconds(10));
  cluster_.network().Request("", "a", Put("kg", "y", "behind"), [&](auto&& r) { second = r; });
  cluster_.sim().RunFor(milliseconds(10));
  cluster_.FailCommits("a", core::Status::IOError("/data/a.db: disk I/O error"));
  cluster_.StallCommits("a", false);
  cluster_.sim().RunFor(seconds(1));
  EXPECT_FALSE(first || second);
  EXPECT_EQ(Value("a", "kg", "x"), "old");
  EXPECT_EQ(Value("a", "kg", "y"), "<NOT_FOUND>");
  EXPECT_EQ(Call("a", Put("kg", "z", "refused")).code(), proto::UNAVAILABLE);

  cluster_.FailCommits("a", core::Status::Ok());
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return first && second; }, seconds(5)));
  EXPECT_EQ(first->code(), proto::OK) << first->error();
  EXPECT_EQ(second->code(), proto::OK) << second->error();
  ExpectKeptAcrossACrash("a", {{"x", "new"}, {"y", "behind"}});
}

TEST_F(ReplicationTest, SyncWriteWaitsForEveryReplica) {
  ExpectOk("a", Create("kg", {"a", "b", "c"}, proto::SYNC));
  cluster_.sim().RunFor(milliseconds(100));
  auto start = cluster_.sim().Now();
  ExpectOk("a", Put("kg", "k", "v"));
  // Client->a, a->b/c, acks back, a->client: at least two round trips of 5 ms links.
  EXPECT_GE(cluster_.sim().Now() - start, milliseconds(20));
  // Already applied at b and c when the writer got its answer.
  cluster_.network().SetCut("a", "b", true);
  cluster_.network().SetCut("a", "c", true);
  EXPECT_EQ(Value("b", "kg", "k"), "v");
  EXPECT_EQ(Value("c", "kg", "k"), "v");
}

TEST_F(ReplicationTest, SyncWriteNamesTheReplicasThatDidNotAnswer) {
  ExpectOk("a", Create("kg", {"a", "b", "c"}, proto::SYNC));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.Crash("c");
  auto res = Call("a", Put("kg", "k", "v"));
  EXPECT_EQ(res.code(), proto::DEADLINE_EXCEEDED);
  EXPECT_NE(res.error().find("replicas c did not confirm"), std::string::npos) << res.error();
  // The write is durable at a and reaches c once it is back.
  ASSERT_TRUE(cluster_.Restart("c").ok());
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                          seconds(10)));
  EXPECT_EQ(Value("c", "kg", "k"), "v");
}

TEST_F(ReplicationTest, NonReplicaForwardsToAReplica) {
  ExpectOk("a", Create("kg", {"a"}));
  cluster_.sim().RunFor(milliseconds(100));
  auto put = Call("b", Put("kg", "k", "v"));
  EXPECT_EQ(put.code(), proto::OK) << put.error();
  EXPECT_EQ(put.served_by(), "a");
  auto get = Call("c", Get("kg", "k"));
  EXPECT_EQ(get.code(), proto::OK);
  EXPECT_EQ(get.get().value(), "v");
  EXPECT_EQ(get.served_by(), "a");
}

TEST_F(ReplicationTest, ForwardingFailsOverToTheNextReplica) {
  ExpectOk("a", Create("kg", {"a", "c"}));
  ExpectOk("a", Put("kg", "k", "v"));
  cluster_.sim().RunFor(seconds(2));
  cluster_.Crash("a");
  cluster_.Crash("c");
  ASSERT_TRUE(cluster_.Restart("c").ok());  // c is back; b still believes a is nearest or live
  auto get = Call("b", Get("kg", "k"));
  EXPECT_EQ(get.code(), proto::OK) << get.error();
  EXPECT_EQ(get.served_by(), "c");
}

TEST_F(ReplicationTest, ForwardingWithNoReplicaLeftIsUnavailable) {
  ExpectOk("a", Create("kg", {"a"}));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.Crash("a");
  auto get = Call("b", Get("kg", "k"));
  EXPECT_EQ(get.code(), proto::UNAVAILABLE);
  EXPECT_NE(get.error().find("a: no answer"), std::string::npos) << get.error();
}

TEST_F(ReplicationTest, NewReplicaPullsTheDataBeforeServingReads) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  for (int i = 0; i < 300; ++i) ExpectOk("a", Put("kg", "k" + std::to_string(i), "v"));
  ExpectOk("a", Del("kg", "k7"));
  cluster_.sim().RunFor(milliseconds(500));
  ExpectOk("b", [] {
    proto::Request r;
    r.mutable_add_replica()->set_keygroup("kg");
    r.mutable_add_replica()->set_node("c");
    return r;
  }());
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("c").IsReadyReplica("kg"); },
                                          seconds(10)));
  auto get = Call("c", Get("kg", "k299"));
  EXPECT_EQ(get.served_by(), "c");
  EXPECT_EQ(get.get().value(), "v");
  EXPECT_EQ(Value("c", "kg", "k7"), "<NOT_FOUND>");
  // Writes after the join reach the new replica too.
  ExpectOk("a", Put("kg", "after", "x"));
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Value("c", "kg", "after"), "x");
}

TEST_F(ReplicationTest, RemovedReplicaDropsItsDataAndForwards) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ExpectOk("a", Put("kg", "k", "v"));
  cluster_.sim().RunFor(milliseconds(100));
  proto::Request rm;
  rm.mutable_remove_replica()->set_keygroup("kg");
  rm.mutable_remove_replica()->set_node("b");
  ExpectOk("a", rm);
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_FALSE(cluster_.node("b").IsReadyReplica("kg"));
  auto get = Call("b", Get("kg", "k"));
  EXPECT_EQ(get.get().value(), "v");
  EXPECT_EQ(get.served_by(), "a");
  rm.mutable_remove_replica()->set_node("a");
  auto last = Call("c", rm);
  EXPECT_EQ(last.code(), proto::FAILED_PRECONDITION);
  EXPECT_NE(last.error().find("last replica"), std::string::npos);
}

TEST_F(ReplicationTest, DeletedKeygroupIsGoneEverywhere) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ExpectOk("a", Put("kg", "k", "v"));
  cluster_.sim().RunFor(milliseconds(100));
  proto::Request del;
  del.mutable_delete_keygroup()->set_name("kg");
  ExpectOk("b", del);
  cluster_.sim().RunFor(milliseconds(100));
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_EQ(Call(n, Get("kg", "k")).code(), proto::NOT_FOUND) << n;
  }
  // Created again, it starts empty.
  ExpectOk("c", Create("kg", {"a", "b"}));
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Value("a", "kg", "k"), "<NOT_FOUND>");
}

TEST_F(ReplicationTest, AppendOnlyKeygroups) {
  ExpectOk("a", Create("log", {"a", "b"}, proto::ASYNC, proto::APPEND_ONLY));
  proto::Request app;
  app.mutable_append()->set_keygroup("log");
  app.mutable_append()->set_value("first");
  auto r1 = Call("a", app);
  app.mutable_append()->set_value("second");
  auto r2 = Call("a", app);
  ASSERT_EQ(r1.code(), proto::OK) << r1.error();
  EXPECT_LT(r1.write().key(), r2.write().key());
  EXPECT_EQ(Call("a", Put("log", r1.write().key(), "x")).code(), proto::ALREADY_EXISTS);
  EXPECT_EQ(Call("a", Del("log", r1.write().key())).code(), proto::FAILED_PRECONDITION);
  EXPECT_EQ(Call("a", Put("log", "fresh", "y")).code(), proto::OK);
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Value("b", "log", r2.write().key()), "second");
  proto::Request append_mutable;
  ExpectOk("a", Create("m", {"a"}));
  append_mutable.mutable_append()->set_keygroup("m");
  EXPECT_EQ(Call("a", append_mutable).code(), proto::FAILED_PRECONDITION);
}

TEST_F(ReplicationTest, ScanReturnsARangeInKeyOrder) {
  ExpectOk("a", Create("kg", {"a"}));
  for (char c = 'a'; c <= 'j'; ++c) ExpectOk("a", Put("kg", std::string(1, c), std::string(1, c)));
  ExpectOk("a", Del("kg", "c"));
  proto::Request scan;
  scan.mutable_scan()->set_keygroup("kg");
  scan.mutable_scan()->set_start("b");
  scan.mutable_scan()->set_end("h");
  scan.mutable_scan()->set_limit(4);
  auto res = Call("a", scan);
  ASSERT_EQ(res.code(), proto::OK);
  std::string keys;
  for (const auto& kv : res.scan().items()) keys += kv.key();
  EXPECT_EQ(keys, "bdef");
  EXPECT_TRUE(res.scan().more());
  scan.mutable_scan()->set_limit(0);
  res = Call("a", scan);
  EXPECT_EQ(res.scan().items_size(), 5);
  EXPECT_FALSE(res.scan().more());
}

TEST_F(ReplicationTest, LimitsGiveClearErrors) {
  ExpectOk("a", Create("kg", {"a"}));
  auto big = Call("a", Put("kg", "k", std::string((1 << 20) + 1, 'x')));
  EXPECT_EQ(big.code(), proto::TOO_LARGE);
  EXPECT_NE(big.error().find("limit is 1048576"), std::string::npos) << big.error();
  EXPECT_EQ(Call("a", Put("kg", "k", std::string(1 << 20, 'x'))).code(), proto::OK);
  EXPECT_EQ(Call("a", Put("kg", "", "v")).code(), proto::INVALID_ARGUMENT);
  EXPECT_EQ(Call("a", Put("bad name", "k", "v")).code(), proto::INVALID_ARGUMENT);
  EXPECT_EQ(Call("a", Get("nope", "k")).code(), proto::NOT_FOUND);
  EXPECT_EQ(Call("a", Create("kg", {"a"})).code(), proto::ALREADY_EXISTS);
  auto unknown = Call("a", Create("kg2", {"a", "zz"}));
  EXPECT_EQ(unknown.code(), proto::INVALID_ARGUMENT);
  EXPECT_NE(unknown.error().find("'zz'"), std::string::npos);
  EXPECT_EQ(Call("a", proto::Request{}).code(), proto::INVALID_ARGUMENT);
}

TEST(ReplicationLimitTest, RaisedValueLimitAcceptsLargerValues) {
  sim::SimCluster cluster(sim::AllPeers({"a", "b"}), 1, milliseconds(1),
                          [](node::NodeOptions& o) { o.max_value_bytes = 4 << 20; });
  ASSERT_EQ(cluster.Call("a", Create("kg", {"a", "b"}))->code(), proto::OK);
  ASSERT_EQ(cluster.Call("a", Put("kg", "big", std::string(3 << 20, 'z')))->code(), proto::OK);
  cluster.sim().RunFor(milliseconds(100));
  EXPECT_EQ(cluster.Call("b", Get("kg", "big"))->get().value().size(), size_t{3} << 20);
}

// ---- Membership, deletion and batching under faults (regressions found in review) ------------

proto::Request AddReplica(const std::string& kg, const std::string& node) {
  proto::Request r;
  r.mutable_add_replica()->set_keygroup(kg);
  r.mutable_add_replica()->set_node(node);
  return r;
}
proto::Request RemoveReplica(const std::string& kg, const std::string& node) {
  proto::Request r;
  r.mutable_remove_replica()->set_keygroup(kg);
  r.mutable_remove_replica()->set_node(node);
  return r;
}
proto::Request DeleteKeygroup(const std::string& kg) {
  proto::Request r;
  r.mutable_delete_keygroup()->set_name(kg);
  return r;
}

TEST_F(ReplicationTest, RemovedReplicaStillDeliversWhatItOwes) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.network().SetCut("a", "b", true);
  ExpectOk("a", Put("kg", "k", "acked"));
  ExpectOk("c", RemoveReplica("kg", "a"));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.network().SetCut("a", "b", false);
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                          seconds(10)));
  EXPECT_EQ(Value("b", "kg", "k"), "acked");
  EXPECT_EQ(Call("a", Get("kg", "k")).served_by(), "b");
}

TEST_F(ReplicationTest, MovingAKeygroupWaitsUntilTheNewReplicaHasTheData) {
  ExpectOk("a", Create("kg", {"a"}));
  for (int i = 0; i < 2000; ++i) {
    ExpectOk("a", Put("kg", "k" + std::to_string(i), std::string(1000, 'x')));
  }
  ExpectOk("a", AddReplica("kg", "c"));
  auto early = Call("a", RemoveReplica("kg", "a"));
  EXPECT_EQ(early.code(), proto::FAILED_PRECONDITION);
  EXPECT_NE(early.error().find("still pulling: c"), std::string::npos) << early.error();
  ASSERT_TRUE(cluster_.sim().RunUntilTrue(
      [&] { return Call("a", RemoveReplica("kg", "a")).code() == proto::OK; }, seconds(30)));
  cluster_.sim().RunFor(seconds(1));
  proto::Request scan;
  scan.mutable_scan()->set_keygroup("kg");
  scan.mutable_scan()->set_limit(100000);
  std::string value(1000, 'x');
  int items = 0;
  std::string from;
  while (true) {  // pages, as the response is capped in bytes
    scan.mutable_scan()->set_start(from);
    auto res = Call("c", scan);
    ASSERT_EQ(res.served_by(), "c");
    items += res.scan().items_size();
    if (!res.scan().more()) break;
    from = res.scan().items(res.scan().items_size() - 1).key() + '\x01';
  }
  EXPECT_EQ(items, 2000);
}

TEST_F(ReplicationTest, DeletionIsFinalAgainstAConcurrentMembershipChange) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ExpectOk("a", Put("kg", "k", "v"));
  cluster_.sim().RunFor(milliseconds(100));
  cluster_.network().SetCut("a", "b", true);
  ExpectOk("a", DeleteKeygroup("kg"));
  ExpectOk("b", AddReplica("kg", "c"));  // later, but a deletion is final
  cluster_.network().SetCut("a", "b", false);
  cluster_.sim().RunFor(seconds(5));
  for (const char* n : {"a", "b", "c"}) {
    EXPECT_EQ(Call(n, Get("kg", "k")).code(), proto::NOT_FOUND) << n;
    EXPECT_FALSE(cluster_.node(n).IsReadyReplica("kg")) << n;
  }
}

TEST_F(ReplicationTest, WritesAndCatalogChangesInOnePollRoundPersistInOrder) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  cluster_.sim().RunFor(milliseconds(100));
  node::Node& a = cluster_.node("a");
  // Three requests handled before one Flush, as the real loop batches a poll round.
  a.Execute(Put("kg", "k", "old"), [](proto::Response&&) {});
  a.Execute(DeleteKeygroup("kg"), [](proto::Response&&) {});
  a.Execute(Create("kg", {"a", "b"}), [](proto::Response&&) {});
  a.Flush();
  cluster_.sim().RunFor(seconds(1));
  cluster_.Crash("a");
  ASSERT_TRUE(cluster_.Restart("a").ok());
  cluster_.sim().RunFor(seconds(5));
  EXPECT_EQ(Value("a", "kg", "k"), "<NOT_FOUND>");
  EXPECT_EQ(Value("b", "kg", "k"), "<NOT_FOUND>");
}

TEST(ReplicationMembershipTest, ReAddedReplicaGetsWritesMadeWhileItWasOut) {
  sim::SimCluster d(sim::AllPeers({"a", "b", "c", "d"}), 1, milliseconds(5));
  auto call = [&](const std::string& n, proto::Request r) {
    return d.Call(n, std::move(r)).value_or(proto::Response{});
  };
  ASSERT_EQ(call("d", Create("kg", {"a", "b", "c"})).code(), proto::OK);
  d.sim().RunFor(milliseconds(100));
  d.network().SetCut("a", "d", true);  // a misses the catalog changes for a while
  d.network().SetCut("a", "b", true);  // and cannot push to b
  ASSERT_EQ(call("d", RemoveReplica("kg", "c")).code(), proto::OK);
  d.sim().RunFor(milliseconds(50));
  ASSERT_EQ(call("a", Put("kg", "k", "acked-at-a")).code(), proto::OK);
  d.sim().RunFor(milliseconds(50));    // c, no replica now, acknowledges and drops it
  d.network().SetCut("a", "c", true);  // c pulls from b, which lacks the write
  ASSERT_EQ(call("d", AddReplica("kg", "c")).code(), proto::OK);
  d.sim().RunFor(seconds(5));
  d.network().SetCut("a", "d", false);
  d.network().SetCut("a", "b", false);
  d.network().SetCut("a", "c", false);
  d.sim().RunFor(seconds(20));
  EXPECT_TRUE(d.node("c").IsReadyReplica("kg"));
  EXPECT_EQ(d.node("a").OutboxSize(), 0u);
  auto gc = call("c", Get("kg", "k"));
  EXPECT_EQ(gc.code(), proto::OK) << gc.error();
  EXPECT_EQ(gc.served_by(), "c");
}

TEST(ReplicationForwardTest, ForwardedSyncWriteIsRunOnceAndItsTimeoutReported) {
  sim::SimCluster c(sim::AllPeers({"a", "b", "c"}), 7, milliseconds(5));
  ASSERT_EQ(c.Call("b", Create("log", {"b", "c"}, proto::SYNC, proto::APPEND_ONLY))->code(),
            proto::OK);
  c.sim().RunFor(seconds(1));
  c.network().SetCut("b", "c", true);  // the replicas cannot confirm to each other
  proto::Request app;
  app.mutable_append()->set_keygroup("log");
  app.mutable_append()->set_value("once");
  auto res = c.Call("a", app);
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->code(), proto::DEADLINE_EXCEEDED) << res->error();
  c.network().SetCut("b", "c", false);
  c.sim().RunFor(seconds(10));
  proto::Request scan;
  scan.mutable_scan()->set_keygroup("log");
  EXPECT_EQ(c.Call("b", scan)->scan().items_size(), 1);
  EXPECT_EQ(c.Call("c", scan)->scan().items_size(), 1);
}

TEST(ReplicationMembershipTest, CatalogOutboxDrainsWhenALowerVersionedDeletionWins) {
  for (int phase = 0; phase < 200; phase += 10) {
    sim::SimCluster c(sim::AllPeers({"a", "b", "c"}), 42, milliseconds(5));
    ASSERT_EQ(c.Call("a", Create("kg", {"a", "b"}))->code(), proto::OK);
    c.sim().RunFor(milliseconds(100));
    c.network().SetCut("a", "b", true);
    ASSERT_EQ(c.Call("a", DeleteKeygroup("kg"))->code(), proto::OK);
    ASSERT_EQ(c.Call("b", AddReplica("kg", "c"))->code(), proto::OK);  // later version
    c.Crash("b");  // b's entry for a (the add) stays in its durable outbox
    c.network().SetCut("a", "b", false);
    c.sim().RunFor(seconds(3) + milliseconds(phase));
    ASSERT_TRUE(c.Restart("b").ok());
    c.sim().RunFor(seconds(10));
    EXPECT_EQ(c.node("b").OutboxSize(), 0u) << "phase " << phase;
    EXPECT_EQ(c.node("a").OutboxSize(), 0u) << "phase " << phase;
  }
}

TEST(ReplicationMembershipTest, DrainedWriteReachesAReplicaAddedWhileTheDrainerWasAway) {
  sim::SimCluster c(sim::AllPeers({"a", "s", "j"}), 42, milliseconds(5));
  ASSERT_EQ(c.Call("a", Create("kg", {"a", "s"}))->code(), proto::OK);
  c.sim().RunFor(milliseconds(100));
  c.network().SetCut("a", "s", true);
  c.network().SetCut("a", "j", true);
  ASSERT_EQ(c.Call("a", Put("kg", "k", "acked-at-a"))->code(), proto::OK);
  ASSERT_EQ(c.Call("s", AddReplica("kg", "j"))->code(), proto::OK);
  ASSERT_TRUE(c.sim().RunUntilTrue([&] { return c.node("j").IsReadyReplica("kg"); }, seconds(30)));
  c.sim().RunFor(seconds(1));
  ASSERT_EQ(c.Call("s", RemoveReplica("kg", "a"))->code(), proto::OK);
  c.network().SetCut("a", "s", false);
  c.network().SetCut("a", "j", false);
  c.sim().RunFor(seconds(20));
  EXPECT_EQ(c.node("a").OutboxSize(), 0u);
  EXPECT_EQ(c.Call("s", Get("kg", "k"))->code(), proto::OK);
  auto at_j = c.Call("j", Get("kg", "k"));
  EXPECT_EQ(at_j->served_by(), "j");
  EXPECT_EQ(at_j->code(), proto::OK) << at_j->error();
}

TEST(ReplicationMembershipTest, ReAddedReplicaThatMissedItsRemovalPullsBeforeServing) {
  sim::SimCluster c(sim::AllPeers({"a", "b", "x"}), 42, milliseconds(5));
  ASSERT_EQ(c.Call("a", Create("kg", {"a", "x"}))->code(), proto::OK);
  c.sim().RunFor(milliseconds(100));
  c.network().SetCut("x", "a", true);
  c.network().SetCut("x", "b", true);
  ASSERT_EQ(c.Call("a", RemoveReplica("kg", "x"))->code(), proto::OK);
  ASSERT_EQ(c.Call("a", Put("kg", "k", "written-while-x-was-out"))->code(), proto::OK);
  auto added = c.Call("a", AddReplica("kg", "x"));
  ASSERT_EQ(added->code(), proto::OK);
  std::string joined_again;
  for (const auto& r : added->keygroup().replicas()) {
    if (r.node() == "x") joined_again = r.joined().SerializeAsString();
  }
  c.sim().RunFor(milliseconds(100));
  c.network().SetCut("x", "a", false);
  c.network().SetCut("x", "b", false);
  // Until x hears of the change it is a partitioned replica and may be stale; once it knows it
  // joined again, it must not serve from its replica before pulling.
  auto knows = [&] {
    std::optional<proto::Response> info;
    proto::Request r;
    r.mutable_keygroup_info()->set_name("kg");
    c.node("x").Execute(r, [&](proto::Response&& res) { info = std::move(res); });
    c.node("x").Flush();
    for (const auto& rep : info->keygroup().replicas()) {
      if (rep.node() == "x") return rep.joined().SerializeAsString() == joined_again;
    }
    return false;
  };
  int checked = 0;
  for (int i = 0; i < 400; ++i) {
    c.sim().RunFor(milliseconds(1));
    if (!knows() || !c.node("x").IsReadyReplica("kg")) continue;
    ++checked;
    std::optional<proto::Response> got;
    c.node("x").Execute(Get("kg", "k"), [&](proto::Response&& r) { got = std::move(r); });
    c.node("x").Flush();
    ASSERT_TRUE(got.has_value());
    ASSERT_EQ(got->code(), proto::OK) << "x served a read as a ready replica without the write";
  }
  EXPECT_GT(checked, 0);  // x did become ready again within the 400 ms
}

TEST(ReplicationMembershipTest, ReadinessMarkDoesNotUndoAnAcknowledgedAddReplica) {
  for (int offset = 0; offset <= 400; offset += 20) {
    sim::SimCluster c(sim::AllPeers({"a", "b", "j", "k"}), 42, milliseconds(50));
    ASSERT_EQ(c.Call("a", Create("kg", {"a", "b"}))->code(), proto::OK);
    c.sim().RunFor(seconds(2));
    c.node("a").Execute(AddReplica("kg", "j"), [](proto::Response&&) {});
    c.node("a").Flush();
    c.sim().RunFor(milliseconds(offset));
    std::optional<proto::Response> res;
    c.node("a").Execute(AddReplica("kg", "k"), [&](proto::Response&& r) { res = std::move(r); });
    c.node("a").Flush();
    ASSERT_TRUE(res && res->code() == proto::OK);
    c.sim().RunFor(seconds(10));
    proto::Request info;
    info.mutable_keygroup_info()->set_name("kg");
    int ready = 0;
    bool has_k = false;
    proto::Response catalog = c.Call("b", info).value();
    for (const auto& r : catalog.keygroup().replicas()) {
      has_k |= r.node() == "k";
      ready += r.ready();
    }
    EXPECT_TRUE(has_k) << "offset " << offset << " ms: add k acknowledged, then lost";
    EXPECT_EQ(ready, 4) << "offset " << offset;
  }
}

TEST(ReplicationMembershipTest, JoinerWithoutAConfiguredSourceDoesNotClaimReadiness) {
  sim::SimCluster c(sim::AllPeers({"a", "b", "j"}), 42, milliseconds(5), [](node::NodeOptions& o) {
    if (o.id == "j") {
      o.peers.clear();
      o.peers.emplace_back().set_id("b");
    }
  });
  ASSERT_EQ(c.Call("a", Create("kg", {"a"}))->code(), proto::OK);
  ASSERT_EQ(c.Call("a", Put("kg", "k", "v"))->code(), proto::OK);
  c.sim().RunFor(seconds(1));
  ASSERT_EQ(c.Call("b", AddReplica("kg", "j"))->code(), proto::OK);
  c.sim().RunFor(seconds(5));
  EXPECT_FALSE(c.node("j").IsReadyReplica("kg"));
  EXPECT_EQ(c.Call("b", RemoveReplica("kg", "a"))->code(), proto::FAILED_PRECONDITION);
}

TEST(ReplicationMembershipTest, SyncWriteStopsWaitingForAReplicaRemovedMeanwhile) {
  sim::SimCluster c(sim::AllPeers({"a", "b", "c"}), 42, milliseconds(5));
  ASSERT_EQ(c.Call("a", Create("kg", {"a", "b", "c"}, proto::SYNC))->code(), proto::OK);
  c.sim().RunFor(milliseconds(100));
  c.network().SetCut("a", "c", true);
  std::optional<proto::Response> res;
  c.node("a").Execute(Put("kg", "k", "v"), [&](proto::Response&& r) { res = std::move(r); });
  c.node("a").Flush();
  c.node("a").Execute(RemoveReplica("kg", "c"), [](proto::Response&&) {});
  c.node("a").Flush();
  c.sim().RunFor(seconds(5));
  ASSERT_TRUE(res.has_value());
  EXPECT_EQ(res->code(), proto::OK) << res->error();
}

TEST(ReplicationDurabilityTest, NoAnswerBeforeTheBatchIsCommitted) {
  sim::SimCluster c(sim::AllPeers({"a"}), 1, milliseconds(1));
  ASSERT_EQ(c.Call("a", Create("kg", {"a"}))->code(), proto::OK);
  std::optional<proto::Response> put, get;
  c.node("a").Execute(Put("kg", "k", "v"), [&](proto::Response&& r) { put = std::move(r); });
  c.node("a").Execute(Get("kg", "k"), [&](proto::Response&& r) { get = std::move(r); });
  // Until the node flushes, nothing is answered: not the write, not a read that would show it.
  EXPECT_FALSE(put.has_value());
  EXPECT_FALSE(get.has_value());
  c.node("a").Flush();
  ASSERT_TRUE(put.has_value() && get.has_value());
  EXPECT_EQ(get->get().value(), "v");
  // The flush that answered also committed: a crash right after it keeps the write.
  c.Crash("a");
  ASSERT_TRUE(c.Restart("a").ok());
  EXPECT_EQ(c.Call("a", Get("kg", "k"))->get().value(), "v");
}

// An acknowledgement's erasure of an outbox entry needs no commit of its own: it rides with the
// next one, or commits alone after Core::kDeferredCommitDelay. Lost in a crash before that, it
// only has the item sent again, which the replica acknowledges and keeps as it was.
TEST(ReplicationDurabilityTest, AnAcknowledgementsErasureWaitsForTheNextCommit) {
  sim::SimCluster c(sim::AllPeers({"a", "b"}), 1, milliseconds(1));
  // What a's storage holds in its outbox, read while a is down.
  auto stored_outbox = [&] {
    c.Crash("a");
    size_t n = 0;
    node::LoadVisitor count;
    count.outbox = [&](node::OutboxRecord&&) { ++n; };
    EXPECT_TRUE(c.Storage("a").Load(count).ok());
    EXPECT_TRUE(c.Restart("a").ok());
    return n;
  };
  ASSERT_EQ(c.Call("a", Create("kg", {"a", "b"}))->code(), proto::OK);
  c.sim().RunFor(seconds(2));
  ASSERT_EQ(stored_outbox(), 0u);
  ASSERT_EQ(c.Call("a", Put("kg", "k", "v1"))->code(), proto::OK);
  ASSERT_TRUE(c.sim().RunUntilTrue([&] { return c.node("a").OutboxSize() == 0; }, seconds(1)));
  uint64_t applied = c.node("b").metrics().replicated_items;
  EXPECT_EQ(stored_outbox(), 1u) << "the erasure committed at once";
  // Restarted, a owes b the item again, sends it, and b, already holding it, only acknowledges.
  EXPECT_EQ(c.node("a").OutboxSize(), 1u);
  ASSERT_TRUE(c.sim().RunUntilTrue([&] { return c.node("a").OutboxSize() == 0; }, seconds(5)));
  EXPECT_EQ(c.Call("b", Get("kg", "k"))->get().value(), "v1");
  EXPECT_EQ(c.node("b").metrics().replicated_items, applied) << "b applied it twice";
  c.sim().RunFor(node::Core::kDeferredCommitDelay);
  EXPECT_EQ(stored_outbox(), 0u) << "the erasure never committed";
}

// The test bed's round-trip measurement (MeasureRttRequest) in virtual time: a node pings the
// peers asked, and answers each one's smallest and median round trip; a crashed peer answers
// none; a bad request is refused, naming what is wrong.
TEST(PeerTableTest, MeasureRttAnswersTheRoundTripsToThePeersAsked) {
  sim::SimCluster c(sim::AllPeers({"a", "b", "c"}), 5, milliseconds(5));
  c.network().SetLink("a", "c", {.delay = milliseconds(20)});
  c.sim().RunFor(seconds(1));
  auto measure = [&](std::vector<std::string> peers, uint32_t probes) {
    proto::Request r;
    for (const auto& p : peers) r.mutable_measure_rtt()->add_peers(p);
    r.mutable_measure_rtt()->set_probes(probes);
    return c.Call("a", std::move(r), seconds(5));
  };
  auto answer = measure({"c", "b"}, 10);
  ASSERT_TRUE(answer.has_value());
  ASSERT_EQ(answer->code(), proto::OK) << answer->error();
  ASSERT_EQ(answer->rtts().peers_size(), 2);
  const proto::PeerRtt& to_c = answer->rtts().peers(0);
  const proto::PeerRtt& to_b = answer->rtts().peers(1);
  EXPECT_EQ(to_c.node(), "c");
  EXPECT_EQ(to_b.node(), "b");
  EXPECT_GE(to_c.answered(), 10u);
  EXPECT_GE(to_b.answered(), 10u);
  // a -> c 20 ms, c -> a 5 ms; a <-> b 5 ms each way.
  EXPECT_NEAR(to_c.min_ms(), 25, 0.5);
  EXPECT_NEAR(to_c.median_ms(), 25, 0.5);
  EXPECT_NEAR(to_b.min_ms(), 10, 0.5);

  c.Crash("b");
  answer = measure({"b"}, 3);
  ASSERT_TRUE(answer.has_value());
  ASSERT_EQ(answer->code(), proto::OK) << answer->error();
  EXPECT_EQ(answer->rtts().peers(0).answered(), 0u);

  for (const auto& [peers, probes, error] :
       std::vector<std::tuple<std::vector<std::string>, uint32_t, std::string>>{
           {{"c"}, 0, "probes must be 1 to 100, not 0"},
           {{"c"}, 101, "probes must be 1 to 100, not 101"},
           {{}, 5, "measure_rtt names no peer"},
           {{"x"}, 5, "'x' is not a peer of node a"},
           {{"c", "c"}, 5, "measure_rtt names peer c twice"}}) {
    answer = measure(peers, probes);
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->code(), proto::INVALID_ARGUMENT);
    EXPECT_NE(answer->error().find(error), std::string::npos) << answer->error();
  }
}

// Membership in virtual time: d, a node nobody knows, joins through a; the others learn it by
// gossip, it gets a replica and serves it; a crash and restart of a keeps it a member (from
// storage); d leaves through b, is removed from the replica set and forgotten, and learns it left.
TEST(MembershipTest, AJoinSpreadsByGossipSurvivesARestartAndALeaveIsForgotten) {
  sim::SimCluster c({{"a", {"b", "c"}}, {"b", {"a", "c"}}, {"c", {"a", "b"}}, {"d", {}}}, 11,
                    milliseconds(5));
  auto peers = [&](const std::string& id) {
    proto::NodeStatus s;
    c.node(id).StatusReport(s);
    std::string out;
    for (const auto& p : s.peers()) out += (out.empty() ? "" : " ") + p.node();
    return out;
  };
  ASSERT_EQ(c.Call("a", Create("kg", {"a", "b"}))->code(), proto::OK);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.Call("a", Put("kg", "k" + std::to_string(i), "v"))->code(), proto::OK);
  }
  // What d's host does with --join: the join request, then the answer merged into d.
  proto::Request join;
  *join.mutable_join()->mutable_member() = c.node("d").OwnEntry();
  auto joined = c.Call("a", join);
  ASSERT_EQ(joined->code(), proto::OK) << joined->error();
  c.node("d").OnJoined(joined->members());
  c.sim().RunFor(seconds(2));
  EXPECT_EQ(peers("a"), "b c d");
  EXPECT_EQ(peers("b"), "a c d");
  EXPECT_EQ(peers("c"), "a b d");
  EXPECT_EQ(peers("d"), "a b c");
  ASSERT_EQ(c.Call("c",
                   [] {
                     proto::Request r;
                     r.mutable_add_replica()->set_keygroup("kg");
                     r.mutable_add_replica()->set_node("d");
                     return r;
                   }())
                ->code(),
            proto::OK);
  c.sim().RunFor(seconds(2));
  auto got = c.Call("d", Get("kg", "k19"));
  EXPECT_EQ(got->code(), proto::OK) << got->error();
  EXPECT_EQ(got->served_by(), "d");
  // a restarts: d is a member from a's storage.
  c.Crash("a");
  ASSERT_TRUE(c.Restart("a").ok());
  c.sim().RunFor(seconds(2));
  EXPECT_EQ(peers("a"), "b c d");
  // d, cut off from the others, takes a write: it may not leave while it owes it to them.
  for (const auto& n : {"a", "b", "c"}) c.network().SetCut("d", n, true);
  ASSERT_EQ(c.Call("d", Put("kg", "late", "x"))->code(), proto::OK);
  proto::Request leave_self;
  leave_self.mutable_leave();
  auto owed = c.Call("d", leave_self);
  EXPECT_EQ(owed->code(), proto::FAILED_PRECONDITION) << owed->error();
  EXPECT_NE(owed->error().find("still owes its peers"), std::string::npos) << owed->error();
  for (const auto& n : {"a", "b", "c"}) c.network().SetCut("d", n, false);
  c.sim().RunFor(seconds(3));
  EXPECT_EQ(c.Call("b", Get("kg", "late"))->code(), proto::OK);
  // d leaves through b.
  proto::Request leave;
  leave.mutable_leave()->set_node("d");
  auto left = c.Call("b", leave);
  ASSERT_EQ(left->code(), proto::OK) << left->error();
  c.sim().RunFor(seconds(3));
  EXPECT_EQ(peers("a"), "b c");
  EXPECT_EQ(peers("b"), "a c");
  EXPECT_EQ(peers("c"), "a b");
  EXPECT_EQ(peers("d"), "");
  EXPECT_TRUE(c.node("d").HasLeft());
  // It serves nothing any more but its status.
  auto refused_get = c.Call("d", Get("kg", "k1"));
  EXPECT_EQ(refused_get->code(), proto::FAILED_PRECONDITION) << refused_get->error();
  proto::Request info;
  info.mutable_keygroup_info()->set_name("kg");
  auto kg = c.Call("a", info);
  ASSERT_EQ(kg->code(), proto::OK);
  EXPECT_EQ(kg->keygroup().replicas_size(), 2);
  // Leaving again, or a node that does not exist, is refused with what is wrong.
  auto again = c.Call("a", leave);
  EXPECT_EQ(again->code(), proto::NOT_FOUND) << again->error();
  proto::Request last;
  last.mutable_leave()->set_node("a");
  ASSERT_EQ(c.Call("a", Create("only-a", {"a"}))->code(), proto::OK);
  auto refused = c.Call("b", last);
  EXPECT_EQ(refused->code(), proto::FAILED_PRECONDITION);
  EXPECT_NE(refused->error().find("holds the only replica of 'only-a'"), std::string::npos)
      << refused->error();
}

}  // namespace
}  // namespace enoki
