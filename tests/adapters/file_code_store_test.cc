// FileCodeStore: generations written whole with their modes, found and listed, removed; what an
// interrupted write left is gone when the store is opened again; a path that leaves the folder is
// refused even when the node's check missed it.
#include "adapters/file_code_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace enoki::adapters {
namespace {

namespace fs = std::filesystem;

class FileCodeStoreTest : public ::testing::Test {
 protected:
  FileCodeStoreTest() {
    dir_ = fs::temp_directory_path() / ("enoki-code-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  ~FileCodeStoreTest() override { fs::remove_all(dir_); }
  static void Add(node::CodeStore::Files& files, const std::string& path, const std::string& data,
                  bool executable = false) {
    proto::FunctionFile* f = files.Add();
    f->set_path(path);
    f->set_data(data);
    f->set_executable(executable);
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path dir_;
};

TEST_F(FileCodeStoreTest, WritesGenerationsWithTheirModesListsAndDiscardsThem) {
  ::umask(077);  // the modes are the store's, whatever the node's umask
  auto store = FileCodeStore::Open((dir_ / "functions").string());
  ::umask(022);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  node::CodeStore::Files files;
  Add(files, "fn.py", "#!/bin/sh\n", true);
  Add(files, "lib/data/a.txt", "a");
  auto folder = (*store)->Write("f", 1, files);
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  fs::path root = (*store)->root();
  EXPECT_EQ(*folder, (root / "f" / "1").string());
  EXPECT_EQ(Read(root / "f/1/fn.py"), "#!/bin/sh\n");
  EXPECT_EQ(Read(root / "f/1/lib/data/a.txt"), "a");
  EXPECT_EQ(fs::status(root / "f/1/fn.py").permissions(), fs::perms(0755));
  EXPECT_EQ(fs::status(root / "f/1/lib/data/a.txt").permissions(), fs::perms(0644));
  EXPECT_EQ(fs::status(root / "f/1/lib").permissions(), fs::perms(0755));
  EXPECT_EQ(fs::status(root / "f/1").permissions(), fs::perms(0755));
  EXPECT_EQ(fs::status(root).permissions(), fs::perms(0755));

  ASSERT_TRUE((*store)->Write("f", 2, files).ok());
  ASSERT_TRUE((*store)->Write("g", 7, files).ok());
  auto listed = (*store)->List();
  EXPECT_EQ(listed["f"], (std::set<uint64_t>{1, 2}));
  EXPECT_EQ(listed["g"], (std::set<uint64_t>{7}));
  EXPECT_EQ(*(*store)->Folder("g", 7), (root / "g" / "7").string());
  EXPECT_EQ((*store)->Folder("g", 8).status().code(), core::Code::kNotFound);

  ASSERT_TRUE((*store)->Discard("f", 1).ok());
  EXPECT_FALSE(fs::exists(root / "f" / "1"));
  ASSERT_TRUE((*store)->Discard("f", 2).ok());
  EXPECT_FALSE(fs::exists(root / "f")) << "the function's folder goes with its last generation";
  EXPECT_TRUE((*store)->Discard("f", 2).ok()) << "what is not there is gone already";
  EXPECT_EQ((*store)->List().size(), 1u);
}

TEST_F(FileCodeStoreTest, AnInterruptedWriteLeavesNothingOnceOpenedAgain) {
  fs::create_directories(dir_ / ".tmp-f-3-abcdef" / "sub");
  std::ofstream(dir_ / ".tmp-f-3-abcdef" / "sub" / "half") << "half";
  auto store = FileCodeStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  EXPECT_FALSE(fs::exists(dir_ / ".tmp-f-3-abcdef"));
  EXPECT_TRUE((*store)->List().empty());
}

TEST_F(FileCodeStoreTest, APathOutsideTheFolderIsRefusedAndNothingStays) {
  auto store = FileCodeStore::Open((dir_ / "functions").string());
  ASSERT_TRUE(store.ok());
  node::CodeStore::Files files;
  Add(files, "fn.py", "x", true);
  Add(files, "../../outside", "x");
  auto written = (*store)->Write("f", 1, files);
  EXPECT_EQ(written.status().code(), core::Code::kInvalidArgument);
  EXPECT_NE(written.status().message().find("'../../outside' lies outside its folder"),
            std::string::npos)
      << written.status().ToString();
  EXPECT_FALSE(fs::exists(dir_ / "outside"));
  EXPECT_FALSE(fs::exists(dir_ / "functions" / "f" / "1"));
  for (const auto& e : fs::directory_iterator(dir_ / "functions")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".tmp-")) << e.path();
  }
  EXPECT_TRUE((*store)->List()["f"].empty());
}

}  // namespace
}  // namespace enoki::adapters
