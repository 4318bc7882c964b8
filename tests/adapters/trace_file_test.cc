// The trace file: records come back in order, a restarted node appends, a torn last record (the
// node was killed while writing it) ends the file quietly and is cut off when the node opens the
// file again, and garbage is an error.
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

}  // namespace
}  // namespace enoki::adapters
