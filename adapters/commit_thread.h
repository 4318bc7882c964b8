// CommitThread: a storage engine that commits on a thread of its own, so that a slow or stalled
// disk (a frozen file system, a device that takes seconds per write) holds up only what waits
// for the commit, never the node's event loop: reads of durable items, pings and everything else
// go on meanwhile (node/core.h says what waits). It wraps another engine (SqliteStorage), hands it
// one batch at a time, and posts the outcome back to the loop. Everything else (loading at
// start-up, reading one item back after a failed commit) runs on the caller's thread, which the
// node does only while no commit is under way.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "adapters/event_loop.h"
#include "node/storage.h"

namespace enoki::adapters {

class CommitThread : public node::StorageEngine {
 public:
  // Starts the thread. `loop` must outlive this object.
  CommitThread(std::unique_ptr<node::StorageEngine> engine, EventLoop& loop);
  // Waits for the commit under way to end (what it commits is durable then); its outcome is not
  // delivered.
  ~CommitThread() override;
  CommitThread(const CommitThread&) = delete;
  CommitThread& operator=(const CommitThread&) = delete;

  // On the caller's thread, and only while no commit is under way (the engine's connection has no
  // mutex of its own: adapters/sqlite_storage.cc); FailedPrecondition, touching nothing, if one is.
  core::Status Load(const node::LoadVisitor& visitor) override {
    ENOKI_RETURN_IF_ERROR(Idle());
    return engine_->Load(visitor);
  }
  // On the caller's thread, after the commit under way (if any) ended.
  core::Status Commit(const node::WriteBatch& batch) override;
  // Commits `batch` on the thread and posts `done` with the outcome to the loop.
  void StartCommit(std::shared_ptr<const node::WriteBatch> batch,
                   std::function<void(const core::Status&)> done) override;
  uint64_t LostCommits() const override { return engine_->LostCommits(); }
  core::Result<std::optional<node::StoredItem>> LoadItem(const std::string& keygroup,
                                                         const std::string& key) override {
    ENOKI_RETURN_IF_ERROR(Idle());
    return engine_->LoadItem(keygroup, key);
  }

 private:
  void Work();
  // Ok when no batch is handed over or being committed.
  core::Status Idle();

  std::unique_ptr<node::StorageEngine> engine_;
  EventLoop& loop_;
  std::mutex mu_;
  std::condition_variable changed_;
  // Guarded by mu_: the batch to commit and who hears of it (null: none), and whether to end.
  std::shared_ptr<const node::WriteBatch> batch_;
  std::function<void(const core::Status&)> done_;
  bool busy_ = false;  // a commit is under way (taken by the thread, not yet ended)
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace enoki::adapters
