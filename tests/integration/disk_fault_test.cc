// A real `enoki node` process on a disk that fills up, turns read-only or stalls (a small tmpfs,
// an ext4 image on a loop device, both mounted by the test and removed at its end): writes are
// refused with a clear error (or, on a stalled disk, wait) while reads are served, writes are
// taken again once the disk works, and no acknowledged write is lost. Needs root (mount); skipped
// without it.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "adapters/client.h"
#include "adapters/node_process.h"
#include "adapters/subprocess.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Runs a command to its end; its output when it succeeded, else a failure naming it.
::testing::AssertionResult RunOk(const std::vector<std::string>& argv) {
  auto out = adapters::RunCommand(argv, std::chrono::seconds(30));
  if (!out.ok()) {
    return ::testing::AssertionFailure() << argv[0] << ": " << out.status().ToString();
  }
  return ::testing::AssertionSuccess();
}

// A folder of the test's: the node's socket, ready file and log, and a mount point for its data.
class DiskFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: the test mounts the node's disk";
    // Its mounts in a mount namespace of its own (the node it starts inherits it): a network
    // namespace that a test beside it enters (`ip netns exec`) while the disk is mounted would
    // otherwise keep a copy of the mount, which this machine's private / does not unmount with
    // the test's, and e2fsck found the device "in use" (CI's sanitizer run, 2026-12-05).
    ASSERT_EQ(::unshare(CLONE_NEWNS), 0) << std::strerror(errno);
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
        << std::strerror(errno);
    dir_ = fs::temp_directory_path() / ("enoki-disk-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(data());
  }
  void TearDown() override {
    if (frozen_) {
      EXPECT_TRUE(RunOk({"fsfreeze", "--unfreeze", data().string()}));
    }
    node_.reset();
    if (mounted_) {
      EXPECT_EQ(::umount2(data().c_str(), MNT_DETACH), 0) << std::strerror(errno);
    }
    if (!loop_.empty()) {
      EXPECT_TRUE(RunOk({"losetup", "-d", loop_}));
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path data() const { return dir_ / "data"; }

  // An ext4 file system of 32 MiB on a loop device, mounted at data().
  void MountExt4() {
    fs::path image = dir_ / "disk.img";
    { std::ofstream(image).close(); }
    fs::resize_file(image, 32 << 20);
    ASSERT_TRUE(RunOk({"mkfs.ext4", "-q", "-F", image.string()}));
    auto loop = adapters::RunCommand({"losetup", "--find", "--show", image.string()}, seconds(30));
    ASSERT_TRUE(loop.ok()) << loop.status().ToString();
    loop_ = loop.value().substr(0, loop.value().find('\n'));
    ASSERT_EQ(::mount(loop_.c_str(), data().c_str(), "ext4", 0, "errors=remount-ro"), 0)
        << std::strerror(errno);
    mounted_ = true;
  }

  void StartNode() {
    std::string ready = (dir_ / "a.ready").string();
    fs::remove(ready);
    adapters::NodeProcessOptions o;
    o.binary = ENOKI_BINARY;
    o.id = "a";
    o.listen = "ipc://" + (dir_ / "a.sock").string();
    o.data_dir = (data() / "a").string();
    o.ready_file = ready;
    o.log_level = "warn";
    o.retry_interval = milliseconds(50);
    auto p = adapters::Subprocess::Start(adapters::NodeCommandLine(o), (dir_ / "a.log").string());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    node_.emplace(std::move(p.value()));
    auto info = adapters::WaitForReadyFile(ready, "a", *node_, seconds(10));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    client_.emplace(context_, o.listen, milliseconds(1000), "a");
  }

  // Puts 64 KiB values under new keys until the node refuses one (at most `max` puts); returns
  // the refusal. Keys it acknowledged go to `acked_`; one that got no answer (it was in the
  // commit that failed: held until a retry succeeds) to `unanswered_`.
  core::Status PutUntilRefused(int max) {
    std::string value(64 << 10, 'x');
    for (int i = 0; i < max; ++i) {
      std::string key = "k" + std::to_string(next_key_++);
      value[0] = static_cast<char>('a' + next_key_ % 26);
      auto r = client_->Put("kg", key, value);
      if (r.ok()) {
        acked_.emplace_back(key, value);
      } else if (r.status().code() == core::Code::kDeadlineExceeded) {
        unanswered_.emplace_back(key, value);
      } else {
        return r.status();
      }
    }
    return core::Status::Ok();
  }

  void ExpectAckedReadable() {
    for (const auto& [key, value] : acked_) {
      auto got = client_->Get("kg", key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
      EXPECT_EQ(got->value(), value) << key;
    }
  }

  void CreateKeygroup() {
    proto::CreateKeygroupRequest kg;
    kg.set_name("kg");
    kg.add_replicas("a");
    ASSERT_TRUE(client_->CreateKeygroup(kg).ok());
  }

  fs::path dir_;
  bool mounted_ = false;
  bool frozen_ = false;
  std::string loop_;  // the loop device, when one was set up
  zmq::context_t context_{1};
  std::optional<adapters::Subprocess> node_;
  std::optional<adapters::Client> client_;
  int next_key_ = 0;
  std::vector<std::pair<std::string, std::string>> acked_;
  std::vector<std::pair<std::string, std::string>> unanswered_;
};

TEST_F(DiskFaultTest, AFullDiskRefusesWritesServesReadsAndTakesWritesOnceThereIsSpace) {
  ASSERT_EQ(::mount("tmpfs", data().c_str(), "tmpfs", 0, "size=8m"), 0) << std::strerror(errno);
  mounted_ = true;
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ASSERT_NO_FATAL_FAILURE(CreateKeygroup());
  ASSERT_TRUE(PutUntilRefused(10).ok());

  // The rest of the disk goes to a file, 64 KiB at a time until it is full.
  fs::path filler = data() / "filler";
  {
    std::ofstream out(filler, std::ios::binary);
    std::string block(64 << 10, 'f');
    for (int i = 0; i < 200 && out.write(block.data(), block.size()); ++i) out.flush();
  }
  core::Status refused = PutUntilRefused(400);
  ASSERT_EQ(refused.code(), core::Code::kResourceExhausted) << refused.ToString();
  EXPECT_NE(refused.message().find("node a cannot make writes durable"), std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("database or disk is full"), std::string::npos)
      << refused.message();
  EXPECT_LE(unanswered_.size(), 1u);
  ExpectAckedReadable();
  auto status = client_->NodeStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_NE(status->storage_fault().find("database or disk is full"), std::string::npos);

  // Space again: writes are taken, without a restart, within the retry backoff (2 s at most).
  fs::remove(filler);
  bool taken = false;
  for (int i = 0; i < 50 && !taken; ++i) {
    taken = client_->Put("kg", "after", "space").ok();
    if (!taken) std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(taken) << "writes are still refused after the space came back";
  status = client_->NodeStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->storage_fault(), "");
  // What was in the failed commit was made durable with the retry.
  for (const auto& kv : unanswered_) acked_.push_back(kv);
  acked_.emplace_back("after", "space");

  // Nothing acknowledged is lost across a crash.
  node_->Kill();
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ExpectAckedReadable();
}

TEST_F(DiskFaultTest, AFileSystemThatTurnsReadOnlyRefusesWritesAndServesReads) {
  ASSERT_NO_FATAL_FAILURE(MountExt4());
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ASSERT_NO_FATAL_FAILURE(CreateKeygroup());
  ASSERT_TRUE(PutUntilRefused(10).ok());

  // The kernel's own reaction to a file system error: it turns read-only. (What was written is
  // on the disk first: the node's default durability survives a crash of the process, and a
  // file system that aborts may drop what it had not written back.)
  ::sync();
  std::string device = fs::path(loop_).filename().string();
  {
    std::ofstream trigger("/sys/fs/ext4/" + device + "/trigger_fs_error");
    ASSERT_TRUE(trigger << "enoki test\n") << "cannot trigger an error on " << device;
  }
  core::Status refused = PutUntilRefused(3);
  ASSERT_EQ(refused.code(), core::Code::kUnavailable) << refused.ToString();
  EXPECT_NE(refused.message().find("node a cannot make writes durable"), std::string::npos)
      << refused.message();
  EXPECT_LE(unanswered_.size(), 1u);
  ExpectAckedReadable();
  auto created = client_->Call([] {
    proto::Request r;
    r.mutable_create_keygroup()->set_name("other");
    r.mutable_create_keygroup()->add_replicas("a");
    return r;
  }());
  EXPECT_EQ(created.status().code(), core::Code::kUnavailable) << created.status().ToString();

  // Its data is back once the file system is repaired; the write held when it failed was never
  // acknowledged, and nothing that was is lost.
  EXPECT_EQ(node_->Stop(), 0);
  node_.reset();
  ASSERT_EQ(::umount2(data().c_str(), 0), 0) << std::strerror(errno);
  mounted_ = false;
  auto fsck = adapters::RunCommand({"e2fsck", "-f", "-y", loop_}, seconds(60));
  // Status 1: it corrected errors (the one the test made).
  ASSERT_TRUE(fsck.ok() ||
              fsck.status().message().find("exited with status 1") != std::string::npos)
      << fsck.status().ToString();
  ASSERT_EQ(::mount(loop_.c_str(), data().c_str(), "ext4", 0, "errors=remount-ro"), 0)
      << std::strerror(errno);
  mounted_ = true;
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ExpectAckedReadable();
  EXPECT_TRUE(client_->Put("kg", "after", "repair").ok());
}

// A frozen file system (fsfreeze: every write to it blocks until it is thawed) stalls the
// node's commit, not the node: reads of what is durable and its status are answered throughout,
// the write waits, and is acknowledged (and kept) once the file system thaws.
TEST_F(DiskFaultTest, AFrozenFileSystemHoldsTheWriteButNotTheReads) {
  ASSERT_NO_FATAL_FAILURE(MountExt4());
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ASSERT_NO_FATAL_FAILURE(CreateKeygroup());
  ASSERT_TRUE(PutUntilRefused(5).ok());
  ASSERT_EQ(acked_.size(), 5u);

  ASSERT_TRUE(RunOk({"fsfreeze", "--freeze", data().string()}));
  frozen_ = true;
  // The write, from a client of its own that waits long enough.
  std::future<core::Status> put = std::async(std::launch::async, [this] {
    zmq::context_t context(1);
    adapters::Client slow(context, "ipc://" + (dir_ / "a.sock").string(), seconds(30), "a");
    auto r = slow.Put("kg", "frozen", "thawed");
    return r.ok() ? core::Status::Ok() : r.status();
  });
  // For two seconds, every read is answered within the client's second.
  int answered = 0;
  for (int i = 0; i < 20; ++i) {
    const auto& [key, value] = acked_[i % acked_.size()];
    auto got = client_->Get("kg", key);
    ASSERT_TRUE(got.ok()) << "a read while the file system is frozen: " << got.status().ToString();
    EXPECT_EQ(got->value(), value);
    ++answered;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(answered, 20);
  // Its status says that the commit under way has run for the whole freeze.
  auto status = client_->NodeStatus();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_GE(status->commit_running_ms(), 1500);
  EXPECT_EQ(status->storage_fault(), "");
  EXPECT_EQ(put.wait_for(milliseconds(0)), std::future_status::timeout)
      << "a write was answered while its disk was frozen";

  ASSERT_TRUE(RunOk({"fsfreeze", "--unfreeze", data().string()}));
  frozen_ = false;
  core::Status written = put.get();
  EXPECT_TRUE(written.ok()) << written.ToString();
  acked_.emplace_back("frozen", "thawed");
  node_->Kill();
  ASSERT_NO_FATAL_FAILURE(StartNode());
  ExpectAckedReadable();
}

}  // namespace
}  // namespace enoki
