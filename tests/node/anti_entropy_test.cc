// Anti-entropy on the simulator: replicas that lost data (a database deleted or missing writes
// while the node was down) get it back from their peers, in both directions, without a restart
// of anyone else; replicas that agree exchange digests and nothing more.
#include <gtest/gtest.h>

#include "node/anti_entropy.h"
#include "sim/cluster.h"
#include "tests/node/requests.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using testing::Create;
using testing::Get;
using testing::Put;

class AntiEntropyTest : public ::testing::Test {
 protected:
  AntiEntropyTest()
      : cluster_(sim::AllPeers({"a", "b", "c"}), 7, milliseconds(5),
                 [](node::NodeOptions& o) { o.anti_entropy_interval = seconds(2); }) {}

  proto::Response Call(const std::string& node, proto::Request r) {
    auto res = cluster_.Call(node, std::move(r));
    EXPECT_TRUE(res.has_value()) << "no answer from " << node;
    return res.value_or(proto::Response{});
  }
  void ExpectOk(const std::string& node, proto::Request r) {
    auto res = Call(node, std::move(r));
    EXPECT_EQ(res.code(), proto::OK) << res.error();
  }
  // How many of keys k0..k<n-1> of "kg" node `node` serves with their value v<i>.
  int Held(const std::string& node, int n) {
    int held = 0;
    for (int i = 0; i < n; ++i) {
      auto res = Call(node, Get("kg", "k" + std::to_string(i)));
      held += res.code() == proto::OK && res.get().value() == "v" + std::to_string(i);
    }
    return held;
  }
  // Writes k0..k<n-1> at a, replicated everywhere.
  void Fill(int n) {
    ExpectOk("a", Create("kg", {"a", "b", "c"}));
    for (int i = 0; i < n; ++i) {
      ExpectOk("a", Put("kg", "k" + std::to_string(i), "v" + std::to_string(i)));
    }
    ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                            seconds(10)));
  }
  uint64_t Sent(const std::string& node) { return cluster_.node(node).metrics().repair_items_sent; }

  sim::SimCluster cluster_;
};

TEST_F(AntiEntropyTest, AReplicaThatLostItsDatabaseGetsTheKeygroupAndEveryItemBack) {
  Fill(3000);
  cluster_.Crash("c");
  cluster_.LoseStorage("c");
  ASSERT_TRUE(cluster_.Restart("c").ok());
  EXPECT_EQ(Call("c", Get("kg", "k1")).code(), proto::NOT_FOUND);  // no keygroup there
  // The catalog entry in one exchange, the items in the next (several replies: 3000 items are
  // listed 4096 at most, in whole buckets).
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return Held("c", 3000) == 3000; }, seconds(20)));
  EXPECT_TRUE(cluster_.node("c").IsReadyReplica("kg"));
  EXPECT_GE(cluster_.node("c").metrics().repaired_items, 3000u);
}

TEST_F(AntiEntropyTest, ReplicasMissingDifferentItemsRepairEachOtherBothWays) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  cluster_.sim().RunFor(milliseconds(100));
  for (std::string id : {"a", "b"}) cluster_.Crash(id);
  // Each kept half of what both should hold: odd keys at a, even ones at b, at the same versions.
  for (std::string id : {"a", "b"}) {
    node::WriteBatch batch;
    for (int i = (id == "a" ? 1 : 0); i < 400; i += 2) {
      batch.PutItem(
          "kg", "k" + std::to_string(i),
          node::StoredItem{"v" + std::to_string(i), node::Version{1000 + i, 0, "a"}, false});
    }
    ASSERT_TRUE(cluster_.Storage(id).Commit(batch).ok());
  }
  for (std::string id : {"a", "b"}) ASSERT_TRUE(cluster_.Restart(id).ok());
  EXPECT_EQ(Call("a", Get("kg", "k0")).code(), proto::NOT_FOUND);
  EXPECT_EQ(Call("b", Get("kg", "k1")).code(), proto::NOT_FOUND);
  ASSERT_TRUE(cluster_.sim().RunUntilTrue(
      [&] { return Held("a", 400) == 400 && Held("b", 400) == 400; }, seconds(20)));
  // One exchange sent each its half; the next, the other way, found nothing to send.
  EXPECT_EQ(Sent("a") + Sent("b"), 400u);
}

TEST_F(AntiEntropyTest, ANewerVersionWinsAndReplicasInAgreementSendNoItems) {
  Fill(100);
  cluster_.Crash("b");
  node::WriteBatch older;  // b lost the last write of k5
  older.PutItem("kg", "k5", node::StoredItem{"old", node::Version{1, 0, "a"}, false});
  ASSERT_TRUE(cluster_.Storage("b").Commit(older).ok());
  ASSERT_TRUE(cluster_.Restart("b").ok());
  EXPECT_EQ(Call("b", Get("kg", "k5")).get().value(), "old");
  ASSERT_TRUE(cluster_.sim().RunUntilTrue(
      [&] { return Call("b", Get("kg", "k5")).get().value() == "v5"; }, seconds(10)));
  cluster_.sim().RunFor(seconds(3));
  uint64_t sent = Sent("a") + Sent("b") + Sent("c");
  uint64_t exchanges = cluster_.node("a").metrics().digest_exchanges;
  cluster_.sim().RunFor(seconds(20));
  EXPECT_GT(cluster_.node("a").metrics().digest_exchanges, exchanges);
  EXPECT_EQ(Sent("a") + Sent("b") + Sent("c"), sent);
  EXPECT_EQ(Held("b", 100), 100);
}

proto::Request Info(const std::string& kg) {
  proto::Request r;
  r.mutable_keygroup_info()->set_name(kg);
  return r;
}

proto::Request DeleteKeygroup(const std::string& kg) {
  proto::Request r;
  r.mutable_delete_keygroup()->set_name(kg);
  return r;
}

TEST_F(AntiEntropyTest, ANodeThatLostItsDatabaseGetsBackEntriesOfKeygroupsItDoesNotReplicate) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ExpectOk("a", Put("kg", "k", "v"));
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                          seconds(10)));
  EXPECT_EQ(Call("c", Get("kg", "k")).get().value(), "v");  // forwarded to a replica
  cluster_.Crash("c");
  cluster_.LoseStorage("c");
  ASSERT_TRUE(cluster_.Restart("c").ok());
  auto lost = Call("c", Get("kg", "k"));
  EXPECT_EQ(lost.code(), proto::NOT_FOUND) << "c knows nothing of kg yet";
  // Within a few intervals (2 s; the first after 1 to 3 s), c knows kg again and forwards.
  ASSERT_TRUE(cluster_.sim().RunUntilTrue(
      [&] {
        auto res = Call("c", Get("kg", "k"));
        return res.code() == proto::OK && res.get().value() == "v";
      },
      seconds(8)));
  EXPECT_FALSE(cluster_.node("c").IsReadyReplica("kg"));
  EXPECT_GE(cluster_.node("a").metrics().catalog_entries_sent +
                cluster_.node("b").metrics().catalog_entries_sent,
            1u);
}

TEST_F(AntiEntropyTest, CatalogsInAgreementExchangeOnlyTheDigestPair) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ExpectOk("b", Create("other", {"c"}));
  cluster_.sim().RunFor(seconds(10));
  auto count = [&](uint64_t node::NodeMetrics::*counter) {
    uint64_t n = 0;
    for (std::string id : {"a", "b", "c"}) n += cluster_.node(id).metrics().*counter;
    return n;
  };
  uint64_t exchanges = count(&node::NodeMetrics::catalog_exchanges);
  uint64_t lists = count(&node::NodeMetrics::catalog_lists_sent);
  uint64_t entries = count(&node::NodeMetrics::catalog_entries_sent);
  cluster_.sim().RunFor(seconds(20));
  // One exchange per node and interval (10 intervals of 2 s): a digest and its answer `agree`.
  EXPECT_NEAR(static_cast<double>(count(&node::NodeMetrics::catalog_exchanges) - exchanges), 30, 3);
  EXPECT_EQ(count(&node::NodeMetrics::catalog_lists_sent), lists);
  EXPECT_EQ(count(&node::NodeMetrics::catalog_entries_sent), entries);
}

TEST_F(AntiEntropyTest, ADeletionThatANodeMissedSpreadsToItAndIsNotUndone) {
  ExpectOk("a", Create("kg", {"a", "b"}));
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 0; },
                                          seconds(10)));
  cluster_.Crash("c");
  ExpectOk("a", DeleteKeygroup("kg"));
  // b acknowledged it; c, down, did not.
  ASSERT_TRUE(cluster_.sim().RunUntilTrue([&] { return cluster_.node("a").OutboxSize() == 1; },
                                          seconds(10)));
  // The erasure of b's entry commits within the deferred commit's delay.
  cluster_.sim().RunFor(node::Core::kDeferredCommitDelay);
  // a forgets that it owes c the deletion (an outbox lost with a's write-ahead log): only the
  // catalog's exchange can tell c now.
  cluster_.Crash("a");
  node::WriteBatch forget;
  forget.EraseOutbox("c", "kg", "");
  ASSERT_TRUE(cluster_.Storage("a").Commit(forget).ok());
  ASSERT_TRUE(cluster_.Restart("a").ok());
  ASSERT_TRUE(cluster_.Restart("c").ok());
  EXPECT_EQ(cluster_.node("a").OutboxSize(), 0u);
  EXPECT_EQ(Call("c", Info("kg")).code(), proto::OK) << "c still holds kg";
  ASSERT_TRUE(cluster_.sim().RunUntilTrue(
      [&] { return Call("c", Info("kg")).code() == proto::NOT_FOUND; }, seconds(8)));
  cluster_.sim().RunFor(seconds(10));
  for (std::string id : {"a", "b", "c"}) {
    EXPECT_EQ(Call(id, Info("kg")).code(), proto::NOT_FOUND) << id;
  }
  // c never offered its older entry: it knew the deletion wins.
  EXPECT_EQ(cluster_.node("c").metrics().catalog_entries_sent, 0u);
}

TEST_F(AntiEntropyTest, ManyEntriesSpreadInBoundedPages) {
  // a alone holds 5000 entries (written to its storage while it was down; nobody is owed them):
  // more than a list or a round of entries carries (kMaxListedEntries).
  constexpr int kEntries = 5000;
  cluster_.sim().RunFor(seconds(1));  // the members are known and kept
  cluster_.Crash("a");
  node::WriteBatch batch;
  for (int i = 0; i < kEntries; ++i) {
    node::KeygroupRecord rec;
    char name[16];
    std::snprintf(name, sizeof name, "kg%05d", i);
    rec.meta.set_name(name);
    node::Version v{1'000'000 + i, 0, "a"};
    v.ToProto(rec.meta.mutable_created());
    v.ToProto(rec.meta.mutable_version());
    auto* r = rec.meta.add_replicas();
    r->set_node("a");
    v.ToProto(r->mutable_joined());
    r->set_ready(true);
    rec.ready = true;
    batch.PutKeygroup(std::move(rec));
  }
  ASSERT_TRUE(cluster_.Storage("a").Commit(batch).ok());
  ASSERT_TRUE(cluster_.Restart("a").ok());
  ASSERT_EQ(cluster_.node("a").OutboxSize(), 0u);
  auto known = [&](const std::string& id) {
    proto::KeygroupList list;
    cluster_.node(id).ListKeygroups(list);
    return list.keygroups_size();
  };
  uint64_t events = cluster_.sim().events();
  for (int i = 0; i < 40 && (known("b") < kEntries || known("c") < kEntries); ++i) {
    cluster_.sim().RunFor(milliseconds(500));
  }
  ASSERT_EQ(known("b"), kEntries);
  ASSERT_EQ(known("c"), kEntries);
  // Many entries to a message (CatalogEntries): fewer simulated events in all than entries sent,
  // where one message per entry and its acknowledgement made four per entry and receiver.
  EXPECT_LT(cluster_.sim().events() - events, static_cast<uint64_t>(kEntries));
  EXPECT_EQ(Call("c", Info("kg04999")).code(), proto::OK);
  // Each entry went to each of b and c about once (their own exchanges and a's may overlap).
  uint64_t sent = cluster_.node("a").metrics().catalog_entries_sent;
  EXPECT_GE(sent, 2u * kEntries);
  EXPECT_LE(sent, 4u * kEntries);
  // Then they agree: nothing more is listed or sent.
  cluster_.sim().RunFor(seconds(5));
  uint64_t lists = cluster_.node("a").metrics().catalog_lists_sent +
                   cluster_.node("b").metrics().catalog_lists_sent +
                   cluster_.node("c").metrics().catalog_lists_sent;
  sent = cluster_.node("a").metrics().catalog_entries_sent;
  cluster_.sim().RunFor(seconds(10));
  EXPECT_EQ(cluster_.node("a").metrics().catalog_lists_sent +
                cluster_.node("b").metrics().catalog_lists_sent +
                cluster_.node("c").metrics().catalog_lists_sent,
            lists);
  EXPECT_EQ(cluster_.node("a").metrics().catalog_entries_sent, sent);
}

TEST(AntiEntropyDigestTest, BucketsAndHashesAreFixed) {
  // The same on every host and in every version, as replicas built apart compare them: these
  // values change only with a change of the protocol.
  EXPECT_EQ(node::DigestBucket("k1"), 710u);
  EXPECT_EQ(node::DigestBucket("anything"), 819u);
  node::StoredItem item{"v", node::Version{1700000000000000, 3, "a"}, false};
  uint64_t h = node::DigestHash("k1", item);
  EXPECT_EQ(h, 0x61c3c60049b656b8ull);
  node::StoredItem other_value = item;  // values are not in the digest (the checksums' part)
  other_value.value = "w";
  EXPECT_EQ(node::DigestHash("k1", other_value), h);
  node::StoredItem tombstone = item;
  tombstone.deleted = true;
  EXPECT_NE(node::DigestHash("k1", tombstone), h);
  node::StoredItem later = item;
  later.version.logical = 4;
  EXPECT_NE(node::DigestHash("k1", later), h);
  EXPECT_NE(node::DigestHash("k2", item), h);
}

TEST(AntiEntropyDigestTest, CatalogEntryHashesAreFixed) {
  // Like the items' hashes: compared between nodes built apart, so fixed.
  proto::Version created, version;
  node::Version{1700000000000000, 0, "a"}.ToProto(&created);
  node::Version{1700000000000500, 1, "b"}.ToProto(&version);
  uint64_t h = node::CatalogEntryHash("kg", created, version, false);
  EXPECT_EQ(h, 0xc2da8cf55703ab34ull);
  EXPECT_NE(node::CatalogEntryHash("kg", created, version, true), h);
  EXPECT_NE(node::CatalogEntryHash("kh", created, version, false), h);
  EXPECT_NE(node::CatalogEntryHash("kg", version, version, false), h);
  EXPECT_NE(node::CatalogEntryHash("kg", created, created, false), h);
}

}  // namespace
}  // namespace enoki
