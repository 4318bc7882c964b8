// SQLite storage engine: prepared statements, one transaction per batch.
#include "node/sqlite_storage.h"

#include <sqlite3.h>

#include <filesystem>

namespace enoki::node {
namespace {

constexpr int kSchemaVersion = 1;

const char* const kSchema = R"(
CREATE TABLE IF NOT EXISTS keygroups(name TEXT PRIMARY KEY, meta BLOB NOT NULL,
                                     ready INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items(keygroup TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,
                                 wall_us INTEGER NOT NULL, logical INTEGER NOT NULL,
                                 node TEXT NOT NULL, deleted INTEGER NOT NULL,
                                 PRIMARY KEY(keygroup, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox(peer TEXT NOT NULL, keygroup TEXT NOT NULL, key BLOB NOT NULL,
                                  wall_us INTEGER NOT NULL, logical INTEGER NOT NULL,
                                  node TEXT NOT NULL,
                                  PRIMARY KEY(peer, keygroup, key)) WITHOUT ROWID;
)";

const char* const kStatements[] = {
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "INSERT OR REPLACE INTO keygroups(name, meta, ready) VALUES(?1, ?2, ?3)",
    "DELETE FROM items WHERE keygroup = ?1",
    "INSERT OR REPLACE INTO items(keygroup, key, value, wall_us, logical, node, deleted) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "DELETE FROM outbox WHERE peer = ?1 AND keygroup = ?2 AND key = ?3",
    "INSERT OR REPLACE INTO outbox(peer, keygroup, key, wall_us, logical, node) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    "SELECT name, meta, ready FROM keygroups ORDER BY name",
    "SELECT keygroup, key, value, wall_us, logical, node, deleted FROM items "
    "ORDER BY keygroup, key",
    "SELECT peer, keygroup, key, wall_us, logical, node FROM outbox ORDER BY peer, keygroup, key",
};

// Binds text or blob bytes that outlive the statement's step (SQLITE_STATIC: no copy).
void BindBytes(sqlite3_stmt* s, int i, const std::string& bytes, bool blob) {
  if (blob) {
    sqlite3_bind_blob(s, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  } else {
    sqlite3_bind_text(s, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  }
}

std::string ColumnBytes(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
}

Version ColumnVersion(sqlite3_stmt* s, int first) {
  return Version{sqlite3_column_int64(s, first),
                 static_cast<uint32_t>(sqlite3_column_int64(s, first + 1)),
                 ColumnBytes(s, first + 2)};
}

void BindVersion(sqlite3_stmt* s, int first, const Version& v) {
  sqlite3_bind_int64(s, first, v.wall_us);
  sqlite3_bind_int64(s, first + 1, v.logical);
  BindBytes(s, first + 2, v.node, false);
}

}  // namespace

core::Result<std::unique_ptr<SqliteStorage>> SqliteStorage::Open(const std::string& path,
                                                                 SqliteSync sync) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec)
    return core::Status::IOError("cannot create directory " + parent.string() + ": " +
                                 ec.message());
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::unique_ptr<SqliteStorage> s(new SqliteStorage(path, db));
  if (rc != SQLITE_OK) return s->Error("cannot open database");
  sqlite3_busy_timeout(db, 5000);
  // Reading the schema version fails first on a file that is not a database.
  sqlite3_stmt* q = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, nullptr) != SQLITE_OK ||
      sqlite3_step(q) != SQLITE_ROW) {
    sqlite3_finalize(q);
    return s->Error("cannot read the schema version (not an Enoki database?)");
  }
  int version = sqlite3_column_int(q, 0);
  sqlite3_finalize(q);
  if (version != 0 && version != kSchemaVersion) {
    return core::Status::FailedPrecondition(path + ": schema version " + std::to_string(version) +
                                            ", this enoki reads version " +
                                            std::to_string(kSchemaVersion));
  }
  // Small pages: a commit writes every page it dirtied, and random keys dirty one leaf each, so
  // the page size is the write cost of one small item. Only takes effect on a new database.
  ENOKI_RETURN_IF_ERROR(s->Exec("PRAGMA page_size=1024"));
  if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &q, nullptr) != SQLITE_OK ||
      sqlite3_step(q) != SQLITE_ROW ||
      std::string(reinterpret_cast<const char*>(sqlite3_column_text(q, 0))) != "wal") {
    sqlite3_finalize(q);
    return s->Error("cannot switch to WAL mode");
  }
  sqlite3_finalize(q);
  ENOKI_RETURN_IF_ERROR(
      s->Exec(sync == SqliteSync::kFull ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  // Reads are served from memory, so SQLite's cache only needs the B-tree pages that writes touch;
  // a larger cache and fewer checkpoints mean fewer page reads and rewrites under random writes.
  ENOKI_RETURN_IF_ERROR(s->Exec("PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384"));
  ENOKI_RETURN_IF_ERROR(s->Exec(kSchema));
  ENOKI_RETURN_IF_ERROR(s->Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str()));
  for (int i = 0; i < kStmtCount; ++i) {
    if (sqlite3_prepare_v3(db, kStatements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts_[i],
                           nullptr) != SQLITE_OK) {
      return s->Error(std::string("cannot prepare '") + kStatements[i] + "'");
    }
  }
  return s;
}

SqliteStorage::~SqliteStorage() {
  for (auto* st : stmts_) sqlite3_finalize(st);
  sqlite3_close(db_);
}

core::Status SqliteStorage::Error(const std::string& what) const {
  return core::Status::IOError(path_ + ": " + what + ": " +
                               (db_ ? sqlite3_errmsg(db_) : "out of memory"));
}

core::Status SqliteStorage::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return core::Status::IOError(path_ + ": " + msg);
  }
  return core::Status::Ok();
}

core::Status SqliteStorage::Step(Stmt s) {
  sqlite3_stmt* st = stmts_[s];
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  if (rc != SQLITE_DONE) return Error(std::string("'") + kStatements[s] + "' failed");
  return core::Status::Ok();
}

core::Status SqliteStorage::Load(const LoadVisitor& visitor) {
  sqlite3_stmt* s = stmts_[kLoadKeygroups];
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    KeygroupRecord rec;
    std::string meta = ColumnBytes(s, 1);
    if (!rec.meta.ParseFromString(meta)) {
      sqlite3_reset(s);
      return core::Status::IOError(path_ + ": keygroup '" + ColumnBytes(s, 0) +
                                   "' has a corrupt catalog entry");
    }
    rec.ready = sqlite3_column_int(s, 2) != 0;
    if (visitor.keygroup) visitor.keygroup(std::move(rec));
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return Error("cannot load keygroups");

  s = stmts_[kLoadItems];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    StoredItem item{ColumnBytes(s, 2), ColumnVersion(s, 3), sqlite3_column_int(s, 6) != 0};
    if (visitor.item) visitor.item(ColumnBytes(s, 0), ColumnBytes(s, 1), std::move(item));
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return Error("cannot load items");

  s = stmts_[kLoadOutbox];
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    OutboxRecord rec{ColumnBytes(s, 0), ColumnBytes(s, 1), ColumnBytes(s, 2), ColumnVersion(s, 3)};
    if (visitor.outbox) visitor.outbox(std::move(rec));
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE) return Error("cannot load the outbox");
  return core::Status::Ok();
}

core::Status SqliteStorage::CommitInTransaction(const WriteBatch& batch) {
  for (const auto& rec : batch.keygroups) {
    std::string meta = rec.meta.SerializeAsString();
    sqlite3_stmt* s = stmts_[kPutKeygroup];
    BindBytes(s, 1, rec.meta.name(), false);
    BindBytes(s, 2, meta, true);
    sqlite3_bind_int(s, 3, rec.ready ? 1 : 0);
    ENOKI_RETURN_IF_ERROR(Step(kPutKeygroup));
  }
  for (const auto& name : batch.drop_items_of) {
    BindBytes(stmts_[kDropItems], 1, name, false);
    ENOKI_RETURN_IF_ERROR(Step(kDropItems));
  }
  for (size_t i = 0; i < batch.items.size(); ++i) {
    sqlite3_stmt* s = stmts_[kPutItem];
    const auto& [keygroup, key] = batch.item_keys[i];
    const StoredItem& item = batch.items[i];
    BindBytes(s, 1, keygroup, false);
    BindBytes(s, 2, key, true);
    BindBytes(s, 3, item.value, true);
    BindVersion(s, 4, item.version);
    sqlite3_bind_int(s, 7, item.deleted ? 1 : 0);
    ENOKI_RETURN_IF_ERROR(Step(kPutItem));
  }
  for (const auto& r : batch.outbox_erase) {
    sqlite3_stmt* s = stmts_[kEraseOutbox];
    BindBytes(s, 1, r.peer, false);
    BindBytes(s, 2, r.keygroup, false);
    BindBytes(s, 3, r.key, true);
    ENOKI_RETURN_IF_ERROR(Step(kEraseOutbox));
  }
  for (const auto& r : batch.outbox_put) {
    sqlite3_stmt* s = stmts_[kPutOutbox];
    BindBytes(s, 1, r.peer, false);
    BindBytes(s, 2, r.keygroup, false);
    BindBytes(s, 3, r.key, true);
    BindVersion(s, 4, r.version);
    ENOKI_RETURN_IF_ERROR(Step(kPutOutbox));
  }
  return core::Status::Ok();
}

core::Status SqliteStorage::Commit(const WriteBatch& batch) {
  if (batch.empty()) return core::Status::Ok();
  ENOKI_RETURN_IF_ERROR(Step(kBegin));
  core::Status st = CommitInTransaction(batch);
  if (st.ok()) st = Step(kCommit);
  if (!st.ok()) Step(kRollback).IgnoreError();  // the original error is what matters
  return st;
}

}  // namespace enoki::node
