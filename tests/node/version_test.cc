// The hybrid logical clock's properties, on the simulator's virtual clock: its timestamps never
// go back, never fall behind the wall clock, and stay ordered where the 32-bit logical part would
// wrap; and a cluster whose clock was pushed to that point keeps every acknowledged write.
#include <gtest/gtest.h>

#include <limits>

#include "node/version.h"
#include "sim/cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
constexpr uint32_t kMaxLogical = std::numeric_limits<uint32_t>::max();

TEST(HybridClockTest, MonotonicNeverBehindTheWallClockAndOrderedAcrossTheWrap) {
  sim::Simulator sim(1);
  node::HybridClock clock(sim, "a");
  node::Version last = clock.Now();
  // While the wall clock stands still, and while it moves.
  for (int i = 0; i < 1000; ++i) {
    if (i % 100 == 0) sim.RunFor(std::chrono::microseconds(7));
    node::Version v = clock.Now();
    EXPECT_LT(last, v);
    EXPECT_GE(v.wall_us, sim.WallMicros());
    last = v;
  }
  // A timestamp seen 1 s ahead whose logical part is nearly full: the next ones carry.
  int64_t ahead = sim.WallMicros() + 1000000;
  clock.Observe({ahead, kMaxLogical - 2, "b"});
  std::vector<node::Version> seen;
  for (int i = 0; i < 5; ++i) seen.push_back(clock.Now());
  EXPECT_EQ(seen[0].wall_us, ahead);
  EXPECT_EQ(seen[0].logical, kMaxLogical - 1);
  EXPECT_EQ(seen[1].logical, kMaxLogical);
  EXPECT_EQ(seen[2].wall_us, ahead + 1);
  EXPECT_EQ(seen[2].logical, 0u);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]) << i;
  // Once the wall clock passes the carried time, timestamps follow it again.
  sim.RunFor(std::chrono::seconds(2));
  node::Version later = clock.Now();
  EXPECT_EQ(later.wall_us, sim.WallMicros());
  EXPECT_EQ(later.logical, 0u);
  EXPECT_LT(seen.back(), later);
}

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

// The case: a replica's clock pushed (by a peer whose clock ran ahead, within the allowed
// lead) to a logical part at the wrap; three acknowledged puts of one key later, both replicas
// hold the last.
TEST(HybridClockTest, WritesAcrossTheWrapAreNotLost) {
  sim::SimCluster cluster(sim::AllPeers({"a", "b"}), 3, milliseconds(5));
  auto call = [&](const std::string& node, proto::Request r) {
    auto res = cluster.Call(node, std::move(r));
    EXPECT_TRUE(res.has_value());
    return res.value_or(proto::Response{});
  };
  proto::Request create;
  create.mutable_create_keygroup()->set_name("kg");
  create.mutable_create_keygroup()->add_replicas("a");
  create.mutable_create_keygroup()->add_replicas("b");
  ASSERT_EQ(call("a", create).code(), proto::OK);
  cluster.sim().RunFor(milliseconds(100));

  // b replicates to a an item whose version is 10 s ahead with a full logical part.
  proto::Request info;
  info.mutable_keygroup_info()->set_name("kg");
  auto meta = call("a", info).keygroup();
  proto::PeerMessage msg;
  msg.set_from("b");
  auto* r = msg.mutable_replicate();
  r->set_keygroup("kg");
  *r->mutable_incarnation() = meta.created();
  *r->mutable_meta_version() = meta.version();
  auto* item = r->add_items();
  item->set_key("other");
  item->set_value("pushed");
  item->mutable_version()->set_wall_us(cluster.sim().WallMicros() + 10000000);
  item->mutable_version()->set_logical(kMaxLogical - 1);
  item->mutable_version()->set_node("b");
  cluster.node("a").OnPeerMessage(std::move(msg));
  cluster.sim().RunFor(milliseconds(100));

  std::vector<node::Version> versions;
  for (const char* value : {"v1", "v2", "v3"}) {
    auto put = call("a", Put("k", value));
    ASSERT_EQ(put.code(), proto::OK) << put.error();
    versions.push_back(node::Version::FromProto(put.write().version()));
  }
  EXPECT_LT(versions[0], versions[1]);
  EXPECT_LT(versions[1], versions[2]);
  cluster.sim().RunFor(milliseconds(200));
  for (const char* n : {"a", "b"}) {
    auto got = call(n, Get("k"));
    ASSERT_EQ(got.code(), proto::OK) << n;
    EXPECT_EQ(got.get().value(), "v3") << n;
  }
}

}  // namespace
}  // namespace enoki
