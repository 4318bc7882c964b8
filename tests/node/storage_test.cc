// Storage engines: the shared contract (run against MemoryStorage and SqliteStorage), and what only
// SQLite promises: WAL mode, a schema version, clear errors for files it cannot use, rollback of a
// failed batch, and a file that survives reopening and a SIGKILL right after a commit; and the VFS
// it writes through (adapters/sqlite_wal_vfs.h).
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "adapters/sqlite_config.h"
#include "adapters/sqlite_storage.h"
#include "adapters/sqlite_wal_vfs.h"
#include "node/memory_storage.h"

namespace enoki::node {
namespace {

using adapters::SqliteStorage;  // the engine of real nodes, tested here against the contract
using adapters::SqliteSync;

namespace fs = std::filesystem;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Everything Load visited, keyed like the engines' primary keys.
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
  core::Status st = s.Load(v);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return snap;
}

KeygroupRecord Keygroup(const std::string& name, bool ready, int64_t wall = 1) {
  KeygroupRecord r;
  r.meta.set_name(name);
  r.meta.set_mode(proto::SYNC);
  r.meta.add_replicas()->set_node("a");
  r.meta.add_replicas()->set_node("b");
  r.meta.mutable_version()->set_wall_us(wall);
  r.ready = ready;
  return r;
}

void AddItem(WriteBatch& b, const std::string& kg, const std::string& key, std::string value,
             int64_t wall, bool deleted = false) {
  b.PutItem(kg, key, StoredItem{std::move(value), Version{wall, 1, "a"}, deleted});
}

OutboxRecord Outbox(const std::string& peer, const std::string& kg, const std::string& key,
                    int64_t wall = 1) {
  return OutboxRecord{peer, kg, key, Version{wall, 0, "a"}};
}

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("enoki-storage-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path path() const { return path_; }

 private:
  fs::path path_;
};

// Runs one query on its own connection to `path` and returns the first column of its first row.
std::string QueryOne(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::string out = "<error>";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* q = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &q, nullptr) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(q, 0);
      out = text ? reinterpret_cast<const char*>(text) : "<null>";
    }
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
  return out;
}

// Runs `sql` on its own connection to `path`; returns SQLite's error message, or "" on success.
std::string ExecOn(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    out = sqlite3_errmsg(db);
  } else if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    out = sqlite3_errmsg(db);
  }
  sqlite3_close(db);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The contract every engine keeps.

class StorageContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      storage_ = std::make_unique<MemoryStorage>();
    } else {
      // A parent directory that does not exist yet: Open creates it.
      auto s = SqliteStorage::Open((dir_.path() / "db" / "store.db").string(), SqliteSync::kNormal);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      storage_ = std::move(s.value());
    }
  }
  TempDir dir_;
  std::unique_ptr<StorageEngine> storage_;
};

TEST_P(StorageContractTest, EmptyBatchIsOkAndChangesNothing) {
  Snapshot s = LoadAll(*storage_);
  EXPECT_TRUE(s.keygroups.empty() && s.items.empty() && s.outbox.empty());
  ASSERT_TRUE(storage_->Commit(WriteBatch{}).ok());
  s = LoadAll(*storage_);
  EXPECT_TRUE(s.keygroups.empty() && s.items.empty() && s.outbox.empty());

  WriteBatch b;
  b.PutKeygroup(Keygroup("kg", true));
  AddItem(b, "kg", "k", "v", 1);
  b.PutOutbox(Outbox("b", "kg", "k"));
  ASSERT_TRUE(storage_->Commit(b).ok());
  ASSERT_TRUE(storage_->Commit(WriteBatch{}).ok());
  s = LoadAll(*storage_);
  EXPECT_EQ(s.keygroups.size(), 1u);
  EXPECT_EQ(s.items.size(), 1u);
  EXPECT_EQ(s.outbox.size(), 1u);
}

TEST_P(StorageContractTest, RoundTripsKeygroupsItemsAndOutbox) {
  WriteBatch b;
  KeygroupRecord kg = Keygroup("kg", true, 42);
  b.PutKeygroup(kg);
  b.PutKeygroup(Keygroup("other", false));
  AddItem(b, "kg", "k1", "v1", 10);
  AddItem(b, "kg", "k2", "", 11, /*deleted=*/true);
  b.PutOutbox({"b", "kg", "k1", Version{10, 1, "a"}});
  b.PutOutbox({"b", "kg", "", Version{5, 0, "a"}});  // the catalog entry
  ASSERT_TRUE(storage_->Commit(b).ok());

  Snapshot s = LoadAll(*storage_);
  ASSERT_EQ(s.keygroups.size(), 2u);
  EXPECT_TRUE(s.keygroups["kg"].ready);
  EXPECT_FALSE(s.keygroups["other"].ready);
  EXPECT_EQ(s.keygroups["kg"].meta.SerializeAsString(), kg.meta.SerializeAsString());
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ((s.items[{"kg", "k1"}].value), "v1");
  EXPECT_EQ((s.items[{"kg", "k1"}].version), (Version{10, 1, "a"}));
  EXPECT_FALSE((s.items[{"kg", "k1"}].deleted));
  EXPECT_TRUE((s.items[{"kg", "k2"}].deleted));
  EXPECT_EQ((s.items[{"kg", "k2"}].version), (Version{11, 1, "a"}));
  ASSERT_EQ(s.outbox.size(), 2u);
  EXPECT_EQ((s.outbox[{"b", "kg", "k1"}]), (Version{10, 1, "a"}));
  EXPECT_EQ((s.outbox[{"b", "kg", ""}]), (Version{5, 0, "a"}));
}

TEST_P(StorageContractTest, LoadItemReadsOneItemAsCommitted) {
  WriteBatch b;
  AddItem(b, "kg", "k", std::string("v\0w", 3), 7);
  AddItem(b, "kg", "gone", "", 8, /*deleted=*/true);
  ASSERT_TRUE(storage_->Commit(b).ok());
  auto item = storage_->LoadItem("kg", "k");
  ASSERT_TRUE(item.ok()) << item.status().ToString();
  ASSERT_TRUE(item.value().has_value());
  EXPECT_EQ(item.value()->value, std::string("v\0w", 3));
  EXPECT_EQ(item.value()->version, (Version{7, 1, "a"}));
  EXPECT_FALSE(item.value()->deleted);
  auto tombstone = storage_->LoadItem("kg", "gone");
  ASSERT_TRUE(tombstone.ok() && tombstone.value().has_value());
  EXPECT_TRUE(tombstone.value()->deleted);
  for (auto [kg, key] : {std::pair{"kg", "absent"}, std::pair{"other", "k"}}) {
    auto none = storage_->LoadItem(kg, key);
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_FALSE(none.value().has_value()) << kg << "/" << key;
  }
}

TEST_P(StorageContractTest, VersionsRoundTripAtTheirLimits) {
  WriteBatch b;
  Version max{INT64_MAX, UINT32_MAX, std::string("node\0x", 6)};
  b.PutItem("kg", "k", StoredItem{"v", max, false});
  b.PutOutbox({"b", "kg", "k", max});
  ASSERT_TRUE(storage_->Commit(b).ok());
  Snapshot s = LoadAll(*storage_);
  EXPECT_EQ((s.items[{"kg", "k"}].version), max);
  EXPECT_EQ((s.outbox[{"b", "kg", "k"}]), max);
}

TEST_P(StorageContractTest, LoadVisitsKeygroupsThenItemsThenOutboxInKeyOrder) {
  WriteBatch b;
  b.PutKeygroup(Keygroup("zeta", true));
  b.PutKeygroup(Keygroup("alpha", true));
  AddItem(b, "kg", "\xff", "", 1);  // byte order: 0xff sorts after every ASCII byte
  AddItem(b, "kg", std::string("a\0b", 3), "", 1);
  AddItem(b, "kg", "a", "", 1);
  AddItem(b, "kf", "z", "", 1);
  b.PutOutbox(Outbox("p2", "kg", "a"));
  b.PutOutbox(Outbox("p1", "kg", "b"));
  b.PutOutbox(Outbox("p1", "kg", ""));
  ASSERT_TRUE(storage_->Commit(b).ok());

  std::vector<std::string> seen;
  LoadVisitor v;
  v.keygroup = [&](KeygroupRecord&& r) { seen.push_back("kg:" + r.meta.name()); };
  v.item = [&](const std::string& kg, const std::string& k, StoredItem&&) {
    seen.push_back("item:" + kg + "/" + k);
  };
  v.outbox = [&](OutboxRecord&& r) {
    seen.push_back("out:" + r.peer + "/" + r.keygroup + "/" + r.key);
  };
  ASSERT_TRUE(storage_->Load(v).ok());
  std::vector<std::string> want = {
      "kg:alpha",     "kg:zeta",    "item:kf/z",   "item:kg/a",   std::string("item:kg/a\0b", 11),
      "item:kg/\xff", "out:p1/kg/", "out:p1/kg/b", "out:p2/kg/a",
  };
  EXPECT_EQ(seen, want);
}

TEST_P(StorageContractTest, LoadToleratesMissingCallbacks) {
  WriteBatch b;
  b.PutKeygroup(Keygroup("kg", true));
  AddItem(b, "kg", "k", "v", 1);
  b.PutOutbox(Outbox("b", "kg", "k"));
  ASSERT_TRUE(storage_->Commit(b).ok());
  int items = 0;
  LoadVisitor v;
  v.item = [&](const std::string&, const std::string&, StoredItem&&) { ++items; };
  ASSERT_TRUE(storage_->Load(v).ok());
  EXPECT_EQ(items, 1);
  ASSERT_TRUE(storage_->Load(LoadVisitor{}).ok());
}

TEST_P(StorageContractTest, UpsertsReplaceWholeRecords) {
  WriteBatch b;
  b.PutKeygroup(Keygroup("kg", false, 1));
  AddItem(b, "kg", "k", "old", 1, /*deleted=*/true);
  b.PutOutbox(Outbox("b", "kg", "k", 1));
  ASSERT_TRUE(storage_->Commit(b).ok());

  b.Clear();
  KeygroupRecord kg = Keygroup("kg", true, 2);
  kg.meta.clear_replicas();
  b.PutKeygroup(kg);
  AddItem(b, "kg", "k", "new", 2);
  b.PutOutbox(Outbox("b", "kg", "k", 2));
  ASSERT_TRUE(storage_->Commit(b).ok());

  Snapshot s = LoadAll(*storage_);
  ASSERT_EQ(s.keygroups.size(), 1u);
  EXPECT_TRUE(s.keygroups["kg"].ready);
  EXPECT_EQ(s.keygroups["kg"].meta.replicas_size(), 0);
  EXPECT_EQ(s.keygroups["kg"].meta.version().wall_us(), 2);
  ASSERT_EQ(s.items.size(), 1u);
  EXPECT_EQ((s.items[{"kg", "k"}].value), "new");
  EXPECT_EQ((s.items[{"kg", "k"}].version), (Version{2, 1, "a"}));
  EXPECT_FALSE((s.items[{"kg", "k"}].deleted));
  ASSERT_EQ(s.outbox.size(), 1u);
  EXPECT_EQ((s.outbox[{"b", "kg", "k"}]), (Version{2, 0, "a"}));
}

TEST_P(StorageContractTest, DropItemsOfTouchesOnlyThatKeygroup) {
  WriteBatch b;
  b.PutKeygroup(Keygroup("kg1", true));
  AddItem(b, "kg1", "k", "1", 1);
  AddItem(b, "kg1", "k2", "1", 1);
  AddItem(b, "kg2", "k", "2", 1);
  AddItem(b, "kg10", "k", "10", 1);  // shares the prefix "kg1"
  AddItem(b, "kg", "k1", "0", 1);
  b.PutOutbox(Outbox("b", "kg1", "k"));
  ASSERT_TRUE(storage_->Commit(b).ok());

  b.Clear();
  b.DropItemsOf("kg1");
  b.DropItemsOf("absent");
  ASSERT_TRUE(storage_->Commit(b).ok());

  Snapshot s = LoadAll(*storage_);
  EXPECT_EQ(s.items.size(), 3u);
  EXPECT_FALSE((s.items.contains({"kg1", "k"})));
  EXPECT_FALSE((s.items.contains({"kg1", "k2"})));
  EXPECT_TRUE((s.items.contains({"kg2", "k"})));
  EXPECT_TRUE((s.items.contains({"kg10", "k"})));
  EXPECT_TRUE((s.items.contains({"kg", "k1"})));
  // Only items go: the keygroup's record and its outbox entries stay.
  EXPECT_EQ(s.keygroups.count("kg1"), 1u);
  EXPECT_EQ(s.outbox.size(), 1u);
}

TEST_P(StorageContractTest, BatchKeepsTheNetEffectOfWhatWasRecorded) {
  WriteBatch b;
  AddItem(b, "kg", "old", "x", 1);
  b.PutOutbox(Outbox("b", "kg", "k", 1));
  b.PutOutbox(Outbox("b", "kg", "gone", 1));
  ASSERT_TRUE(storage_->Commit(b).ok());

  b.Clear();
  AddItem(b, "kg", "before-drop", "z", 2);  // recorded before the drop: dropped with it
  b.DropItemsOf("kg");
  AddItem(b, "kg", "new", "y", 2);  // recorded after the drop: stays
  b.EraseOutbox("b", "kg", "k");
  b.PutOutbox(Outbox("b", "kg", "k", 2));  // put after erase: stays
  b.PutOutbox(Outbox("b", "kg", "gone", 2));
  b.EraseOutbox("b", "kg", "gone");  // erase after put: gone
  ASSERT_TRUE(storage_->Commit(b).ok());

  Snapshot s = LoadAll(*storage_);
  ASSERT_EQ(s.items.size(), 1u);
  EXPECT_EQ((s.items[{"kg", "new"}].value), "y");
  ASSERT_EQ(s.outbox.size(), 1u);
  EXPECT_EQ((s.outbox[{"b", "kg", "k"}].wall_us), 2);
}

TEST_P(StorageContractTest, OutboxEraseRemovesOnlyThatRecord) {
  WriteBatch b;
  b.PutOutbox(Outbox("b", "kg", "k"));
  b.PutOutbox(Outbox("c", "kg", "k"));
  b.PutOutbox(Outbox("b", "kg", "k2"));
  b.PutOutbox(Outbox("b", "kg2", "k"));
  b.PutOutbox(Outbox("b", "kg", ""));
  ASSERT_TRUE(storage_->Commit(b).ok());

  b.Clear();
  b.EraseOutbox("b", "kg", "k");       // the version is ignored
  b.EraseOutbox("nobody", "kg", "k");  // erasing nothing is fine
  ASSERT_TRUE(storage_->Commit(b).ok());

  Snapshot s = LoadAll(*storage_);
  EXPECT_EQ(s.outbox.size(), 4u);
  EXPECT_FALSE((s.outbox.contains({"b", "kg", "k"})));
  EXPECT_TRUE((s.outbox.contains({"c", "kg", "k"})));
  EXPECT_TRUE((s.outbox.contains({"b", "kg", "k2"})));
  EXPECT_TRUE((s.outbox.contains({"b", "kg2", "k"})));
  EXPECT_TRUE((s.outbox.contains({"b", "kg", ""})));
}

TEST_P(StorageContractTest, BinaryAndLargeValuesSurvive) {
  WriteBatch b;
  std::string binary("a\0b\xff\0", 5);
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<char>(i % 256);
  std::string nul_key("k\0", 2);
  AddItem(b, "kg", "bin", binary, 1);
  AddItem(b, "kg", "big", big, 1);
  AddItem(b, "kg", "empty", "", 1);
  AddItem(b, "kg", nul_key, "nul key", 1);
  AddItem(b, "kg", "k", "plain key", 1);  // distinct from "k\0"
  b.PutOutbox(Outbox("b", "kg", nul_key));
  ASSERT_TRUE(storage_->Commit(b).ok());

  Snapshot s = LoadAll(*storage_);
  ASSERT_EQ(s.items.size(), 5u);
  EXPECT_EQ((s.items[{"kg", "bin"}].value), binary);
  EXPECT_EQ((s.items[{"kg", "big"}].value), big);
  EXPECT_EQ((s.items[{"kg", "empty"}].value), "");
  EXPECT_FALSE((s.items[{"kg", "empty"}].deleted));
  EXPECT_EQ((s.items[{"kg", nul_key}].value), "nul key");
  EXPECT_EQ((s.items[{"kg", "k"}].value), "plain key");
  EXPECT_TRUE((s.outbox.contains({"b", "kg", nul_key})));
}

TEST_P(StorageContractTest, FunctionsRoundTrip) {
  WriteBatch b;
  b.PutFunction("f", std::string("spec\0bytes", 10));
  b.PutFunction("g", "old");
  ASSERT_TRUE(storage_->Commit(b).ok());
  b.Clear();
  b.PutFunction("g", "new");
  b.EraseFunction("f");
  ASSERT_TRUE(storage_->Commit(b).ok());
  std::map<std::string, std::string> functions;
  LoadVisitor v;
  v.function = [&](const std::string& name, std::string&& spec) { functions[name] = spec; };
  ASSERT_TRUE(storage_->Load(v).ok());
  EXPECT_EQ(functions, (std::map<std::string, std::string>{{"g", "new"}}));
}

TEST_P(StorageContractTest, MembersRoundTripAndTheLaterEntryOfOneNodeReplacesItsEarlier) {
  auto member = [](const std::string& id, uint64_t version, bool left) {
    proto::Member m;
    m.set_id(id);
    m.set_endpoint("tcp://10.0.0.1:7000");
    m.set_version(version);
    m.set_left(left);
    return m;
  };
  WriteBatch b;
  b.PutMember(member("a", 0, false));
  b.PutMember(member("d", 5, false));
  ASSERT_TRUE(storage_->Commit(b).ok());
  b.Clear();
  b.PutMember(member("d", 9, true));
  ASSERT_TRUE(storage_->Commit(b).ok());
  std::map<std::string, std::string> members;
  LoadVisitor v;
  v.member = [&](proto::Member&& m) { members[m.id()] = m.SerializeAsString(); };
  ASSERT_TRUE(storage_->Load(v).ok());
  EXPECT_EQ(members,
            (std::map<std::string, std::string>{{"a", member("a", 0, false).SerializeAsString()},
                                                {"d", member("d", 9, true).SerializeAsString()}}));
}

INSTANTIATE_TEST_SUITE_P(Engines, StorageContractTest, ::testing::Values("memory", "sqlite"),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------------------------------------
// What only SqliteStorage does.

TEST(SqliteStorageTest, SurvivesClosingAndReopening) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  {
    auto s = SqliteStorage::Open(path, SqliteSync::kFull);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    WriteBatch b;
    b.PutKeygroup(Keygroup("kg", true));
    AddItem(b, "kg", "k", std::string("v\0v", 3), 1);
    b.PutOutbox(Outbox("b", "kg", "k", 7));
    ASSERT_TRUE((*s)->Commit(b).ok());
  }
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Snapshot snap = LoadAll(**s);
  EXPECT_TRUE(snap.keygroups["kg"].ready);
  EXPECT_EQ((snap.items[{"kg", "k"}].value), std::string("v\0v", 3));
  EXPECT_EQ((snap.outbox[{"b", "kg", "k"}].wall_us), 7);

  // And it keeps working after the reopen.
  WriteBatch b;
  AddItem(b, "kg", "k2", "v2", 2);
  ASSERT_TRUE((*s)->Commit(b).ok());
  EXPECT_EQ(LoadAll(**s).items.size(), 2u);
}

TEST(SqliteStorageTest, UsesWalAndWritesSchemaVersion5) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  s.value().reset();  // the node's connection keeps the file to itself while open
  // WAL is a property of the file, so another connection sees it.
  EXPECT_EQ(QueryOne(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), "5");
  EXPECT_EQ(QueryOne(path,
                     "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                     "('keygroups', 'items', 'outbox', 'functions', 'owner', 'members', "
                     "'commits')"),
            "7");
}

TEST(SqliteStorageTest, MigratesAVersion1File) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  // A version-1 file: the tables without `functions`, with an item in it.
  ASSERT_EQ(ExecOn(path,
                   "CREATE TABLE keygroups(name TEXT PRIMARY KEY, meta BLOB NOT NULL, ready "
                   "INTEGER NOT NULL); CREATE TABLE items(keygroup TEXT NOT NULL, key BLOB NOT "
                   "NULL, value BLOB NOT NULL, wall_us INTEGER NOT NULL, logical INTEGER NOT "
                   "NULL, node TEXT NOT NULL, deleted INTEGER NOT NULL, PRIMARY KEY(keygroup, "
                   "key)) WITHOUT ROWID; CREATE TABLE outbox(peer TEXT NOT NULL, keygroup TEXT NOT "
                   "NULL, key BLOB NOT NULL, wall_us INTEGER NOT NULL, logical INTEGER NOT NULL, "
                   "node TEXT NOT NULL, PRIMARY KEY(peer, keygroup, key)) WITHOUT ROWID; INSERT "
                   "INTO items VALUES('kg', 'k', 'v', 1, 0, 'a', 0); PRAGMA user_version=1;"),
            "");
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(LoadAll(**s).items.size(), 1u);
  WriteBatch b;
  b.PutFunction("f", "spec");
  proto::Member m;
  m.set_id("d");
  m.set_endpoint("tcp://10.0.0.4:7000");
  m.set_version(7);
  b.PutMember(m);
  EXPECT_TRUE((*s)->Commit(b).ok());
  // Its item, from before checksums, is trusted; a new one gets its checksum.
  WriteBatch item;
  AddItem(item, "kg", "k2", "v2", 2);
  EXPECT_TRUE((*s)->Commit(item).ok());
  EXPECT_EQ(LoadAll(**s).items.size(), 2u);
  // Its new table holds the member entry.
  std::vector<proto::Member> members;
  LoadVisitor v;
  v.member = [&](proto::Member&& loaded) { members.push_back(std::move(loaded)); };
  ASSERT_TRUE((*s)->Load(v).ok());
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].SerializeAsString(), m.SerializeAsString());
  // It had no owner yet: the first node to claim it becomes its owner.
  EXPECT_TRUE((*s)->ClaimFor("a").ok());
  // What the file holds, seen by another connection once the node's has closed it.
  s.value().reset();
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), "5");
  EXPECT_EQ(QueryOne(path, "SELECT count(*) FROM items WHERE checksum IS NULL"), "1");
  EXPECT_EQ(QueryOne(path, "SELECT node FROM owner"), "a");
}

TEST(SqliteStorageTest, AnItemChangedOnDiskFailsItsChecksumAndIsNotHandedOut) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  {
    auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    WriteBatch b;
    AddItem(b, "kg", "edited", "v", 1);
    AddItem(b, "kg", "flipped", "v", 2);
    AddItem(b, "kg", "intact", "v", 3);
    ASSERT_TRUE((*s)->Commit(b).ok());
  }
  ASSERT_EQ(ExecOn(path,
                   "UPDATE items SET value = 'w' WHERE CAST(key AS TEXT) = 'edited'; "
                   "UPDATE items SET logical = 9 WHERE CAST(key AS TEXT) = 'flipped'"),
            "");
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::vector<std::string> corrupt, loaded;
  LoadVisitor v;
  v.item = [&](const std::string&, const std::string& key, StoredItem&&) { loaded.push_back(key); };
  v.corrupt = [&](const std::string& kg, const std::string& key) {
    corrupt.push_back(kg + "/" + key);
  };
  ASSERT_TRUE((*s)->Load(v).ok());
  EXPECT_EQ(corrupt, (std::vector<std::string>{"kg/edited", "kg/flipped"}));
  EXPECT_EQ(loaded, std::vector<std::string>{"intact"});
  auto edited = (*s)->LoadItem("kg", "edited");
  ASSERT_TRUE(edited.ok());
  EXPECT_FALSE(edited.value().has_value());
  auto intact = (*s)->LoadItem("kg", "intact");
  ASSERT_TRUE(intact.ok() && intact.value().has_value());
  // Written again (a repair), it is whole.
  WriteBatch b;
  AddItem(b, "kg", "edited", "v", 1);
  ASSERT_TRUE((*s)->Commit(b).ok());
  corrupt.clear();
  loaded.clear();
  ASSERT_TRUE((*s)->Load(v).ok());
  EXPECT_EQ(corrupt, std::vector<std::string>{"kg/flipped"});
  EXPECT_EQ(loaded, (std::vector<std::string>{"edited", "intact"}));
}

TEST(SqliteStorageTest, ADatabaseThatLostCommitsSaysHowMany) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  auto commit = [&](SqliteStorage& s, int n) {
    for (int i = 0; i < n; ++i) {
      WriteBatch b;
      AddItem(b, "kg", "k" + std::to_string(i), "v", i + 1);
      ASSERT_TRUE(s.Commit(b).ok());
    }
  };
  {
    auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ((*s)->LostCommits(), 0u);
    commit(**s, 3);
  }
  fs::copy_file(path, dir.path() / "backup.db");  // closed: everything is in the file
  {
    auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ((*s)->LostCommits(), 0u);  // closed and reopened: nothing lost
    commit(**s, 4);
  }
  // The database as it was 4 commits ago (as after its write-ahead log was deleted).
  fs::copy_file(dir.path() / "backup.db", path, fs::copy_options::overwrite_existing);
  {
    auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ((*s)->LostCommits(), 4u);
    commit(**s, 1);  // from here on it counts from what it holds
  }
  fs::remove(path);  // the whole database
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->LostCommits(), 4u);
}

TEST(SqliteStorageTest, BelongsToTheFirstNodeThatClaimsIt) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  {
    auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    ASSERT_TRUE((*s)->ClaimFor("a").ok());
    EXPECT_TRUE((*s)->ClaimFor("a").ok());
  }
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->ClaimFor("a").ok());
  core::Status other = (*s)->ClaimFor("b");
  EXPECT_EQ(other.code(), core::Code::kFailedPrecondition);
  EXPECT_EQ(other.message(), path + " holds the state of node 'a', not of 'b'");
}

TEST(SqliteStorageTest, CreatesMissingParentDirectories) {
  TempDir dir;
  std::string path = (dir.path() / "a" / "b" / "c" / "store.db").string();
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(fs::exists(path));
}

TEST(SqliteStorageTest, RefusesAFileThatIsNotADatabase) {
  TempDir dir;
  std::string path = (dir.path() / "garbage.db").string();
  std::ofstream(path, std::ios::binary) << std::string(4096, 'G');
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::Code::kIOError);
  EXPECT_PRED2(Contains, s.status().message(), path);
  EXPECT_PRED2(Contains, s.status().message(), "not a database");
}

TEST(SqliteStorageTest, RefusesAPathUnderARegularFile) {
  TempDir dir;
  std::string file = (dir.path() / "file").string();
  std::ofstream(file) << "x";
  std::string path = file + "/store.db";
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_FALSE(s.ok());
  EXPECT_PRED2(Contains, s.status().message(), path);
}

TEST(SqliteStorageTest, RefusesAForeignSchemaVersion) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  ASSERT_EQ(ExecOn(path, "PRAGMA user_version=99"), "");
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::Code::kFailedPrecondition);
  EXPECT_PRED2(Contains, s.status().message(), path);
  EXPECT_PRED2(Contains, s.status().message(), "schema version 99");
  // The file is left as it was.
  EXPECT_EQ(QueryOne(path, "PRAGMA user_version"), "99");
  EXPECT_EQ(QueryOne(path, "SELECT count(*) FROM sqlite_master"), "0");
}

// A new store at `path` whose outbox entries fail to insert ("injected failure") until a function
// named "allow" exists. The trigger is made on a connection of its own before the store's opens
// the file, which it then keeps to itself; the store lifts it through its own connection.
core::Result<std::unique_ptr<SqliteStorage>> OpenWithOutboxTrap(const std::string& path) {
  auto made = SqliteStorage::Open(path, SqliteSync::kNormal);  // creates the schema
  if (!made.ok()) return made.status();
  made.value().reset();
  std::string error = ExecOn(path,
                             "CREATE TRIGGER fail BEFORE INSERT ON outbox "
                             "WHEN NOT EXISTS (SELECT 1 FROM functions WHERE name = 'allow') "
                             "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  if (!error.empty()) return core::Status::IOError(error);
  return SqliteStorage::Open(path, SqliteSync::kNormal);
}

TEST(SqliteStorageTest, FailedCommitAppliesNothingAndNamesThePath) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  auto s = OpenWithOutboxTrap(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  WriteBatch first;
  AddItem(first, "kg", "before", "v", 1);
  ASSERT_TRUE((*s)->Commit(first).ok());

  // The last step of the next batch fails.
  WriteBatch b;
  b.PutKeygroup(Keygroup("kg", true));
  b.DropItemsOf("kg");
  AddItem(b, "kg", "k", "v", 2);
  b.PutOutbox(Outbox("b", "kg", "k"));
  core::Status st = (*s)->Commit(b);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), core::Code::kIOError);
  EXPECT_PRED2(Contains, st.message(), path);
  EXPECT_PRED2(Contains, st.message(), "injected failure");
  Snapshot snap = LoadAll(**s);
  EXPECT_TRUE(snap.keygroups.empty());
  ASSERT_EQ(snap.items.size(), 1u);
  EXPECT_TRUE((snap.items.contains({"kg", "before"})));
  EXPECT_TRUE(snap.outbox.empty());

  // The transaction was ended: once the cause is gone, the same batch commits on the same
  // connection.
  WriteBatch allow;
  allow.PutFunction("allow", "spec");
  ASSERT_TRUE((*s)->Commit(allow).ok());
  st = (*s)->Commit(b);
  ASSERT_TRUE(st.ok()) << st.ToString();
  snap = LoadAll(**s);
  EXPECT_EQ(snap.keygroups.size(), 1u);
  EXPECT_EQ(snap.items.size(), 1u);
  EXPECT_TRUE((snap.items.contains({"kg", "k"})));
  EXPECT_EQ(snap.outbox.size(), 1u);
}

// A store growing under new random keys splits pages, and SQLite swaps split pages' numbers
// through a temporary one far past the end of the file. The page cache (adapters/sqlite_config.h)
// then passes on a commit's drop of the pages past the end only when it may hold one: not after
// every swap (which made SQLite scan its whole cache), but after a transaction that grew the file
// was rolled back. What the store holds is the same: every committed item reloads, and none of
// the rolled-back batch. (That a skipped drop was safe, no page held past the end, the cache's
// counts show, not the reload: SQLite writes a new page's content before it uses it.)
TEST(SqliteStorageTest, PageSwapsDoNotMakeEveryCommitScanTheCache) {
  ASSERT_TRUE(adapters::ConfigureSqlite());  // at start-up, before this process used SQLite
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  auto s = OpenWithOutboxTrap(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  std::mt19937_64 random(3);
  std::map<std::string, std::string> committed;
  auto batch_of_new_keys = [&](WriteBatch& b, int n, int64_t wall) {
    for (int i = 0; i < n; ++i) {
      std::string key = "key:" + std::to_string(random() % 1000000000);
      AddItem(b, "kg", key, "v" + std::to_string(wall), wall);
    }
  };
  const adapters::PageCacheCounts before = adapters::PageCacheCountsNow();
  constexpr int kCommits = 300;
  for (int c = 0; c < kCommits; ++c) {
    WriteBatch b;
    batch_of_new_keys(b, 13, c + 1);
    ASSERT_TRUE((*s)->Commit(b).ok());
    for (const auto& [ik, item] : b.items()) committed[ik.second] = item.value;
  }
  const adapters::PageCacheCounts grown = adapters::PageCacheCountsNow();
  EXPECT_GT(grown.swaps - before.swaps, 10u) << "no page swaps: the test shows nothing";
  EXPECT_GE(grown.skips - before.skips, static_cast<uint64_t>(kCommits - 10));
  EXPECT_LT(grown.drops - before.drops, 10u) << "drops passed on at most commits";

  // A batch that grows the file by hundreds of pages, then fails: the pages it added past the old
  // end are dropped from the cache.
  WriteBatch failing;
  batch_of_new_keys(failing, 3000, kCommits + 1);
  failing.PutOutbox(Outbox("b", "kg", "k"));
  ASSERT_FALSE((*s)->Commit(failing).ok());
  EXPECT_GT(adapters::PageCacheCountsNow().drops, grown.drops);
  WriteBatch allow;
  allow.PutFunction("allow", "spec");
  ASSERT_TRUE((*s)->Commit(allow).ok());
  for (int c = 0; c < 20; ++c) {
    WriteBatch b;
    batch_of_new_keys(b, 13, kCommits + 2 + c);
    ASSERT_TRUE((*s)->Commit(b).ok());
    for (const auto& [ik, item] : b.items()) committed[ik.second] = item.value;
  }
  s.value().reset();

  auto reopened = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  Snapshot snap = LoadAll(**reopened);
  ASSERT_EQ(snap.items.size(), committed.size());
  for (const auto& [key, value] : committed) {
    auto it = snap.items.find({"kg", key});
    ASSERT_NE(it, snap.items.end()) << key;
    EXPECT_EQ(it->second.value, value) << key;
  }
}

// While a node has its database open, the file is its alone: SQLite holds the locks for the
// connection's life (another connection is refused, so nothing can change the file under the
// node's in-memory state) and keeps the log's index in the heap (no -shm file to map and lock).
TEST(SqliteStorageTest, KeepsTheFileToItselfWhileOpen) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  WriteBatch b;
  AddItem(b, "kg", "k", "v", 1);
  ASSERT_TRUE((*s)->Commit(b).ok());
  EXPECT_TRUE(fs::exists(path + "-wal"));
  EXPECT_FALSE(fs::exists(path + "-shm"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_busy_timeout(db, 0);
  int rc = sqlite3_exec(db, "SELECT count(*) FROM items", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_EQ(rc, SQLITE_BUSY);
  s.value().reset();
  EXPECT_EQ(QueryOne(path, "SELECT count(*) FROM items"), "1");
}

TEST(SqliteStorageTest, OneOpenerAtATime) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  auto first = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(first.ok());
  auto second = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), core::Code::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos);
  first.value().reset();  // closing releases it
  EXPECT_TRUE(SqliteStorage::Open(path, SqliteSync::kNormal).ok());
}

// Runs `work` in a child process, which then waits until it is killed with SIGKILL (what `work`
// keeps beyond its own scope, or never closes, is still open then). Whether `work` returned true
// and the child died of that SIGKILL. The child only leaves through being killed, so nothing of the
// parent's test state runs twice.
bool RunThenSigkill(const std::function<bool()>& work) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::close(fds[0]);
    char c = work() ? 'y' : 'n';
    (void)!::write(fds[1], &c, 1);
    for (;;) ::pause();
  }
  ::close(fds[1]);
  char c = 0;
  ssize_t n = ::read(fds[0], &c, 1);
  ::close(fds[0]);
  ::kill(pid, SIGKILL);
  int wstatus = 0;
  bool killed =
      ::waitpid(pid, &wstatus, 0) == pid && WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL;
  return n == 1 && c == 'y' && killed;
}

TEST(SqliteStorageTest, CommitSurvivesSigkillRightAfterIt) {
  TempDir dir;
  std::string path = (dir.path() / "store.db").string();
  std::unique_ptr<SqliteStorage> open;  // the child's stays open until it is killed
  ASSERT_TRUE(RunThenSigkill([&] {
    auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
    bool ok = s.ok();
    if (ok) open = std::move(s.value());
    for (int round = 0; ok && round < 10; ++round) {
      WriteBatch b;
      if (round == 0) b.PutKeygroup(Keygroup("kg", true));
      for (int i = 0; i < 100; ++i) {
        AddItem(b, "kg", "k" + std::to_string(round * 100 + i), "v", round + 1);
      }
      b.PutOutbox(Outbox("b", "kg", "k" + std::to_string(round)));
      ok = open->Commit(b).ok();
    }
    // And one commit of about 2 MiB, which the write-ahead log gets in several writes
    // (adapters/sqlite_wal_vfs.h writes out what it gathered at each MiB).
    WriteBatch large;
    for (int i = 0; ok && i < 2000; ++i) {
      AddItem(large, "kg", "large" + std::to_string(i), std::string(1024, 'a' + i % 26), 1);
    }
    return ok && open->Commit(large).ok();
  })) << "the child could not open or commit, or did not die of the SIGKILL";
  // The commits only reached the WAL, never a checkpoint: reopening must replay it.
  EXPECT_TRUE(fs::exists(path + "-wal"));

  auto s = SqliteStorage::Open(path, SqliteSync::kNormal);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Snapshot snap = LoadAll(**s);
  EXPECT_EQ(snap.keygroups.size(), 1u);
  EXPECT_EQ(snap.items.size(), 3000u);
  EXPECT_EQ(snap.outbox.size(), 10u);
  EXPECT_EQ((snap.items[{"kg", "large1999"}].value), std::string(1024, 'a' + 1999 % 26));
}

// The write system calls this process made so far (/proc/self/io's syscw), or -1.
int64_t WriteCalls() {
  std::ifstream io("/proc/self/io");
  std::string name;
  int64_t value = 0;
  while (io >> name >> value) {
    if (name == "syscw:") return value;
  }
  return -1;
}

// A checkpoint copies the log's pages into the database file in ascending order: the VFS writes
// each run of adjacent pages in few writes rather than one per page, in SQLite's usual locking
// mode (where the checkpoint holds the checkpoint lock) and in the exclusive one the node uses
// (where it takes no lock and the log's index is in the heap).
TEST(SqliteWalVfsTest, ACheckpointWritesRunsOfAdjacentPagesInFewWrites) {
  for (bool exclusive : {false, true}) {
    SCOPED_TRACE(exclusive ? "exclusive locking" : "normal locking");
    TempDir dir;
    std::string path = (dir.path() / "vfs.db").string();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              adapters::GatheringWalVfs()),
              SQLITE_OK);
    auto exec = [&](const std::string& sql) {
      return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    };
    ASSERT_TRUE(exec(std::string(exclusive ? "PRAGMA locking_mode=EXCLUSIVE;" : "") +
                     "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "PRAGMA wal_autocheckpoint=0; CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)"));
    // About 2,000 new pages, at the end of the file one after the other, all in the log.
    ASSERT_TRUE(
        exec("WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 2000) "
             "INSERT INTO t SELECT x, randomblob(900) FROM s"));
    int64_t before = WriteCalls();
    ASSERT_GE(before, 0);
    ASSERT_TRUE(exec("PRAGMA wal_checkpoint(TRUNCATE)"));
    int64_t calls = WriteCalls() - before;
    EXPECT_GT(calls, 0);
    EXPECT_LT(calls, 200) << "the checkpoint wrote about a page per call";
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(q, 0), 2000);
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
}

// The gathering VFS under SQLite itself: many commits of random keys with a checkpoint every 64
// pages (so that checkpoints copy gathered runs of pages into the database file), a checkpoint
// that empties the log, and a commit larger than the VFS's buffer, then a SIGKILL. SQLite's own
// VFS must then find the file whole and every committed row in it.
TEST(SqliteWalVfsTest, CommitsAndCheckpointsWrittenThroughItAreWholeAfterASigkill) {
  TempDir dir;
  std::string path = (dir.path() / "vfs.db").string();
  constexpr int kCommits = 300;
  constexpr int kRowsPerCommit = 20;
  ASSERT_TRUE(RunThenSigkill([&] {
    sqlite3* db = nullptr;
    bool ok = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              adapters::GatheringWalVfs()) == SQLITE_OK;
    auto exec = [&](const std::string& sql) {
      ok = ok && sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    };
    // The commit frame wrote the commit out: nothing is held back after COMMIT.
    auto nothing_held = [&] {
      size_t held = 1;
      ok = ok && adapters::WriteOutHeldLog(db, &held) == SQLITE_OK && held == 0;
    };
    exec(
        "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        "PRAGMA wal_autocheckpoint=64;"
        "CREATE TABLE t(k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
    std::mt19937 random(7);
    for (int c = 0; ok && c < kCommits; ++c) {
      std::string sql = "BEGIN;";
      for (int r = 0; r < kRowsPerCommit; ++r) {
        sql += "INSERT INTO t VALUES('" + std::to_string(random()) + "-" + std::to_string(c) + "-" +
               std::to_string(r) + "', zeroblob(40));";
      }
      exec(sql + "COMMIT;");
      nothing_held();
      if (c == kCommits / 2) exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    exec(
        "BEGIN; WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 2000) "
        "INSERT INTO t SELECT 'large' || x, randomblob(1024) FROM s; COMMIT;");
    nothing_held();
    return ok;
  })) << "the child could not write through the VFS, or the VFS held back part of a commit "
         "after COMMIT";

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  auto one = [&](const char* sql) {
    sqlite3_stmt* q = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql, -1, &q, nullptr) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q);
    return out;
  };
  EXPECT_EQ(one("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(one("SELECT count(*) FROM t"), std::to_string(kCommits * kRowsPerCommit + 2000));
  EXPECT_EQ(one("SELECT count(*) FROM t WHERE k LIKE 'large%' AND length(v) = 1024"), "2000");
  sqlite3_close(db);
}

// A batch that holds only outbox erasures is not urgent (Core commits it with the next one); an
// erasure that replaces the upsert recorded before it in the same batch leaves none urgent either.
TEST(WriteBatchTest, OnlyOutboxErasuresAreNotUrgent) {
  WriteBatch batch;
  EXPECT_TRUE(batch.empty());
  EXPECT_FALSE(batch.urgent());
  batch.EraseOutbox("b", "kg", "k1");
  EXPECT_FALSE(batch.empty());
  EXPECT_FALSE(batch.urgent());
  batch.PutOutbox(OutboxRecord{"b", "kg", "k2", Version{1, 0, "a"}});
  EXPECT_TRUE(batch.urgent());
  batch.EraseOutbox("b", "kg", "k2");
  EXPECT_FALSE(batch.urgent());

  WriteBatch later;
  later.PutOutbox(OutboxRecord{"b", "kg", "k1", Version{2, 0, "a"}});
  batch.Absorb(std::move(later));
  EXPECT_TRUE(batch.urgent());
  WriteBatch erasing;
  erasing.EraseOutbox("b", "kg", "k1");
  batch.Absorb(std::move(erasing));
  EXPECT_FALSE(batch.urgent());
  batch.PutItem("kg", "k", StoredItem{"v", Version{3, 0, "a"}, false});
  EXPECT_TRUE(batch.urgent());
}

}  // namespace
}  // namespace enoki::node
