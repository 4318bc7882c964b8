// Three real `enoki node` processes on loopback: replication, a replica killed and restarted on
// its data directory, a database holding a version from the far future, and a writer killed right
// after its acknowledgements.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using testing::NodeCluster;

void CreateOnAll(NodeCluster& cluster, const std::string& kg) {
  proto::CreateKeygroupRequest r;
  r.set_name(kg);
  for (const char* n : {"a", "b", "c"}) r.add_replicas(n);
  ASSERT_TRUE(cluster.Client("a")->CreateKeygroup(r).ok());
  // Every node learns the keygroup.
  for (const char* n : {"a", "b", "c"}) {
    auto c = cluster.Client(n);
    ASSERT_TRUE(NodeCluster::Eventually([&] { return c->KeygroupInfo(kg).ok(); })) << n;
  }
}

TEST(ClusterTest, WriteAtOneNodeReadAtTheOthers) {
  NodeCluster cluster({"a", "b", "c"});
  CreateOnAll(cluster, "kg");
  ASSERT_TRUE(cluster.Client("a")->Put("kg", "greeting", "hello").ok());
  for (const char* n : {"b", "c"}) {
    auto c = cluster.Client(n);
    std::string value;
    EXPECT_TRUE(NodeCluster::Eventually([&] {
      auto r = c->Get("kg", "greeting");
      if (r.ok()) value = r->value();
      return r.ok();
    })) << n;
    EXPECT_EQ(value, "hello") << n;
  }
}

TEST(ClusterTest, TheShaperDelaysReplicationByTheLinksOneWayDelay) {
  // a's messages to b wait 40 ms (--link); b's to a go at once.
  NodeCluster cluster({"a", "b"}, {}, false, {{"a", {"--link=b=delay=40ms"}}});
  auto a = cluster.Client("a");
  proto::CreateKeygroupRequest kg;
  kg.set_name("sync");
  kg.set_mode(proto::SYNC);
  kg.add_replicas("a");
  kg.add_replicas("b");
  ASSERT_TRUE(a->CreateKeygroup(kg).ok());
  ASSERT_TRUE(
      NodeCluster::Eventually([&] { return cluster.Client("b")->KeygroupInfo("sync").ok(); }));
  // A synchronous put is answered after b applied it: one shaped trip there, one plain trip back.
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(a->Put("sync", "k" + std::to_string(i), "v").ok());
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    EXPECT_GE(ms, 40.0);
    EXPECT_LT(ms, 60.0);
  }
}

TEST(ClusterTest, KilledReplicaCatchesUpOnRestartWithoutRestartingOthers) {
  NodeCluster cluster({"a", "b", "c"});
  CreateOnAll(cluster, "kg");
  cluster.Kill("c");
  auto a = cluster.Client("a");
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(a->Put("kg", "k" + std::to_string(i), "v" + std::to_string(i)).ok()) << i;
  }
  cluster.Start("c");
  auto c = cluster.Client("c");
  // All 1,000 keys become readable at c, served by c itself.
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    proto::Request scan;
    scan.mutable_scan()->set_keygroup("kg");
    scan.mutable_scan()->set_limit(5000);
    auto r = c->Call(scan);
    return r.ok() && r->served_by() == "c" && r->scan().items_size() == 1000;
  }));
  for (int i = 0; i < 1000; ++i) {
    auto r = c->Get("kg", "k" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(r->value(), "v" + std::to_string(i));
  }
}

// Replicas that lost data while down get everything back from the others within 30 s, and say
// what they lost: b its write-ahead log (the writes since its last checkpoint: it pulls its
// keygroup again), c its whole database (anti-entropy brings the keygroup back, with its default
// interval).
TEST(ClusterTest, AReplicaWhoseDatabaseWasDeletedGetsEverythingBackWithin30Seconds) {
  NodeCluster cluster({"a", "b", "c"});
  CreateOnAll(cluster, "kg");
  auto a = cluster.Client("a");
  auto put = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      ASSERT_TRUE(a->Put("kg", "k" + std::to_string(i), "v" + std::to_string(i)).ok()) << i;
    }
  };
  ASSERT_NO_FATAL_FAILURE(put(0, 150));
  auto b = cluster.Client("b");
  ASSERT_TRUE(NodeCluster::Eventually([&] { return b->Get("kg", "k149").ok(); }));
  EXPECT_EQ(cluster.Stop("b"), 0);  // a clean stop writes the log back into the database
  cluster.Start("b");
  ASSERT_NO_FATAL_FAILURE(put(150, 300));
  for (const char* n : {"b", "c"}) {
    auto c = cluster.Client(n);
    ASSERT_TRUE(NodeCluster::Eventually([&] { return c->Get("kg", "k299").ok(); })) << n;
    cluster.Kill(n);
  }
  namespace fs = std::filesystem;
  ASSERT_TRUE(fs::remove(cluster.data_dir("b") / "store.db-wal"));
  for (const char* f : {"store.db", "store.db-wal", "store.db-shm"}) {
    fs::remove(cluster.data_dir("c") / f);
  }
  auto start = std::chrono::steady_clock::now();
  for (const char* n : {"b", "c"}) cluster.Start(n);
  for (const char* n : {"b", "c"}) {
    auto c = cluster.Client(n);
    EXPECT_TRUE(NodeCluster::Eventually(
        [&] {
          proto::Request scan;
          scan.mutable_scan()->set_keygroup("kg");
          scan.mutable_scan()->set_limit(1000);
          auto r = c->Call(scan);
          return r.ok() && r->served_by() == n && r->scan().items_size() == 300;
        },
        std::chrono::seconds(30)))
        << n << " does not hold every item 30 s after its restart";
    for (int i = 0; i < 300; i += 29) {
      auto r = c->Get("kg", "k" + std::to_string(i));
      ASSERT_TRUE(r.ok()) << n << " k" << i << ": " << r.status().ToString();
      EXPECT_EQ(r->value(), "v" + std::to_string(i));
    }
  }
  for (const char* n : {"b", "c"}) {
    std::ifstream log(cluster.log(n));
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("storage lost"), std::string::npos) << n << "'s log:\n" << text;
  }
  std::cout << "both repaired "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()
            << " ms after their restart\n";
}

// A stored item whose version lies at the end of time (a damaged database: wall_us INT64_MAX, in a
// row without a checksum, as rows from before checksums are trusted) is dropped at start like one
// that fails its checksum: anti-entropy brings the other replica's copy back, and the clock, which
// never followed it, stamps new writes with the time of day (which the peer takes).
TEST(ClusterTest, AStoredVersionFarInTheFutureIsDroppedAndTheClockDoesNotFollowIt) {
  NodeCluster cluster({"a", "b"}, {"--anti-entropy-ms", "200"});
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  for (const char* n : {"a", "b"}) create.add_replicas(n);
  ASSERT_TRUE(cluster.Client("a")->CreateKeygroup(create).ok());
  ASSERT_TRUE(cluster.Client("a")->Put("kg", "k", "v").ok());
  auto b = cluster.Client("b");
  ASSERT_TRUE(NodeCluster::Eventually([&] { return b->Get("kg", "k").ok(); }));
  EXPECT_EQ(cluster.Stop("a"), 0);
  auto edited =
      adapters::RunCommand({"sqlite3", (cluster.data_dir("a") / "store.db").string(),
                            "UPDATE items SET wall_us = 9223372036854775807, checksum = NULL "
                            "WHERE CAST(key AS TEXT) = 'k'; SELECT changes();"},
                           std::chrono::seconds(10));
  ASSERT_TRUE(edited.ok()) << edited.status().ToString();
  ASSERT_EQ(*edited, "1\n");
  cluster.Start("a");
  auto a = cluster.Client("a");
  const int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto written = a->Put("kg", "k2", "v2");
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_LT(written->version().wall_us(), now_us + 60'000'000);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return b->Get("kg", "k2").ok(); }));
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto r = a->Get("kg", "k");
    return r.ok() && r->value() == "v" && r->version().wall_us() < now_us;
  })) << "k is not back at a with b's version";
  std::ifstream log(cluster.log("a"));
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("beyond the clock's allowed lead"), std::string::npos) << text;
}

TEST(ClusterTest, WritesAcknowledgedBeforeSigkillOfTheWriterSurvive) {
  NodeCluster cluster({"a", "b", "c"});
  CreateOnAll(cluster, "kg");
  std::set<int> acked;
  {
    auto a = cluster.Client("a", std::chrono::milliseconds(500));
    std::atomic<bool> stop{false};
    // The killer strikes while writes are in flight, at a moment the writer does not choose.
    std::thread killer([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      cluster.Kill("a");
      stop = true;
    });
    for (int i = 0; i < 100000 && !stop; ++i) {
      if (a->Put("kg", "w" + std::to_string(i), "x").ok()) acked.insert(i);
    }
    killer.join();
  }
  ASSERT_GT(acked.size(), 10u);
  cluster.Start("a");
  auto a = cluster.Client("a");
  for (int i : acked) {
    auto r = a->Get("kg", "w" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << "acknowledged write w" << i << " lost: " << r.status().ToString();
  }
  // And it reaches the other replicas too.
  auto b = cluster.Client("b");
  int last = *acked.rbegin();
  EXPECT_TRUE(
      NodeCluster::Eventually([&] { return b->Get("kg", "w" + std::to_string(last)).ok(); }));
}

TEST(ClusterTest, AddedReplicaServesAllDataItselfAndRemovedOneForwards) {
  NodeCluster cluster({"a", "b", "c"});
  proto::CreateKeygroupRequest r;
  r.set_name("kg");
  r.add_replicas("a");
  r.add_replicas("b");
  auto a = cluster.Client("a");
  ASSERT_TRUE(a->CreateKeygroup(r).ok());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(a->Put("kg", "k" + std::to_string(i), "v").ok());
  auto c = cluster.Client("c");
  // The catalog reaches every node asynchronously: c changes the keygroup once it knows it.
  ASSERT_TRUE(NodeCluster::Eventually([&] { return c->KeygroupInfo("kg").ok(); }));
  ASSERT_TRUE(c->AddReplica("kg", "c").ok());
  // c answers from its own replica once it pulled everything; before, it forwards.
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    proto::Request scan;
    scan.mutable_scan()->set_keygroup("kg");
    auto res = c->Call(scan);
    return res.ok() && res->served_by() == "c" && res->scan().items_size() == 200;
  }));
  ASSERT_TRUE(c->RemoveReplica("kg", "a").ok());
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    proto::Request g;
    g.mutable_get()->set_keygroup("kg");
    g.mutable_get()->set_key("k5");
    auto res = a->Call(g);
    return res.ok() && res->served_by() != "a" && res->get().value() == "v";
  }));
  auto info = a->KeygroupInfo("kg");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->replicas_size(), 2);
}

TEST(ClusterTest, NodeStopsCleanlyOnSigterm) {
  NodeCluster cluster({"a"});
  int status = cluster.Stop("a");
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace enoki
