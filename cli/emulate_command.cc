// `enoki emulate SCENARIO`: runs a scenario on this host (testbed/emulation.h) and prints the
// summary table and the results database's path.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "core/subprocess.h"
#include "testbed/emulation.h"

namespace enoki::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnInterrupt(int) { g_stop.store(true); }

struct EmulateArgs {
  std::string file;
  double duration_s = 0;
  std::string results;
  bool quiet = false;
};

int Emulate(const EmulateArgs& args) {
  auto loaded = testbed::LoadScenario(args.file);
  if (!loaded.ok()) return ReportError(loaded.status().message());
  testbed::Scenario scenario = std::move(loaded.value());
  testbed::EmulateOptions options;
  options.enoki_binary = core::Subprocess::SelfPath();
  options.results_dir = args.results;
  options.progress = !args.quiet && ::isatty(STDERR_FILENO);
  std::ifstream in(args.file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  options.scenario_text = text.str();
  if (args.duration_s > 0) {
    options.time_scale = testbed::Shorten(
        scenario,
        std::chrono::duration_cast<core::Duration>(std::chrono::duration<double>(args.duration_s)));
    if (options.time_scale < 1) {
      std::printf("shortened to about %g s: every time and request count scaled by %.4f\n",
                  args.duration_s, options.time_scale);
    } else {
      std::printf(
          "--duration %g: not shortened (the scenario is that short already, or has no "
          "length to scale: closed loops bounded by request counts only)\n",
          args.duration_s);
    }
  }
  std::printf("emulating %s: %zu nodes, links by the user-space shaper\n", scenario.name.c_str(),
              scenario.nodes.size());
  std::fflush(stdout);
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  auto result = testbed::Emulate(scenario, options, [] { return g_stop.load(); });
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!result.ok()) return ReportError(result.status().message());
  std::printf("%-20s %8s %7s %10s %10s %10s %10s\n", "workload", "requests", "errors", "p50 ms",
              "p95 ms", "p99 ms", "max ms");
  for (const auto& w : result->workloads) {
    std::printf("%-20s %8lld %7lld %10.3f %10.3f %10.3f %10.3f\n", w.name.c_str(),
                static_cast<long long>(w.count), static_cast<long long>(w.errors), w.p50_ms,
                w.p95_ms, w.p99_ms, w.max_ms);
  }
  for (const auto& k : result->keygroups) {
    std::printf("keygroup %s: ", k.keygroup.c_str());
    for (const auto& r : k.replicas) {
      std::printf("%s %lld items%s%s; ", r.node.c_str(), static_cast<long long>(r.items),
                  r.error.empty() ? "" : ", ", r.error.c_str());
    }
    std::printf("%s\n", k.converged ? "replicas agree" : "REPLICAS DIFFER");
  }
  std::printf("(the first %g s of each workload cut as warm-up)\nresults: %s%s\n",
              core::ToMillis(scenario.warmup) / 1000, result->database.c_str(),
              result->interrupted ? " (interrupted)" : "");
  return result->interrupted ? 130 : 0;
}

}  // namespace

void AddEmulateCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<EmulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "emulate",
      "Run a scenario on this host: a real node process per cloud and edge node, links emulated "
      "by the user-space shaper, the workloads and the timeline; writes a results database");
  cmd->add_option("scenario", args->file, "The scenario file (docs/scenarios.md)")->required();
  cmd->add_option("--duration", args->duration_s,
                  "Shorten the run to about this many seconds: every time in the scenario and "
                  "every request count scale down alike")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--results", args->results,
                  "Folder for the results database and the nodes' logs (default: the "
                  "scenario's `results`)");
  cmd->add_flag("-q,--quiet", args->quiet, "No progress line");
  cmd->callback([&run, args] { run = [args] { return Emulate(*args); }; });
}

}  // namespace enoki::cli
