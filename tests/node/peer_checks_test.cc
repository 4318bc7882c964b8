// What a peer sends is checked like a client's request: forged or broken peer messages, delivered
// to a node as its transport would, change nothing. Nodes on the simulator (virtual time).
#include <gtest/gtest.h>

#include <limits>

#include "node/peer_checks.h"
#include "node/version.h"
#include "sim/cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kYearUs = int64_t{365} * 24 * 3600 * 1000000;

proto::Request Put(const std::string& key, const std::string& value) {
  proto::Request r;
  r.mutable_put()->set_keygroup("kg");
  r.mutable_put()->set_key(key);
  r.mutable_put()->set_value(value);
  return r;
}
proto::Request Get(const std::string& key) {
  proto::Request r;
  r.mutable_get()->set_keygroup("kg");
  r.mutable_get()->set_key(key);
  return r;
}
proto::Request Info(const std::string& keygroup) {
  proto::Request r;
  r.mutable_keygroup_info()->set_name(keygroup);
  return r;
}

class PeerChecksTest : public ::testing::Test {
 protected:
  PeerChecksTest() : cluster_(sim::AllPeers({"a", "b"}), 7, milliseconds(5)) {
    proto::Request create;
    create.mutable_create_keygroup()->set_name("kg");
    create.mutable_create_keygroup()->add_replicas("a");
    create.mutable_create_keygroup()->add_replicas("b");
    EXPECT_EQ(Call("a", create).code(), proto::OK);
    cluster_.sim().RunFor(milliseconds(100));
  }
  proto::Response Call(const std::string& node, proto::Request r) {
    auto res = cluster_.Call(node, std::move(r));
    EXPECT_TRUE(res.has_value()) << "no answer from " << node;
    return res.value_or(proto::Response{});
  }
  // A Replicate of kg's key `key` as node a would send it, at wall time `wall_us`.
  proto::PeerMessage ForgedReplicate(const std::string& key, const std::string& value,
                                     int64_t wall_us, uint32_t logical = 0) {
    auto meta = Call("b", Info("kg")).keygroup();
    proto::PeerMessage msg;
    msg.set_from("a");
    auto* r = msg.mutable_replicate();
    r->set_keygroup("kg");
    *r->mutable_incarnation() = meta.created();
    *r->mutable_meta_version() = meta.version();
    auto* item = r->add_items();
    item->set_key(key);
    item->set_value(value);
    item->mutable_version()->set_wall_us(wall_us);
    item->mutable_version()->set_logical(logical);
    item->mutable_version()->set_node("a");
    return msg;
  }

  sim::SimCluster cluster_;
};

TEST_F(PeerChecksTest, AFarFutureVersionIsRefusedAndLaterWritesStand) {
  int64_t now = cluster_.sim().WallMicros();
  cluster_.node("b").OnPeerMessage(ForgedReplicate("k", "forged", now + kYearUs));
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Call("b", Get("k")).code(), proto::NOT_FOUND);

  ASSERT_EQ(Call("a", Put("k", "v2")).code(), proto::OK);
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Call("b", Get("k")).get().value(), "v2");
  // b's clock was not dragged along: its own write gets a version of about now.
  auto put = Call("b", Put("other", "x"));
  ASSERT_EQ(put.code(), proto::OK) << put.error();
  EXPECT_LT(put.write().version().wall_us(), cluster_.sim().WallMicros() + 1000000);
}

TEST_F(PeerChecksTest, AVersionWithinTheAllowedLeadIsApplied) {
  // The same message, 1 s ahead (clocks of real machines differ a little): taken.
  int64_t now = cluster_.sim().WallMicros();
  cluster_.node("b").OnPeerMessage(ForgedReplicate("k", "from a", now + 1000000));
  cluster_.sim().RunFor(milliseconds(100));
  EXPECT_EQ(Call("b", Get("k")).get().value(), "from a");
}

// The clock's wrap (issue 18): b's clock pushed, by a version of a's within the allowed lead, to
// a full 32-bit logical part; three acknowledged puts of one key later, both replicas hold the
// last (before the carry, the second and third got logicals 4294967295 and 0, and were lost).
TEST_F(PeerChecksTest, WritesAcrossTheClocksWrapAreNotLost) {
  int64_t ahead = cluster_.sim().WallMicros() + 10000000;
  cluster_.node("b").OnPeerMessage(
      ForgedReplicate("other", "pushed", ahead, std::numeric_limits<uint32_t>::max() - 1));
  cluster_.sim().RunFor(milliseconds(100));
  std::vector<node::Version> versions;
  for (const char* value : {"v1", "v2", "v3"}) {
    auto put = Call("b", Put("k", value));
    ASSERT_EQ(put.code(), proto::OK) << put.error();
    versions.push_back(node::Version::FromProto(put.write().version()));
  }
  EXPECT_LT(versions[0], versions[1]);
  EXPECT_LT(versions[1], versions[2]);
  cluster_.sim().RunFor(milliseconds(200));
  for (const char* n : {"a", "b"}) EXPECT_EQ(Call(n, Get("k")).get().value(), "v3") << n;
}

TEST_F(PeerChecksTest, CatalogEntriesWithBadNamesOrNoReplicaAreRefused) {
  auto meta = Call("b", Info("kg")).keygroup();
  for (std::string name : {std::string(), std::string("../../x"), std::string(100000, 'n')}) {
    proto::PeerMessage msg;
    msg.set_from("a");
    *msg.mutable_meta_update()->mutable_meta() = meta;
    msg.mutable_meta_update()->mutable_meta()->set_name(name);
    cluster_.node("b").OnPeerMessage(std::move(msg));
  }
  proto::PeerMessage empty;
  empty.set_from("a");
  *empty.mutable_meta_update()->mutable_meta() = meta;
  empty.mutable_meta_update()->mutable_meta()->set_name("noreplica");
  empty.mutable_meta_update()->mutable_meta()->clear_replicas();
  cluster_.node("b").OnPeerMessage(std::move(empty));
  cluster_.sim().RunFor(milliseconds(100));
  for (std::string name :
       {std::string("../../x"), std::string(100000, 'n'), std::string("noreplica")}) {
    EXPECT_EQ(Call("b", Info(name)).code(), proto::NOT_FOUND) << name.substr(0, 20);
  }
  // The real entry is untouched and b still works.
  EXPECT_EQ(Call("b", Info("kg")).code(), proto::OK);
  EXPECT_EQ(Call("b", Put("k", "v")).code(), proto::OK);
}

TEST_F(PeerChecksTest, APongFromTheFutureOrOfAHugeNonceMovesNoRoundTrip) {
  cluster_.sim().RunFor(milliseconds(2000));  // pings measured the 10 ms round trip
  auto rtt_of_a = [&] {
    proto::NodeStatus status;
    cluster_.node("b").StatusReport(status);
    for (const auto& p : status.peers()) {
      if (p.node() == "a") return p.rtt_ms();
    }
    return -2.0;
  };
  double before = rtt_of_a();
  EXPECT_NEAR(before, 10, 1);
  auto now = static_cast<uint64_t>(cluster_.sim().Now().time_since_epoch().count());
  for (uint64_t nonce : {(uint64_t{1} << 63) + 5, ~uint64_t{0}, now + 10000000000}) {
    proto::PeerMessage pong;
    pong.set_from("a");
    pong.mutable_pong()->set_nonce(nonce);
    cluster_.node("b").OnPeerMessage(std::move(pong));
  }
  EXPECT_EQ(rtt_of_a(), before);
}

// Found by the node's fuzzer (tests/fuzz/): b learns of a new member d (and owes it the
// catalog), then that b itself left. A node that left keeps what it owes in its outbox and sends
// to nobody; its replication retry tick looked its peers up in the peer table, which no longer
// held them, and threw std::out_of_range: the node aborted.
TEST_F(PeerChecksTest, ANodeThatLeftWithWhatItOwesKeepsRunning) {
  int64_t now = cluster_.sim().WallMicros();
  auto members = [&](bool b_left) {
    proto::PeerMessage msg;
    msg.set_from("a");
    for (const char* id : {"a", "b", "d"}) {
      auto* m = msg.mutable_members()->add_members();
      m->set_id(id);
      if (std::string(id) == "d") {
        m->set_endpoint("tcp://127.0.0.1:7004");
        m->set_version(now);
      }
      if (std::string(id) == "b" && b_left) {
        m->set_left(true);
        m->set_version(now + 1);
      }
    }
    return msg;
  };
  cluster_.node("b").OnPeerMessage(members(false));
  cluster_.sim().RunFor(milliseconds(10));
  cluster_.node("b").OnPeerMessage(members(true));
  cluster_.sim().RunFor(std::chrono::seconds(60));
  // Still up, and saying why it serves nothing.
  auto info = Call("b", Info("kg"));
  EXPECT_EQ(info.code(), proto::FAILED_PRECONDITION);
  EXPECT_NE(info.error().find("left"), std::string::npos) << info.error();
}

TEST(CheckPeerMessageTest, NamesTheMessageAndTheField) {
  node::PeerCheckLimits limits{/*max_value_bytes=*/16, /*latest_wall_us=*/1000000};
  proto::PeerMessage msg;
  msg.set_from("a");
  auto* r = msg.mutable_replicate();
  r->set_keygroup("kg");
  auto* item = r->add_items();
  item->set_key("k");
  item->set_value(std::string(17, 'v'));
  core::Status st = node::CheckPeerMessage(msg, limits);
  EXPECT_EQ(st.code(), core::Code::kTooLarge);
  EXPECT_EQ(st.message(),
            "replicate from 'a': item 0: value is 17 bytes, the limit is 16 (raise it with "
            "--max-value-size)");

  item->set_value("v");
  item->set_key(std::string("a\x01", 2));
  EXPECT_EQ(node::CheckPeerMessage(msg, limits).message(),
            "replicate from 'a': item 0: key holds a control character");

  item->set_key("k");
  item->mutable_version()->set_wall_us(3000000);
  EXPECT_EQ(node::CheckPeerMessage(msg, limits).message(),
            "replicate from 'a': item 0 version is 2000 ms further ahead of this node's clock "
            "than allowed (--max-clock-ahead)");

  item->mutable_version()->set_wall_us(1000000);
  EXPECT_TRUE(node::CheckPeerMessage(msg, limits).ok());

  // The names of an acknowledgement's entries and of a replica's join carry their index or node.
  proto::PeerMessage ack;
  ack.set_from("a");
  ack.mutable_replicate_ack()->set_keygroup("kg");
  ack.mutable_replicate_ack()->add_applied()->set_key("k");
  auto* applied = ack.mutable_replicate_ack()->add_applied();
  applied->set_key("k2");
  applied->mutable_version()->set_wall_us(-5);
  EXPECT_EQ(node::CheckPeerMessage(ack, limits).message(),
            "replicate_ack from 'a': applied 1 version has a negative time (-5 us)");

  proto::PeerMessage joined;
  joined.set_from("a");
  auto* late = joined.mutable_meta_update()->mutable_meta();
  late->set_name("kg");
  late->add_replicas()->set_node("b");
  late->add_replicas()->set_node("c");
  late->mutable_replicas(1)->mutable_joined()->set_wall_us(3000000);
  EXPECT_EQ(node::CheckPeerMessage(joined, limits).message(),
            "meta_update from 'a': replica 'c' joined is 2000 ms further ahead of this node's "
            "clock than allowed (--max-clock-ahead)");

  proto::PeerMessage dup;
  dup.set_from("a");
  auto* meta = dup.mutable_meta_update()->mutable_meta();
  meta->set_name("kg");
  meta->add_replicas()->set_node("b");
  meta->add_replicas()->set_node("b");
  EXPECT_EQ(node::CheckPeerMessage(dup, limits).message(),
            "meta_update from 'a': replica 'b' is listed twice");

  // A catalog exchange's entries are checked one by one, as a MetaUpdate's, and bounded.
  proto::PeerMessage entries;
  entries.set_from("a");
  auto* good = entries.mutable_catalog_entries()->add_entries();
  good->set_name("kg");
  good->add_replicas()->set_node("b");
  EXPECT_TRUE(node::CheckPeerMessage(entries, limits).ok());
  *entries.mutable_catalog_entries()->add_entries() = *meta;  // b listed twice
  EXPECT_EQ(node::CheckPeerMessage(entries, limits).message(),
            "catalog_entries from 'a': replica 'b' is listed twice");
  entries.mutable_catalog_entries()->mutable_entries()->RemoveLast();
  for (size_t i = 1; i <= node::kMaxListedEntries; ++i) {
    *entries.mutable_catalog_entries()->add_entries() = *good;
  }
  EXPECT_EQ(node::CheckPeerMessage(entries, limits).message(),
            "catalog_entries from 'a': more than 2048 entries");
}

}  // namespace
}  // namespace enoki
