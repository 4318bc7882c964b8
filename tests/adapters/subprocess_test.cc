// Child processes: RunCommand's output, failures and timeout, and a child started on given CPUs.
#include <sched.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "adapters/subprocess.h"

namespace enoki::adapters {
namespace {

TEST(RunCommandTest, ReturnsTheOutputOrSaysWhatFailed) {
  auto out = RunCommand({"sh", "-c", "echo out; echo err >&2"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "out\nerr\n");
  auto failed = RunCommand({"sh", "-c", "echo why >&2; exit 3"});
  EXPECT_EQ(failed.status().message(), "sh -c echo why >&2; exit 3: exited with status 3: why");
  auto missing = RunCommand({"no-such-program-enoki"});
  EXPECT_FALSE(missing.ok());
  auto slow = RunCommand({"sleep", "5"}, std::chrono::milliseconds(100));
  EXPECT_EQ(slow.status().code(), core::Code::kDeadlineExceeded);
}

TEST(SubprocessTest, StartsOnTheCpusItIsGiven) {
  auto log = std::filesystem::temp_directory_path() /
             ("enoki-subprocess-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(log);
  cpu_set_t mine;
  ASSERT_EQ(::sched_getaffinity(0, sizeof mine, &mine), 0);
  int cpu = 0;
  while (!CPU_ISSET(cpu, &mine)) ++cpu;  // the first this process may use
  auto child = Subprocess::Start({"/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status"},
                                 log.string(), Placement{.netns = "", .cpus = {cpu}});
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  ASSERT_TRUE(child->Wait(std::chrono::seconds(5)).has_value());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "Cpus_allowed_list:\t" + std::to_string(cpu) + "\n");
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace enoki::adapters
