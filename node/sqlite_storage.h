// SqliteStorage: the StorageEngine of real nodes. One SQLite database file in WAL mode; every
// Commit is one transaction. Tables (schema version 1, in PRAGMA user_version):
//   keygroups(name PRIMARY KEY, meta BLOB, ready)    meta = serialized proto::KeygroupMeta
//   items(keygroup, key, value, wall_us, logical, node, deleted)  PRIMARY KEY(keygroup, key)
//   outbox(peer, keygroup, key, wall_us, logical, node)           PRIMARY KEY(peer, keygroup, key)
// Not thread-safe: one node's loop thread uses it.
#pragma once

#include <memory>
#include <string>

#include "node/storage.h"

struct sqlite3;
struct sqlite3_stmt;

namespace enoki::node {

enum class SqliteSync {
  kNormal,  // synchronous=NORMAL: a commit survives a crash of the process (SIGKILL)
  kFull,    // synchronous=FULL: a commit survives a crash of the machine (fsync per commit)
};

class SqliteStorage : public StorageEngine {
 public:
  // Opens (creating if needed, with its parent directory) the database at `path`. Fails with a
  // message naming the path when the file cannot be opened, is not a database, or has another
  // schema version.
  static core::Result<std::unique_ptr<SqliteStorage>> Open(const std::string& path,
                                                           SqliteSync sync);
  ~SqliteStorage() override;

  core::Status Load(const LoadVisitor& visitor) override;
  core::Status Commit(const WriteBatch& batch) override;

 private:
  enum Stmt {
    kBegin,
    kCommit,
    kRollback,
    kPutKeygroup,
    kDropItems,
    kPutItem,
    kEraseOutbox,
    kPutOutbox,
    kLoadKeygroups,
    kLoadItems,
    kLoadOutbox,
    kStmtCount
  };
  SqliteStorage(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  core::Status Exec(const char* sql);
  core::Status Error(const std::string& what) const;
  core::Status Step(Stmt s);
  core::Status CommitInTransaction(const WriteBatch& batch);

  std::string path_;
  sqlite3* db_;
  sqlite3_stmt* stmts_[kStmtCount] = {};
};

}  // namespace enoki::node
