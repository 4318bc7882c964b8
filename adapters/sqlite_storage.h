// SqliteStorage: the StorageEngine of real nodes. One SQLite database file in WAL mode, whose
// commits reach the log in one write each (adapters/sqlite_wal_vfs.h); every Commit is one
// transaction. Tables (schema version 5, in PRAGMA user_version; a file of an older version is
// migrated on open):
//   keygroups(name PRIMARY KEY, meta BLOB, ready)    meta = serialized proto::KeygroupMeta
//   items(keygroup, key, value, wall_us, logical, node, deleted, checksum)
//                                                    PRIMARY KEY(keygroup, key)
//   outbox(peer, keygroup, key, wall_us, logical, node)           PRIMARY KEY(peer, keygroup, key)
//   functions(name PRIMARY KEY, spec BLOB)           spec = serialized proto::FunctionSpec
//   owner(node)                                      the node whose state this is (one row)
//   members(id PRIMARY KEY, entry BLOB)              entry = serialized proto::Member
//   commits(n)                                       commits made (one row)
// An item's checksum (FNV-1a of its keygroup, key, value, version and tombstone; NULL for an item
// written before schema 5) is checked when it is read: an item that fails it is not handed out
// (LoadVisitor::corrupt). Beside the database, "<path>.commits" holds the commit counter as of
// the last commit, so that a database that lost commits (its write-ahead log deleted) shows it.
// Keys and values are stored as blobs (arbitrary bytes); names as text of explicit length.
// Not thread-safe: one node's loop thread uses it.
#pragma once

#include <memory>
#include <string>

#include "node/storage.h"

struct sqlite3;
struct sqlite3_stmt;

namespace enoki::adapters {

enum class SqliteSync {
  kNormal,  // synchronous=NORMAL: a commit survives a crash of the process (SIGKILL)
  kFull,    // synchronous=FULL: a commit survives a crash of the machine (fsync per commit)
};

class SqliteStorage : public node::StorageEngine {
 public:
  // Opens (creating if needed, with its parent directories) the database at `path`, in WAL mode
  // with the given durability. Fails, never throws, with a message naming the path when the file
  // cannot be opened or written, is not a database, or has another schema version (a non-zero
  // PRAGMA user_version other than 1, 2 or 3: FailedPrecondition; a full disk: ResourceExhausted;
  // everything else: IOError), or when another SqliteStorage (in any process) has it open
  // (FailedPrecondition).
  static core::Result<std::unique_ptr<SqliteStorage>> Open(const std::string& path,
                                                           SqliteSync sync);
  // Closes the database. Whatever Commit made durable stays in the file (and its WAL).
  ~SqliteStorage() override;

  SqliteStorage(const SqliteStorage&) = delete;
  SqliteStorage& operator=(const SqliteStorage&) = delete;

  // Makes sure that the database holds node `node_id`'s state: records the id in a database that
  // has none yet (a new one, or one made before ids were recorded), and fails with
  // FailedPrecondition "<path> holds the state of node 'X', not of 'Y'" when another node's id is
  // recorded (a node started on another node's data would serve and replicate that node's
  // state as its own). IOError naming the path when SQLite fails.
  core::Status ClaimFor(const std::string& node_id);
  // Visits every keygroup (by name), then every item (by keygroup, key), then every outbox record
  // (by peer, keygroup, key), each in byte order. Fails with IOError naming the path when SQLite
  // fails or a stored catalog entry does not parse; records visited before that stay visited.
  core::Status Load(const node::LoadVisitor& visitor) override;
  // Applies the batch's net effect in one transaction (BEGIN IMMEDIATE ... COMMIT). On failure
  // nothing of the batch is applied, and the Status names the path and gives SQLite's message:
  // ResourceExhausted when the disk is full (SQLITE_FULL), else IOError (a read-only file
  // system, an I/O error). The next Commit tries again: nothing needs reopening once the disk
  // has space or is writable again.
  // An empty batch is ok and touches nothing.
  core::Status Commit(const node::WriteBatch& batch) override;
  // How many commits "<path>.commits" saw made that the database no longer holds, found at
  // Open: its write-ahead log or the database itself was deleted or damaged, or (durability
  // against process loss only) the machine went down before they were written back.
  uint64_t LostCommits() const override { return lost_commits_; }
  // The item as stored (none when its checksum does not match); IOError naming the path when
  // SQLite fails.
  core::Result<std::optional<node::StoredItem>> LoadItem(const std::string& keygroup,
                                                         const std::string& key) override;

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
    kPutFunction,
    kEraseFunction,
    kLoadFunctions,
    kLoadOwner,
    kPutOwner,
    kPutMember,
    kEraseMember,
    kLoadMembers,
    kLoadItem,
    kPutCommits,
    kLoadCommits,
    kStmtCount
  };
  SqliteStorage(std::string path, sqlite3* db, int lock_fd)
      : path_(std::move(path)), db_(db), lock_fd_(lock_fd) {}
  // Runs `sql` (one or more statements) without results.
  core::Status Exec(const char* sql);
  // IOError "<path>: <what>: <SQLite's last error message>" (ResourceExhausted when that error
  // is SQLITE_FULL); the same for result code `rc` in the second form.
  core::Status Error(const std::string& what) const;
  core::Status Error(const std::string& what, int rc) const;
  // Runs statement `s` to completion after its parameters were bound (`bind_rc` is the first
  // failure of binding them, or SQLITE_OK), then resets it and clears its bindings.
  core::Status Step(Stmt s, int bind_rc = 0);
  core::Status CommitInTransaction(const node::WriteBatch& batch);

  std::string path_;
  sqlite3* db_;
  int lock_fd_;          // holds an exclusive flock on "<path>.lock" while this object lives
  int counter_fd_ = -1;  // "<path>.commits": the commit counter after the last commit
  int64_t commits_ = 0;  // the database's commit counter
  uint64_t lost_commits_ = 0;
  sqlite3_stmt* stmts_[kStmtCount] = {};
};

}  // namespace enoki::adapters
