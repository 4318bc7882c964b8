// A node's trace and its clock over the API (TraceRequest, ClockRequest), with real `enoki node`
// processes: paging through the trace gives back the trace file's records in order, each page
// within its size, the cursors continuous; a bad cursor and a node without a trace are refused
// with a clear error; a node's clock answers the host's monotonic clock, or that clock shifted by
// --test-clock-offset-ms; and with keys, both need the `control` role.
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "adapters/trace_file.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using testing::KeyFolder;
using testing::NodeCluster;

int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A trace file's path for this test process, removed at the end.
class TracePath {
 public:
  explicit TracePath(const std::string& name)
      : path_((fs::temp_directory_path() /
               ("enoki-trace-it-" + name + "-" + std::to_string(::getpid()) + ".trace"))
                  .string()) {
    fs::remove(path_);
  }
  ~TracePath() { fs::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(TraceTest, PagesThroughTheTraceAsTheFileHoldsIt) {
  TracePath trace("pages");
  // Node a keeps a trace and its clock runs 37.5 s ahead; node b keeps none.
  NodeCluster cluster({"a", "b"}, {}, false,
                      {{"a", {"--trace", trace.path(), "--test-clock-offset-ms", "37500"}}});
  auto a = cluster.Client("a");
  proto::CreateKeygroupRequest kg;
  kg.set_name("kg");
  kg.add_replicas("a");
  ASSERT_TRUE(a->CreateKeygroup(kg).ok());
  std::vector<std::string> written;
  for (int i = 0; i < 60; ++i) {
    written.push_back("key-" + std::to_string(i));
    ASSERT_TRUE(a->Put("kg", written.back(), std::string(i + 1, 'v')).ok());
  }

  // Where it ends, and no records, with max_bytes 0.
  auto head = a->Trace(0, 0);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->records_size(), 0);
  EXPECT_EQ(head->next(), 0u);
  EXPECT_EQ(head->end(), fs::file_size(trace.path()));

  // Pages of at most 300 bytes of records, each starting where the last one ended.
  std::vector<std::string> keys;
  uint64_t cursor = 0;
  int pages = 0;
  for (; cursor < head->end() && pages < 1000; ++pages) {
    auto page = a->Trace(cursor, 300);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    ASSERT_GT(page->records_size(), 0) << "at " << cursor;
    uint64_t bytes = 0;
    for (const auto& r : page->records()) {
      bytes += 4 + r.ByteSizeLong();  // as the file holds it
      ASSERT_TRUE(r.has_write());
      EXPECT_TRUE(r.write().origin());
      keys.push_back(r.write().key());
    }
    EXPECT_LE(bytes, 300u);
    EXPECT_EQ(page->next(), cursor + bytes);
    cursor = page->next();
  }
  EXPECT_EQ(cursor, head->end());
  EXPECT_GT(pages, 3);
  EXPECT_EQ(keys, written);
  // The file read directly holds the same.
  std::vector<std::string> in_file;
  ASSERT_TRUE(adapters::ReadTraceFile(trace.path(), [&](const proto::TraceRecord& r) {
                in_file.push_back(r.write().key());
              }).ok());
  EXPECT_EQ(in_file, written);

  // A record larger than the page still comes, alone.
  auto one = a->Trace(0, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->records_size(), 1);
  // At the end: nothing, and the cursor stays.
  auto none = a->Trace(head->end(), 300);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->records_size(), 0);
  EXPECT_EQ(none->next(), head->end());
  // A cursor past the end, or not at a record, is refused.
  auto past = a->Trace(head->end() + 1, 300);
  EXPECT_EQ(past.status().code(), core::Code::kInvalidArgument);
  EXPECT_NE(past.status().message().find("past the trace's end"), std::string::npos)
      << past.status().message();
  EXPECT_EQ(a->Trace(1, 300).status().code(), core::Code::kInvalidArgument);

  // The trace's times are on the node's clock: shifted by 37.5 s, as its clock answers.
  int64_t t0 = MonotonicNs();
  auto clock = a->Clock();
  int64_t t3 = MonotonicNs();
  ASSERT_TRUE(clock.ok()) << clock.status().ToString();
  constexpr int64_t kOffset = 37'500'000'000;
  EXPECT_GE(*clock - kOffset, t0);
  EXPECT_LE(*clock - kOffset, t3);
  auto last = a->Trace(0, adapters::TraceFile::kMaxPageBytes);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->records_size(), 60);
  EXPECT_GT(last->records(59).write().durable_ns() - kOffset, t0 - 60'000'000'000);
  EXPECT_LT(last->records(59).write().durable_ns() - kOffset, t0);

  // A node without a trace says so; its clock is the host's, read between send and answer.
  auto b = cluster.Client("b");
  auto untraced = b->Trace(0, 300);
  EXPECT_EQ(untraced.status().code(), core::Code::kFailedPrecondition);
  EXPECT_NE(untraced.status().message().find("node b keeps no trace: start it with --trace FILE"),
            std::string::npos)
      << untraced.status().message();
  t0 = MonotonicNs();
  clock = b->Clock();
  t3 = MonotonicNs();
  ASSERT_TRUE(clock.ok());
  EXPECT_GE(*clock, t0);
  EXPECT_LE(*clock, t3);
}

// With keys, the trace and the clock need the `control` role: the trace names every keygroup's
// keys.
TEST(TraceTest, TheTestBedControlsNeedTheControlRole) {
  TracePath trace("control");
  KeyFolder keys({"n", "ops", "viewer"});
  std::string access = keys.AccessLines(
      {"ops ops.pub admin read:* write:* control", "viewer viewer.pub admin read:* write:*"});
  NodeCluster cluster({"n"}, {"--access", access}, false,
                      {{"n", {"--key", keys.key("n"), "--trace", trace.path()}}});
  adapters::Client ops(cluster.context(), cluster.endpoint("n"), std::chrono::seconds(3), "n",
                       keys.ClientOf("ops", "n"));
  adapters::Client viewer(cluster.context(), cluster.endpoint("n"), std::chrono::seconds(3), "n",
                          keys.ClientOf("viewer", "n"));
  proto::CreateKeygroupRequest kg;
  kg.set_name("kg");
  ASSERT_TRUE(ops.CreateKeygroup(kg).ok());
  ASSERT_TRUE(viewer.Put("kg", "k", "v").ok());

  auto refused = viewer.Trace(0, 1000);
  EXPECT_EQ(refused.status().code(), core::Code::kPermissionDenied);
  EXPECT_NE(refused.status().message().find(
                "client 'viewer' may not read the node's trace or its clock: it needs 'control'"),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(viewer.Clock().status().code(), core::Code::kPermissionDenied);
  // The other test-bed controls too: measuring round trips, shaping links.
  proto::Request measure;
  measure.mutable_measure_rtt()->add_peers("n");
  measure.mutable_measure_rtt()->set_probes(1);
  auto rtt = viewer.Call(measure);
  EXPECT_EQ(rtt.status().code(), core::Code::kPermissionDenied);
  EXPECT_NE(rtt.status().message().find("may not measure round trips: it needs 'control'"),
            std::string::npos)
      << rtt.status().message();
  EXPECT_EQ(viewer.SetLink("n", "delay=1ms", true).code(), core::Code::kPermissionDenied);

  auto page = ops.Trace(0, 1000);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->records_size(), 1);
  EXPECT_EQ(page->records(0).write().key(), "k");
  EXPECT_TRUE(ops.Clock().ok());
}

}  // namespace
}  // namespace enoki
