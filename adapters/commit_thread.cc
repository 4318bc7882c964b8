// Commits on a thread of their own.
#include "adapters/commit_thread.h"

#include <pthread.h>

#include <utility>

namespace enoki::adapters {

CommitThread::CommitThread(std::unique_ptr<node::StorageEngine> engine, EventLoop& loop)
    : engine_(std::move(engine)), loop_(loop), thread_([this] { Work(); }) {}

CommitThread::~CommitThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

core::Status CommitThread::Commit(const node::WriteBatch& batch) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [this] { return !batch_ && !busy_; });
  return engine_->Commit(batch);
}

core::Status CommitThread::Idle() {
  std::lock_guard lock(mu_);
  if (batch_ || busy_) {
    return core::Status::FailedPrecondition(
        "the storage was read while a commit was under way (a defect of the node)");
  }
  return core::Status::Ok();
}

void CommitThread::StartCommit(std::shared_ptr<const node::WriteBatch> batch,
                               std::function<void(const core::Status&)> done) {
  {
    std::lock_guard lock(mu_);
    batch_ = std::move(batch);
    done_ = std::move(done);
  }
  changed_.notify_all();
}

void CommitThread::Work() {
  // So that top -H, perf and /proc/PID/task tell it from the loop.
  pthread_setname_np(pthread_self(), "enoki-commit");
  std::unique_lock lock(mu_);
  for (;;) {
    // A batch handed over before the end is still committed: the node may have answered
    // nothing for it yet, but it asked for it to be durable.
    changed_.wait(lock, [this] { return stop_ || batch_; });
    if (!batch_) return;
    auto batch = std::move(batch_);
    auto done = std::move(done_);
    busy_ = true;
    lock.unlock();
    core::Status status = engine_->Commit(*batch);
    lock.lock();
    // Free before the node hears of the outcome: after a failed commit it reads items back from
    // the engine at once (on its own thread: the engine is not used here again until the next
    // batch).
    busy_ = false;
    changed_.notify_all();
    loop_.Post([done = std::move(done), status] { done(status); });
  }
}

}  // namespace enoki::adapters
