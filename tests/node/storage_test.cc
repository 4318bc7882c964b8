// Storage engines: the shared contract (run against MemoryStorage and SqliteStorage), and what only
// SQLite promises: the file survives reopening and a SIGKILL right after a commit.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "node/memory_storage.h"
#include "node/sqlite_storage.h"

namespace enoki::node {
namespace {

namespace fs = std::filesystem;

struct Snapshot {
  std::map<std::string, KeygroupRecord> keygroups;
  std::map<std::pair<std::string, std::string>, StoredItem> items;
  std::map<std::tuple<std::string, std::string, std::string>, Version> outbox;
};

Snapshot LoadAll(StorageEngine& s) {
  Snapshot snap;
  LoadVisitor v;
  v.keygroup = [&](KeygroupRecord&& r) { snap.keygroups[r.meta.name()] = r; };
  v.item = [&](const std::string& kg, const std::string& k, StoredItem&& i) {
    snap.items[{kg, k}] = i;
  };
  v.outbox = [&](OutboxRecord&& r) { snap.outbox[{r.peer, r.keygroup, r.key}] = r.version; };
  EXPECT_TRUE(s.Load(v).ok());
  return snap;
}

KeygroupRecord Keygroup(const std::string& name, bool ready) {
  KeygroupRecord r;
  r.meta.set_name(name);
  r.meta.add_replicas()->set_node("a");
  r.ready = ready;
  return r;
}

void AddItem(WriteBatch& b, const std::string& kg, const std::string& key, std::string value,
             int64_t wall, bool deleted = false) {
  b.item_keys.emplace_back(kg, key);
  b.items.push_back(StoredItem{std::move(value), Version{wall, 1, "a"}, deleted});
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("enoki-storage-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

class StorageContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      storage_ = std::make_unique<MemoryStorage>();
    } else {
      auto s = SqliteStorage::Open((dir_.path() / "db" / "store.db").string(), SqliteSync::kNormal);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      storage_ = std::move(s.value());
    }
  }
  TempDir dir_;
  std::unique_ptr<StorageEngine> storage_;
};

TEST_P(StorageContractTest, RoundTripsKeygroupsItemsAndOutbox) {
  WriteBatch b;
  b.keygroups.push_back(Keygroup("kg", true));
  AddItem(b, "kg", "k1", "v1", 10);
  AddItem(b, "kg", "k2", "", 11, /*deleted=*/true);
  b.outbox_put.push_back({"b", "kg", "k1", Version{10, 1, "a"}});
  b.outbox_put.push_back({"b", "kg", "", Version{5, 0, "a"}});
  ASSERT_TRUE(storage_->Commit(b).ok());
  Snapshot s = LoadAll(*storage_);
  ASSERT_EQ(s.keygroups.size(), 1u);
  EXPECT_TRUE(s.keygroups["kg"].ready);
  EXPECT_EQ(s.keygroups["kg"].meta.replicas(0).node(), "a");
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ((s.items[{"kg", "k1"}].value), "v1");
  EXPECT_EQ((s.items[{"kg", "k1"}].version), (Version{10, 1, "a"}));
  EXPECT_TRUE((s.items[{"kg", "k2"}].deleted));
  EXPECT_EQ(s.outbox.size(), 2u);
  EXPECT_EQ((s.outbox[{"b", "kg", ""}]), (Version{5, 0, "a"}));
}

TEST_P(StorageContractTest, UpsertsAndErases) {
  WriteBatch b;
  b.keygroups.push_back(Keygroup("kg", false));
  AddItem(b, "kg", "k", "old", 1);
  b.outbox_put.push_back({"b", "kg", "k", Version{1, 1, "a"}});
  ASSERT_TRUE(storage_->Commit(b).ok());
  b.Clear();
  b.keygroups.push_back(Keygroup("kg", true));
  AddItem(b, "kg", "k", "new", 2);
  b.outbox_erase.push_back({"b", "kg", "k", {}});
  ASSERT_TRUE(storage_->Commit(b).ok());
  Snapshot s = LoadAll(*storage_);
  EXPECT_TRUE(s.keygroups["kg"].ready);
  EXPECT_EQ((s.items[{"kg", "k"}].value), "new");
  EXPECT_TRUE(s.outbox.empty());
}

TEST_P(StorageContractTest, DropItemsOfTouchesOnlyThatKeygroup) {
  WriteBatch b;
  AddItem(b, "kg1", "k", "1", 1);
  AddItem(b, "kg2", "k", "2", 1);
  AddItem(b, "kg10", "k", "10", 1);
  ASSERT_TRUE(storage_->Commit(b).ok());
  b.Clear();
  b.drop_items_of.push_back("kg1");
  ASSERT_TRUE(storage_->Commit(b).ok());
  Snapshot s = LoadAll(*storage_);
  EXPECT_EQ(s.items.size(), 2u);
  EXPECT_FALSE((s.items.contains({"kg1", "k"})));
}

TEST_P(StorageContractTest, BinaryAndLargeValuesSurvive) {
  WriteBatch b;
  std::string binary("a\0b\xff\0", 5);
  std::string big(1 << 20, 'x');
  AddItem(b, "kg", "bin", binary, 1);
  AddItem(b, "kg", "big", big, 1);
  ASSERT_TRUE(storage_->Commit(b).ok());
  ASSERT_TRUE(storage_->Commit(WriteBatch{}).ok());
  Snapshot s = LoadAll(*storage_);
  EXPECT_EQ((s.items[{"kg", "bin"}].value), binary);
  EXPECT_EQ((s.items[{"kg", "big"}].value), big);
}

INSTANTIATE_TEST_SUITE_P(Engines, StorageContractTest, ::testing::Values("memory", "sqlite"));

TEST(SqliteStorageTest, SurvivesReopeningAndUsesWal) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  {
    auto s = SqliteStorage::Open(path, SqliteSync::kFull);
    ASSERT_TRUE(s.ok());
    WriteBatch b;
    AddItem(b, "kg", "k", "v", 1);
    ASSERT_TRUE((*s)->Commit(b).ok());
  }
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((LoadAll(**s).items[{"kg", "k"}].value), "v");

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(q, 0)), "wal");
  sqlite3_finalize(q);
  sqlite3_close(db);
}

TEST(SqliteStorageTest, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  std::string path = (dir.path() / "garbage.db").string();
  std::ofstream(path) << std::string(4096, 'G');
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(path), std::string::npos) << s.status().ToString();
}

TEST(SqliteStorageTest, RefusesAForeignSchemaVersion) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("schema version 99"), std::string::npos);
}

TEST(SqliteStorageTest, CommitSurvivesSigkillRightAfterIt) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
    WriteBatch b;
    for (int i = 0; i < 100; ++i) AddItem(b, "kg", "k" + std::to_string(i), "v", i + 1);
    bool ok = s.ok() && (*s)->Commit(b).ok();
    char c = ok ? 'y' : 'n';
    (void)!::write(pipe_fds[1], &c, 1);
    ::pause();  // killed here, with the database still open
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(pipe_fds[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(LoadAll(**s).items.size(), 100u);
}

}  // namespace
}  // namespace enoki::node
