// SQLite storage engine: a WAL-mode database, statements prepared once in Open and reused, one
// transaction per batch. Bound strings are SQLITE_STATIC: every statement runs to completion and
// has its bindings cleared while the batch it reads from is still alive.
#include "adapters/sqlite_storage.h"

#include <sqlite3.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

#include <spdlog/spdlog.h>

#include "adapters/sqlite_config.h"
#include "adapters/sqlite_wal_vfs.h"
#include "core/hash.h"

namespace enoki::adapters {

using node::KeygroupRecord;
using node::LoadVisitor;
using node::OutboxRecord;
using node::StoredItem;
using node::Version;
namespace {

// 1: keygroups, items, outbox. 2: also functions. 3: also owner. 4: also members. 5: items carry
// a checksum, and a commit counter. An older file is migrated on open: every table is created if
// it does not exist, and its items get a checksum column (NULL: written before checksums).
constexpr int kSchemaVersion = 5;

// Created together with the schema version in one transaction, so a file never has half a schema.
const char* const kSchema = R"(
CREATE TABLE IF NOT EXISTS keygroups(name TEXT PRIMARY KEY, meta BLOB NOT NULL,
                                     ready INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items(keygroup TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                                 wall_us INTEGER NOT NULL, logical INTEGER NOT NULL,
                                 node TEXT NOT NULL, deleted INTEGER NOT NULL,
                                 checksum INTEGER,
                                 PRIMARY KEY(keygroup, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox(peer TEXT NOT NULL, keygroup TEXT NOT NULL, key BLOB NOT NULL,
                                  wall_us INTEGER NOT NULL, logical INTEGER NOT NULL,
                                  node TEXT NOT NULL,
                                  PRIMARY KEY(peer, keygroup, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS functions(name TEXT PRIMARY KEY, spec BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS owner(node TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members(id TEXT PRIMARY KEY, entry BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS commits(n INTEGER NOT NULL);
INSERT INTO commits SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM commits);
)";

// Indexed by SqliteStorage::Stmt.
const char* const kStatements[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "INSERT OR REPLACE INTO keygroups(name, meta, ready) VALUES(?1, ?2, ?3)",
    "DELETE FROM items WHERE keygroup = ?1",
    "INSERT OR REPLACE INTO items(keygroup, key, value, wall_us, logical, node, deleted, checksum) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "DELETE FROM outbox WHERE peer = ?1 AND keygroup = ?2 AND key = ?3",
    "INSERT OR REPLACE INTO outbox(peer, keygroup, key, wall_us, logical, node) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    "SELECT name, meta, ready FROM keygroups ORDER BY name",
    "SELECT keygroup, key, value, wall_us, logical, node, deleted, checksum FROM items "
    "ORDER BY keygroup, key",
    "SELECT peer, keygroup, key, wall_us, logical, node FROM outbox ORDER BY peer, keygroup, key",
    "INSERT OR REPLACE INTO functions(name, spec) VALUES(?1, ?2)",
    "DELETE FROM functions WHERE name = ?1",
    "SELECT name, spec FROM functions ORDER BY name",
    "SELECT node FROM owner",
    "INSERT INTO owner(node) VALUES(?1)",
    "INSERT OR REPLACE INTO members(id, entry) VALUES(?1, ?2)",
    "DELETE FROM members WHERE id = ?1",
    "SELECT entry FROM members ORDER BY id",
    "SELECT value, wall_us, logical, node, deleted, checksum FROM items "
    "WHERE keygroup = ?1 AND key = ?2",
    "UPDATE commits SET n = ?1",
    "SELECT n FROM commits",
};

// Binds a statement's parameters in order, remembering the first failure. Strings are bound
// without copying (SQLITE_STATIC): they must outlive the statement's step.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* s) : s_(s) {}
  Binder& Text(const std::string& v) {
    return Check(sqlite3_bind_text64(s_, ++i_, v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8));
  }
  Binder& Blob(const std::string& v) {
    // A non-null pointer even for "": a zero-length blob, not NULL.
    return Check(sqlite3_bind_blob64(s_, ++i_, v.data(), v.size(), SQLITE_STATIC));
  }
  Binder& Int(int64_t v) { return Check(sqlite3_bind_int64(s_, ++i_, v)); }
  Binder& Ver(const Version& v) { return Int(v.wall_us).Int(v.logical).Text(v.node); }
  int rc() const { return rc_; }

 private:
  Binder& Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
    return *this;
  }
  sqlite3_stmt* s_;
  int i_ = 0;
  int rc_ = SQLITE_OK;
};

// The commit counter kept beside the database: 8 little-endian bytes at the start of `fd`.
void WriteCounter(int fd, int64_t n) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<unsigned char>(static_cast<uint64_t>(n) >> (8 * i));
  [[maybe_unused]] ssize_t written = ::pwrite(fd, bytes, sizeof bytes, 0);
}
// What WriteCounter left in `fd`; 0 when it holds none.
int64_t ReadCounter(int fd) {
  unsigned char bytes[8];
  if (::pread(fd, bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) return 0;
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return static_cast<int64_t>(n);
}

// Column i's bytes, text or blob, NUL bytes included.
std::string ColumnBytes(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);  // before sqlite3_column_bytes, as SQLite asks
  int n = sqlite3_column_bytes(s, i);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

// The checksum an item is stored with: of its keygroup, key, value, version and tombstone.
int64_t ItemChecksum(const std::string& keygroup, const std::string& key, const StoredItem& item) {
  uint64_t h = core::Fnv1aField(keygroup, core::kFnv1aOffset);
  h = core::Fnv1aField(key, h);
  h = core::Fnv1aField(item.value, h);
  h = core::Fnv1aField(std::to_string(item.version.wall_us), h);
  h = core::Fnv1aField(std::to_string(item.version.logical), h);
  h = core::Fnv1aField(item.version.node, h);
  return static_cast<int64_t>(core::Fnv1a(item.deleted ? "1" : "0", h));
}

// Whether the item read from `s` (its checksum in column `column`) is as it was stored: its
// checksum matches, or it has none (written before checksums).
bool Intact(sqlite3_stmt* s, int column, const std::string& keygroup, const std::string& key,
            const StoredItem& item) {
  return sqlite3_column_type(s, column) == SQLITE_NULL ||
         sqlite3_column_int64(s, column) == ItemChecksum(keygroup, key, item);
}

Version ColumnVersion(sqlite3_stmt* s, int first) {
  return Version{sqlite3_column_int64(s, first),
                 static_cast<uint32_t>(sqlite3_column_int64(s, first + 1)),
                 ColumnBytes(s, first + 2)};
}

}  // namespace

core::Result<std::unique_ptr<SqliteStorage>> SqliteStorage::Open(const std::string& path,
                                                                 SqliteSync sync) {
  if (path.empty()) return core::Status::InvalidArgument("empty database path");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) {
    return core::Status::IOError(path + ": cannot create directory " + parent.string() + ": " +
                                 ec.message());
  }
  // One process per database: a second node started on the same data directory would interleave
  // its writes with the first one's. The lock goes with the process, so a SIGKILL releases it.
  int lock_fd = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) {
    return core::Status::IOError(path + ".lock: cannot open: " + std::strerror(errno));
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return core::Status::FailedPrecondition(
        path +
        " is in use by another process (is a node already running on this data "
        "directory?)");
  }
  // Made at start-up; asked here too, so that no program links this file without them.
  if (!ConfigureSqlite()) {
    static std::once_flag warned;
    std::call_once(warned, [] {
      spdlog::warn(
          "SQLite was in use before the node's settings for it could be made: commits "
          "run with SQLite's defaults (adapters/sqlite_config.h)");
    });
  }
  sqlite3* db = nullptr;
  // Each commit's frames go to the write-ahead log in one write (adapters/sqlite_wal_vfs.h). No
  // mutex of the connection's own (SQLITE_OPEN_NOMUTEX): one thread uses it at a time (the node's,
  // or adapters/commit_thread.h's while the node waits for it), as SQLite then asks.
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           GatheringWalVfs());
  // Owns db from here on, even when opening failed (SQLite still hands out a handle then).
  std::unique_ptr<SqliteStorage> s(new SqliteStorage(path, db, lock_fd));
  if (rc != SQLITE_OK) return s->Error("cannot open database");
  if (sqlite3_db_readonly(db, "main") == 1) {
    return core::Status::IOError(path + ": the database file is read-only");
  }
  sqlite3_busy_timeout(db, 5000);
  // The node is the file's only user (the lock file above says so), so SQLite may keep its locks
  // for the connection's life and the write-ahead log's index in its heap: a transaction then
  // makes no fcntl calls and maps no shared memory. Set before the first read of the file, which
  // is the first WAL access of a WAL file, or SQLite keeps using the shared index (-shm).
  ENOKI_RETURN_IF_ERROR(s->Exec("PRAGMA locking_mode=EXCLUSIVE"));
  // Reading the schema version fails first on a file that is not a database.
  sqlite3_stmt* q = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr) != SQLITE_OK ||
      sqlite3_step(q) != SQLITE_ROW) {
    core::Status st = s->Error("cannot read the schema version (not a database?)");
    sqlite3_finalize(q);
    return st;
  }
  int version = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  if (version < 0 || version > kSchemaVersion) {
    return core::Status::FailedPrecondition(path + ": schema version " + std::to_string(version) +
                                            ", this enoki reads version " +
                                            std::to_string(kSchemaVersion));
  }
  // Small pages: a commit writes every page it dirtied, and random keys dirty one leaf each, so
  // the page size is the write cost of one small item. Only takes effect on a new database.
  ENOKI_RETURN_IF_ERROR(s->Exec("PRAGMA page_size=1024"));
  // journal_mode answers with the mode now in effect, which is not WAL where WAL is impossible.
  if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &q, nullptr) != SQLITE_OK ||
      sqlite3_step(q) != SQLITE_ROW) {
    core::Status st = s->Error("cannot switch to WAL mode");
    sqlite3_finalize(q);
    return st;
  }
  const unsigned char* mode = sqlite3_column_text(q, 0);
  std::string journal_mode = mode ? reinterpret_cast<const char*>(mode) : "";
  sqlite3_finalize(q);
  if (sqlite3_stricmp(journal_mode.c_str(), "wal") != 0) {
    return core::Status::IOError(path + ": cannot switch to WAL mode: journal mode stays '" +
                                 journal_mode + "'");
  }
  ENOKI_RETURN_IF_ERROR(
      s->Exec(sync == SqliteSync::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  // Reads are served from memory, so SQLite's cache only needs the B-tree pages that writes touch;
  // a larger cache and fewer checkpoints mean fewer page reads and rewrites under random writes.
  ENOKI_RETURN_IF_ERROR(s->Exec("PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384"));
  // A new file (or one whose schema creation never committed), or an older schema.
  if (version < kSchemaVersion) {
    // Versions 1 to 4 have items without their checksum.
    std::string migrate =
        version >= 1 ? "ALTER TABLE items ADD COLUMN checksum INTEGER;" : std::string();
    std::string schema = std::string("BEGIN IMMEDIATE;") + migrate + kSchema +
                         "PRAGMA user_version=" + std::to_string(kSchemaVersion) + "; COMMIT;";
    if (core::Status st = s->Exec(schema.c_str()); !st.ok()) {
      if (!sqlite3_get_autocommit(db)) s->Exec("ROLLBACK").IgnoreError();  // st says why
      return st;
    }
  }
  for (int i = 0; i < kStmtCount; ++i) {
    if (sqlite3_prepare_v3(db, kStatements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts_[i],
                           nullptr) != SQLITE_OK) {
      return s->Error(std::string("cannot prepare '") + kStatements[i] + "'");
    }
  }
  // The commits the database counts against those the file beside it saw made.
  s->counter_fd_ = ::open((path + ".commits").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->counter_fd_ < 0) {
    return core::Status::IOError(path + ".commits: cannot open: " + std::strerror(errno));
  }
  sqlite3_stmt* count = s->stmts_[kLoadCommits];
  int64_t counted = sqlite3_step(count) == SQLITE_ROW ? sqlite3_column_int64(count, 0) : 0;
  sqlite3_reset(count);
  s->commits_ = counted;
  s->lost_commits_ = std::max<int64_t>(0, ReadCounter(s->counter_fd_) - counted);
  return s;
}

SqliteStorage::~SqliteStorage() {
  for (auto* st : stmts_) sqlite3_finalize(st);  // a no-op on nullptr
  sqlite3_close(db_);                            // likewise
  if (counter_fd_ >= 0) ::close(counter_fd_);
  ::close(lock_fd_);  // releases the lock
}

core::Status SqliteStorage::Error(const std::string& what) const {
  if (db_ == nullptr) return core::Status::IOError(path_ + ": " + what + ": out of memory");
  return Error(what, sqlite3_errcode(db_));
}

core::Status SqliteStorage::Error(const std::string& what, int rc) const {
  // The connection's message when it is about `rc` (it may say more than the code's own).
  const char* said =
      db_ != nullptr && sqlite3_errcode(db_) == rc ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  std::string message = path_ + ": " + what + ": " + said;
  if ((rc & 0xff) == SQLITE_FULL) return core::Status::ResourceExhausted(std::move(message));
  return core::Status::IOError(std::move(message));
}

core::Status SqliteStorage::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return core::Status::IOError(path_ + ": " + msg);
  }
  return core::Status::Ok();
}

core::Status SqliteStorage::Step(Stmt s, int bind_rc) {
  sqlite3_stmt* st = stmts_[s];
  core::Status status;
  if (bind_rc != SQLITE_OK) {
    status = core::Status::IOError(path_ + ": cannot bind the parameters of '" + kStatements[s] +
                                   "': " + sqlite3_errstr(bind_rc));
  } else if (sqlite3_step(st) != SQLITE_DONE) {
    status = Error(std::string("'") + kStatements[s] + "' failed");  // before reset clears it
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return status;
}

core::Status SqliteStorage::ClaimFor(const std::string& node_id) {
  sqlite3_stmt* s = stmts_[kLoadOwner];
  int rc = sqlite3_step(s);
  std::string owner = rc == SQLITE_ROW ? ColumnBytes(s, 0) : std::string();
  sqlite3_reset(s);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Error("cannot read the owner");
  if (rc == SQLITE_DONE) return Step(kPutOwner, Binder(stmts_[kPutOwner]).Text(node_id).rc());
  if (owner != node_id) {
    return core::Status::FailedPrecondition(path_ + " holds the state of node '" + owner +
                                            "', not of '" + node_id + "'");
  }
  return core::Status::Ok();
}

core::Status SqliteStorage::Load(const LoadVisitor& visitor) {
  sqlite3_stmt* s = stmts_[kLoadKeygroups];
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    KeygroupRecord rec;
    if (!rec.meta.ParseFromString(ColumnBytes(s, 1))) {
      std::string name = ColumnBytes(s, 0);
      sqlite3_reset(s);
      return core::Status::IOError(path_ + ": keygroup '" + name + "' has a corrupt catalog entry");
    }
    rec.ready = sqlite3_column_int(s, 2) != 0;
    if (visitor.keygroup) visitor.keygroup(std::move(rec));
  }
  core::Status st = rc == SQLITE_DONE ? core::Status::Ok() : Error("cannot load keygroups");
  sqlite3_reset(s);
  if (!st.ok()) return st;

  s = stmts_[kLoadItems];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    std::string keygroup = ColumnBytes(s, 0);
    std::string key = ColumnBytes(s, 1);
    node::StoredItem item{ColumnBytes(s, 2), ColumnVersion(s, 3), sqlite3_column_int(s, 6) != 0};
    if (!Intact(s, 7, keygroup, key, item)) {
      if (visitor.corrupt) visitor.corrupt(keygroup, key);
    } else if (visitor.item) {
      visitor.item(keygroup, key, std::move(item));
    }
  }
  st = rc == SQLITE_DONE ? core::Status::Ok() : Error("cannot load items");
  sqlite3_reset(s);
  if (!st.ok()) return st;

  s = stmts_[kLoadOutbox];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    OutboxRecord rec{ColumnBytes(s, 0), ColumnBytes(s, 1), ColumnBytes(s, 2), ColumnVersion(s, 3)};
    if (visitor.outbox) visitor.outbox(std::move(rec));
  }
  st = rc == SQLITE_DONE ? core::Status::Ok() : Error("cannot load the outbox");
  sqlite3_reset(s);
  if (!st.ok()) return st;

  s = stmts_[kLoadFunctions];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    if (visitor.function) visitor.function(ColumnBytes(s, 0), ColumnBytes(s, 1));
  }
  st = rc == SQLITE_DONE ? core::Status::Ok() : Error("cannot load the functions");
  sqlite3_reset(s);
  if (!st.ok()) return st;

  s = stmts_[kLoadMembers];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    proto::Member member;
    if (!member.ParseFromString(ColumnBytes(s, 0))) {
      st = Error("a member entry does not parse");
      break;
    }
    if (visitor.member) visitor.member(std::move(member));
  }
  if (st.ok()) st = rc == SQLITE_DONE ? core::Status::Ok() : Error("cannot load the members");
  sqlite3_reset(s);
  return st;
}

core::Result<std::optional<StoredItem>> SqliteStorage::LoadItem(const std::string& keygroup,
                                                                const std::string& key) {
  sqlite3_stmt* s = stmts_[kLoadItem];
  std::optional<StoredItem> out;
  int rc = Binder(s).Text(keygroup).Blob(key).rc();
  if (rc == SQLITE_OK) rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    StoredItem item{ColumnBytes(s, 0), ColumnVersion(s, 1), sqlite3_column_int(s, 4) != 0};
    if (Intact(s, 5, keygroup, key, item)) out = std::move(item);
  }
  core::Status st =
      rc == SQLITE_ROW || rc == SQLITE_DONE ? core::Status::Ok() : Error("cannot load an item");
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (!st.ok()) return st;
  return out;
}

core::Status SqliteStorage::CommitInTransaction(const node::WriteBatch& batch) {
  for (const auto& [name, rec] : batch.keygroups()) {
    std::string meta = rec.meta.SerializeAsString();  // alive until Step returns
    Binder b(stmts_[kPutKeygroup]);
    b.Text(name).Blob(meta).Int(rec.ready ? 1 : 0);
    ENOKI_RETURN_IF_ERROR(Step(kPutKeygroup, b.rc()));
  }
  for (const auto& name : batch.drops()) {
    ENOKI_RETURN_IF_ERROR(Step(kDropItems, Binder(stmts_[kDropItems]).Text(name).rc()));
  }
  for (const auto& [key, item] : batch.items()) {
    Binder b(stmts_[kPutItem]);
    b.Text(key.first).Blob(key.second).Blob(item.value).Ver(item.version).Int(item.deleted ? 1 : 0);
    b.Int(ItemChecksum(key.first, key.second, item));
    ENOKI_RETURN_IF_ERROR(Step(kPutItem, b.rc()));
  }
  for (const auto& [key, version] : batch.outbox()) {
    const auto& [peer, keygroup, item_key] = key;
    Stmt stmt = version ? kPutOutbox : kEraseOutbox;
    Binder b(stmts_[stmt]);
    b.Text(peer).Text(keygroup).Blob(item_key);
    if (version) b.Ver(*version);
    ENOKI_RETURN_IF_ERROR(Step(stmt, b.rc()));
  }
  for (const auto& [name, spec] : batch.functions()) {
    Stmt stmt = spec ? kPutFunction : kEraseFunction;
    Binder b(stmts_[stmt]);
    b.Text(name);
    if (spec) b.Blob(*spec);
    ENOKI_RETURN_IF_ERROR(Step(stmt, b.rc()));
  }
  for (const auto& [id, member] : batch.members()) {
    Stmt stmt = member ? kPutMember : kEraseMember;
    std::string entry = member ? member->SerializeAsString() : "";  // alive until Step returns
    Binder b(stmts_[stmt]);
    b.Text(id);
    if (member) b.Blob(entry);
    ENOKI_RETURN_IF_ERROR(Step(stmt, b.rc()));
  }
  return core::Status::Ok();
}

core::Status SqliteStorage::Commit(const node::WriteBatch& batch) {
  if (batch.empty()) return core::Status::Ok();
  ENOKI_RETURN_IF_ERROR(Step(kBegin));
  core::Status st = CommitInTransaction(batch);
  // The commit counter, in the same transaction.
  int64_t commits = commits_ + 1;
  if (st.ok()) st = Step(kPutCommits, Binder(stmts_[kPutCommits]).Int(commits).rc());
  if (st.ok()) st = Step(kCommit);
  // A failed COMMIT may leave the transaction open; ROLLBACK then ends it. Its own failure (no
  // transaction left, because SQLite already rolled back) changes nothing: `st` says what failed.
  if (!st.ok() && !sqlite3_get_autocommit(db_)) Step(kRollback).IgnoreError();
  // The VFS wrote the commit out with its last frame; nothing is left unless SQLite wrote its
  // frames otherwise than the VFS expects, and then this write makes the commit durable. If that
  // fails, the commit is not acknowledged: the node holds the batch and commits it again.
  size_t held = 0;
  if (int rc = st.ok() ? WriteOutHeldLog(db_, &held) : SQLITE_OK; rc != SQLITE_OK) {
    st = Error("cannot write the commit to the write-ahead log", rc);
  }
  // Beside the database, where losing the database's write-ahead log does not take it back. A
  // failure to write it loses only the check (Open's), not the commit.
  if (st.ok()) {
    commits_ = commits;
    WriteCounter(counter_fd_, commits);
  }
  return st;
}

}  // namespace enoki::adapters
