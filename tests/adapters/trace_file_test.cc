// The trace file: records come back in order, a restarted node appends, a torn last record (the
// node was killed while writing it) ends the file quietly and is cut off when the node opens the
// file again, and garbage is an error; and pages of it (ReadPage, what a node serves over its API)
// come back whole-record by whole-record, what is buffered included.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "adapters/trace_file.h"

namespace enoki::adapters {
namespace {

proto::TraceRecord Op(const std::string& key) {
  proto::TraceRecord r;
  r.mutable_kv_op()->set_key(key);
  return r;
}

std::vector<std::string> Keys(const std::string& path, core::Status* status) {
  std::vector<std::string> keys;
  *status =
      ReadTraceFile(path, [&](const proto::TraceRecord& r) { keys.push_back(r.kv_op().key()); });
  return keys;
}

TEST(TraceFileTest, AppendsReadsBackAndSurvivesATornEnd) {
  auto path = (std::filesystem::temp_directory_path() /
               ("enoki-trace-" + std::to_string(::getpid()) + ".trace"))
                  .string();
  std::filesystem::remove(path);
  for (const char* k : {"a", "b"}) {  // two runs of a node: the second appends
    auto file = TraceFile::Open(path);
    ASSERT_TRUE(file.ok());
    (*file)->Record(Op(k));
    (*file)->Record(Op(std::string(300, k[0])));  // a length above 255
    (*file)->Flush();
  }
  core::Status st;
  EXPECT_EQ(Keys(path, &st),
            (std::vector<std::string>{"a", std::string(300, 'a'), "b", std::string(300, 'b')}));
  EXPECT_TRUE(st.ok());
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);  // torn
  EXPECT_EQ(Keys(path, &st).size(), 3u);
  EXPECT_TRUE(st.ok()) << st.ToString();
  {  // a node restarted after the tear: the torn record is cut off before it appends
    auto file = TraceFile::Open(path);
    ASSERT_TRUE(file.ok());
    (*file)->Record(Op("c"));
  }
  EXPECT_EQ(Keys(path, &st), (std::vector<std::string>{"a", std::string(300, 'a'), "b", "c"}));
  EXPECT_TRUE(st.ok()) << st.ToString();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << std::string("\x03\x00\x00\x00\xff\xff\xff", 7);
  }
  Keys(path, &st);
  EXPECT_EQ(st.code(), core::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("malformed record at byte 0"), std::string::npos) << st.message();
  EXPECT_EQ(ReadTraceFile(path + ".none", [](const proto::TraceRecord&) {}).code(),
            core::Code::kNotFound);
  std::filesystem::remove(path);
}

TEST(TraceFileTest, ReadsPagesOfWholeRecordsWithBufferedOnesIncluded) {
  auto path = (std::filesystem::temp_directory_path() /
               ("enoki-trace-pages-" + std::to_string(::getpid()) + ".trace"))
                  .string();
  std::filesystem::remove(path);
  auto file = TraceFile::Open(path);
  ASSERT_TRUE(file.ok());
  for (int i = 0; i < 10; ++i) (*file)->Record(Op("k" + std::to_string(i)));
  (*file)->Record(Op(std::string(500, 'x')));  // larger than a page below
  // Not flushed yet: a page writes what is buffered first.
  proto::TracePage head;
  ASSERT_TRUE((*file)->ReadPage(0, 0, head).ok());
  EXPECT_EQ(head.records_size(), 0);
  EXPECT_EQ(head.end(), std::filesystem::file_size(path));
  std::vector<std::string> keys;
  uint64_t cursor = 0;
  for (int pages = 0; cursor < head.end() && pages < 100; ++pages) {
    proto::TracePage page;
    ASSERT_TRUE((*file)->ReadPage(cursor, 40, page).ok()) << cursor;
    ASSERT_GT(page.records_size(), 0);
    for (const auto& r : page.records()) keys.push_back(r.kv_op().key());
    EXPECT_TRUE(page.records_size() == 1 || page.next() - cursor <= 40);
    cursor = page.next();
  }
  ASSERT_EQ(keys.size(), 11u);
  EXPECT_EQ(keys[3], "k3");
  EXPECT_EQ(keys[10], std::string(500, 'x'));
  proto::TracePage bad;
  EXPECT_EQ((*file)->ReadPage(head.end() + 1, 40, bad).code(), core::Code::kInvalidArgument);
  EXPECT_EQ((*file)->ReadPage(2, 40, bad).code(), core::Code::kInvalidArgument);
  file->reset();
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace enoki::adapters
