// `enoki calibrate` (issue 17, items 5 and 7): measured while every core is kept busy by
// spinning threads, the repeats disagree (a busy machine's preemptions put milliseconds into the
// tails), and nothing is kept unless --force, which keeps it with a warning, the wake-up with the
// rest. Serial: the spinning threads would slow whatever ran beside them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include "tests/integration/commands.h"

namespace enoki {
namespace {

using testing::Enoki;
using testing::Output;

// Three spinning threads per core, from construction to destruction.
class Spinners {
 public:
  Spinners() {
    unsigned n = 3 * std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this] {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (!stop_.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < until) {
        }
      });
    }
  }
  ~Spinners() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

TEST(CalibrateTest, MeasuredOnABusyMachineItIsRefusedAndForceKeepsIt) {
  std::string file =
      (std::filesystem::temp_directory_path() / ("enoki-calibration-" + std::to_string(getpid())))
          .string();
  std::filesystem::remove(file);
  std::string scenario = std::string(ENOKI_SCENARIOS) + "/paper/simple.yaml";
  Spinners busy;
  Output refused = Enoki("calibrate " + scenario + " --file " + file);
  EXPECT_EQ(refused.status, 1) << refused.text;
  EXPECT_NE(refused.text.find("enoki: error: the repeats disagree, as on a busy machine:"),
            std::string::npos)
      << refused.text;
  EXPECT_NE(refused.text.find("nothing kept"), std::string::npos) << refused.text;
  EXPECT_FALSE(std::filesystem::exists(file));
  Output forced = Enoki("calibrate " + scenario + " --file " + file + " --force");
  EXPECT_EQ(forced.status, 0) << forced.text;
  EXPECT_NE(forced.text.find("enoki: warning: the repeats disagree"), std::string::npos)
      << forced.text;
  EXPECT_NE(forced.text.find("kept in " + file + " (digest "), std::string::npos) << forced.text;
  EXPECT_TRUE(std::filesystem::exists(file));
  // Every repeat's wake-up is printed, and what was kept of them.
  EXPECT_NE(forced.text.find("\n  wake-up: p50/p99 "), std::string::npos) << forced.text;
  EXPECT_NE(forced.text.find("\n  kept of each cost the repeat with the median p99: commit "),
            std::string::npos)
      << forced.text;
  std::ifstream kept(file);
  std::string text((std::istreambuf_iterator<char>(kept)), {});
  EXPECT_NE(text.find("\nwakeup\t"), std::string::npos) << text;
  EXPECT_NE(text.find("\ncommit\t"), std::string::npos) << text;
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace enoki
