// `enoki emulate SCENARIO`: runs a scenario on this host (testbed/emulation.h) and prints its
// report (testbed/report.h); `enoki simulate SCENARIO` runs it in virtual time
// (testbed/simulation.h); `enoki run SCENARIO --cluster FILE` on nodes that are running already
// (testbed/cluster.h); `enoki report RUN.db` prints any of them again later.
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <atomic>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <set>
#include <vector>

#include "adapters/subprocess.h"
#include "cli/commands.h"
#include "testbed/calibration.h"
#include "testbed/client_host.h"
#include "testbed/cluster.h"
#include "testbed/emulation.h"
#include "testbed/plots.h"
#include "testbed/report.h"
#include "testbed/simulation.h"

namespace enoki::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnInterrupt(int) { g_stop.store(true); }

struct EmulateArgs {
  std::string file;
  double duration_s = 0;
  std::string results;
  bool quiet = false;
  bool strict = false;  // emulate, run: an overloaded run fails
  std::string links = "auto";
  std::string calibration;          // simulate
  std::string cluster;              // run: the cluster file
  std::string client;               // run: the client host this process is
  int wait_s = 600;                 // run --client: how long to wait for the driver
  double test_clock_offset_ms = 0;  // run --client: tests only
};

// The scenario of `args`, shortened by --duration if given (*time_scale: the factor).
core::Result<testbed::Scenario> LoadForRun(const EmulateArgs& args, double* time_scale) {
  auto scenario = testbed::LoadScenario(args.file);
  if (!scenario.ok() || args.duration_s <= 0) return scenario;
  *time_scale = testbed::Shorten(*scenario, std::chrono::duration_cast<core::Duration>(
                                                std::chrono::duration<double>(args.duration_s)));
  if (*time_scale < 1) {
    std::printf("shortened to about %g s: every time and request count scaled by %.4f\n",
                args.duration_s, *time_scale);
  } else {
    std::printf(
        "--duration %g: not shortened (the scenario is that short already, or has no "
        "length to scale: closed loops bounded by request counts only)\n",
        args.duration_s);
  }
  return scenario;
}

// The options `enoki emulate`, `enoki simulate` and `enoki run` share.
void AddRunOptions(CLI::App* cmd, EmulateArgs& args) {
  cmd->add_option("scenario", args.file, "The scenario file (docs/scenarios.md)")->required();
  cmd->add_option("--duration", args.duration_s,
                  "Shorten the run to about this many seconds: workload starts, durations and "
                  "think times, the timeline, the warm-up and request counts scale down alike "
                  "(not link delays, rates or timeouts)")
      ->check(CLI::Validator(
          [](std::string& v) {
            double seconds = 0;
            return CLI::detail::lexical_cast(v, seconds) && seconds > 0
                       ? std::string()
                       : "'" + v + "' is not a number of seconds above 0";
          },
          "SECONDS"));
  cmd->add_option("--results", args.results,
                  "Folder for the results database (and an emulation's node logs; default: the "
                  "scenario's `results`)");
}

// --strict, of the real-time modes.
void AddStrictFlag(CLI::App* cmd, EmulateArgs& args) {
  cmd->add_flag("--strict", args.strict,
                "Exit with status 1 when the run was overloaded: the callers sent, or a process "
                "ran its timers or handed on shaped messages, more than 5 ms late at the p99 "
                "(the report says how late they were)");
}

// A run whose report lists errors (a node that died, an event that failed) ends with status 1.
int ErrorsExit(const testbed::Report& report) {
  if (report.errors.empty()) return 0;
  std::fflush(stdout);
  std::fprintf(stderr, "enoki: the run recorded %zu error%s (ERROR lines above)\n",
               report.errors.size(), report.errors.size() == 1 ? "" : "s");
  return 1;
}

// Runs a real-time mode (`run`, handed what says that Ctrl-C or SIGTERM asked it to stop), then
// prints the report of the database it wrote. Exit status: 130 when interrupted, 1 when `strict`
// and the run was overloaded, else ErrorsExit's.
template <typename Run>
int RunAndReport(bool strict, Run run) {
  std::fflush(stdout);
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  auto result = run([] { return g_stop.load(); });
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!result.ok()) return ReportError(result.status().message());
  auto report = testbed::ReadReport(result->database);
  if (!report.ok()) return ReportError(report.status().message());
  std::printf("%s", testbed::FormatReport(*report).c_str());
  if (result->interrupted) return 130;
  if (strict && report->Overloaded()) {
    return ReportError("the run was overloaded (--strict): " + report->OverloadCauses() +
                       "; run it on a quieter host, or with fewer nodes or callers");
  }
  return ErrorsExit(*report);
}

int Emulate(const EmulateArgs& args) {
  testbed::EmulateOptions options;
  auto loaded = LoadForRun(args, &options.time_scale);
  if (!loaded.ok()) return ReportError(loaded.status().message());
  testbed::Scenario scenario = std::move(loaded.value());
  options.enoki_binary = adapters::Subprocess::SelfPath();
  options.results_dir = args.results;
  options.progress = !args.quiet && ::isatty(STDERR_FILENO);
  auto links = testbed::ChooseLinks(args.links == "netem"    ? testbed::Links::kNetem
                                    : args.links == "shaper" ? testbed::Links::kShaper
                                                             : testbed::Links::kAuto,
                                    scenario);
  if (!links.ok()) return ReportError(links.status().message());
  options.links = links->links;
  std::printf("emulating %s: %zu nodes, links by %s (%s)\n", scenario.name.c_str(),
              scenario.nodes.size(),
              links->links == testbed::Links::kNetem ? "netem in network namespaces"
                                                     : "the user-space shaper",
              links->why.c_str());
  return RunAndReport(args.strict, [&](const std::function<bool()>& stop) {
    return testbed::Emulate(scenario, options, stop);
  });
}

int Simulate(const EmulateArgs& args) {
  testbed::SimulateOptions options;
  auto loaded = LoadForRun(args, &options.time_scale);
  if (!loaded.ok()) return ReportError(loaded.status().message());
  testbed::Scenario scenario = std::move(loaded.value());
  options.results_dir = args.results;
  options.calibration = args.calibration;
  std::printf("simulating %s: %zu nodes, in virtual time\n", scenario.name.c_str(),
              scenario.nodes.size());
  spdlog::set_level(spdlog::level::warn);  // the nodes' start-up lines are not news here
  std::fflush(stdout);
  auto start = std::chrono::steady_clock::now();
  auto run = testbed::Simulate(scenario, options);
  if (!run.ok()) return ReportError(run.status().message());
  auto report = testbed::ReadReport(run->database);
  if (!report.ok()) return ReportError(report.status().message());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s", testbed::FormatReport(*report).c_str());
  std::printf(
      "simulated %.1f s of virtual time in %.2f s (set-up %.2f, run %.2f, writing results %.2f, "
      "report %.2f): %llu events, %.0f events/s while running\n",
      std::chrono::duration<double>(run->virtual_time).count(), seconds, run->setup_s, run->run_s,
      run->write_s, seconds - run->setup_s - run->run_s - run->write_s,
      static_cast<unsigned long long>(run->events),
      run->run_s > 0 ? static_cast<double>(run->events) / run->run_s : 0.0);
  return ErrorsExit(*report);
}

// `enoki run --client NAME`: this process is a client host of the run (testbed/client_host.h).
int RunClientHost(const EmulateArgs& args, const testbed::Scenario& scenario,
                  const testbed::ClusterFile& cluster, double time_scale) {
  testbed::ClientHostOptions options;
  options.progress = !args.quiet && ::isatty(STDERR_FILENO);
  options.time_scale = time_scale;
  options.wait = std::chrono::seconds(args.wait_s);
  options.clock_offset = std::chrono::nanoseconds(std::llround(args.test_clock_offset_ms * 1e6));
  std::fflush(stdout);
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  auto result =
      testbed::RunClientHost(scenario, cluster, args.client, options, [] { return g_stop.load(); });
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (options.progress) std::fprintf(stderr, "\n");
  if (!result.ok()) return ReportError(result.status().message());
  if (result->interrupted) {
    std::printf("client host %s: interrupted after %lld requests\n", args.client.c_str(),
                static_cast<long long>(result->requests));
    return 130;
  }
  if (result->stopped) {
    std::printf("client host %s: stopped by the driver after %lld requests (%lld not OK)\n",
                args.client.c_str(), static_cast<long long>(result->requests),
                static_cast<long long>(result->errors));
    return 0;
  }
  std::printf(
      "client host %s: %lld requests (%lld not OK) handed to the driver, which reports "
      "the run\n",
      args.client.c_str(), static_cast<long long>(result->requests),
      static_cast<long long>(result->errors));
  return 0;
}

int RunOnCluster(const EmulateArgs& args) {
  testbed::ClusterOptions options;
  auto loaded = LoadForRun(args, &options.time_scale);
  if (!loaded.ok()) return ReportError(loaded.status().message());
  testbed::Scenario scenario = std::move(loaded.value());
  // A cluster file that does not fit, and what it cannot run, before anything runs.
  auto cluster = testbed::LoadClusterFile(args.cluster, scenario);
  if (!cluster.ok()) return ReportError(cluster.status().message());
  if (auto st = testbed::CheckClusterScenario(scenario, *cluster); !st.ok()) {
    return ReportError(st.message());
  }
  if (!args.client.empty()) return RunClientHost(args, scenario, *cluster, options.time_scale);
  options.results_dir = args.results;
  options.progress = !args.quiet && ::isatty(STDERR_FILENO);
  std::printf("running %s on %zu running nodes (%s)%s\n", scenario.name.c_str(),
              cluster->nodes.size(), args.cluster.c_str(),
              cluster->identity.public_key.empty() ? "" : ", CURVE");
  return RunAndReport(args.strict, [&](const std::function<bool()>& stop) {
    return testbed::RunOnCluster(scenario, *cluster, options, stop);
  });
}

struct CalibrateArgs {
  std::vector<std::string> scenarios;
  std::string file = testbed::DefaultCalibrationPath();
  int repeats = 3;
  bool force = false;
};

// `enoki calibrate`: measures the commit, the wake-up and the scenarios' uncosted native functions
// afresh, several times, and keeps them only when the repeats agree (or with --force).
int Calibrate(const CalibrateArgs& args) {
  spdlog::set_level(spdlog::level::warn);  // each repeat's node start-up is not news here
  std::vector<testbed::Probe> probes;
  std::set<std::string> keys;
  for (const auto& file : args.scenarios) {
    auto s = testbed::LoadScenario(file);
    if (!s.ok()) return ReportError(s.status().message());
    for (const auto& p : testbed::CalibratedFunctions(*s)) {
      if (p && keys.insert(testbed::CalibrationKey(*p)).second) probes.push_back(*p);
    }
  }
  std::printf(
      "calibrating on %s: the commit, the wake-up and %zu function cost%s, %d times (a node of its "
      "own "
      "each time)\n",
      testbed::HostDescription().c_str(), probes.size(), probes.size() == 1 ? "" : "s",
      args.repeats);
  std::fflush(stdout);
  auto measured = testbed::MeasureRepeats(probes, args.repeats);
  if (!measured.ok()) return ReportError(measured.status().message());
  auto line = [&](const std::string& what, auto model_of) {
    std::printf("  %s: p50/p99", what.c_str());
    for (const auto& c : measured->repeats) {
      const sim::CostModel& m = model_of(c);
      std::printf(" %.3f/%.3f", core::ToMillis(m.percentiles[50]),
                  core::ToMillis(m.percentiles[99]));
    }
    std::printf(" ms\n");
  };
  line("commit", [](const testbed::Calibration& c) -> const sim::CostModel& { return c.commit; });
  line("wake-up", [](const testbed::Calibration& c) -> const sim::CostModel& { return c.wakeup; });
  for (const auto& [key, model] : measured->repeats[0].functions) {
    line(key, [&key = key](const testbed::Calibration& c) -> const sim::CostModel& {
      return c.functions.at(key);
    });
  }
  if (!measured->disagreements.empty()) {
    std::string why = "the repeats disagree, as on a busy machine:";
    for (const auto& d : measured->disagreements) why += "\n  " + d;
    if (!args.force) {
      return ReportError(why +
                         "\nnothing kept: measure again when the machine is quiet, or "
                         "keep the median repeat of each cost with --force");
    }
    std::fflush(stdout);
    std::fprintf(stderr, "enoki: warning: %s\nkept anyway (--force)\n", why.c_str());
  }
  testbed::Calibration kept = testbed::MedianRepeat(measured->repeats);
  std::printf(
      "  kept of each cost the repeat with the median p99: commit %.3f/%.3f, wake-up "
      "%.3f/%.3f ms\n",
      core::ToMillis(kept.commit.percentiles[50]), core::ToMillis(kept.commit.percentiles[99]),
      core::ToMillis(kept.wakeup.percentiles[50]), core::ToMillis(kept.wakeup.percentiles[99]));
  if (auto st = testbed::KeepCalibration(args.file, kept); !st.ok()) {
    return ReportError(st.message());
  }
  std::printf("kept in %s (digest %s): simulations take these costs from it\n", args.file.c_str(),
              testbed::CalibrationDigest(args.file).c_str());
  return 0;
}

int Report(const std::vector<std::string>& databases, const std::string& csv,
           const std::string& plots) {
  if (databases.size() == 2) {
    if (!csv.empty()) return ReportError("--csv exports one run: give one database");
    if (!plots.empty()) return ReportError("--plots draws one run: give one database");
    auto a = testbed::ReadReport(databases[0]);
    if (!a.ok()) return ReportError(a.status().message());
    auto b = testbed::ReadReport(databases[1]);
    if (!b.ok()) return ReportError(b.status().message());
    std::printf("%s", testbed::FormatComparison(*a, *b).c_str());
    return 0;
  }
  const std::string& database = databases[0];
  auto report = testbed::ReadReport(database);
  if (!report.ok()) return ReportError(report.status().message());
  std::printf("%s", testbed::FormatReport(*report).c_str());
  if (!csv.empty()) {
    if (auto st = testbed::ExportRequestsCsv(database, csv); !st.ok()) {
      return ReportError(st.message());
    }
    std::printf("requests written to %s\n", csv.c_str());
  }
  if (!plots.empty()) {
    auto drawn = testbed::WritePlots(database, plots);
    if (!drawn.ok()) return ReportError(drawn.status().message());
    std::printf("plots in %s (PNG and SVG):", plots.c_str());
    for (const auto& name : *drawn) std::printf(" %s", name.c_str());
    std::printf("\n");
  }
  return 0;
}

}  // namespace

void AddReportCommand(CLI::App& app, Runner& run) {
  auto databases = std::make_shared<std::vector<std::string>>();
  auto csv = std::make_shared<std::string>();
  auto plots = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Summarize a run's results database (docs/results.md), as `enoki emulate` did; given two, "
      "compare them side by side (p50, p95, p99 per workload and their ratios)");
  cmd->add_option("database", *databases, "The run's .db file, or two runs' to compare")
      ->type_name("RUN.db")
      ->required();
  cmd->add_option("--csv", *csv, "Also write every request to this CSV file");
  cmd->add_option("--plots", *plots,
                  "Also draw the run's figures into this folder, PNG and SVG: latency CDFs and "
                  "latency over time per workload, throughput over item size, read staleness, "
                  "replication lag over time (needs python3-matplotlib)");
  cmd->callback([&run, databases, csv, plots] {
    if (databases->size() > 2) {
      throw CLI::ValidationError("database", "one run's .db file, or two runs' to compare, not " +
                                                 std::to_string(databases->size()));
    }
    run = [=] { return Report(*databases, *csv, *plots); };
  });
}

void AddCalibrateCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<CalibrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "calibrate",
      "Measure the compute costs a simulation takes from this machine (docs/scenarios.md, "
      "\"Simulation\"): the store's commit, an idle node's wake-up and each native function of the "
      "scenarios given that "
      "they do not cost, on a node of their own, several times over; print their p50 and p99; "
      "and keep them in the calibration file only when the repeats agree (a busy machine's do "
      "not), else exit with status 1 unless --force");
  cmd->add_option(
      "scenario", args->scenarios,
      "Scenario files whose uncosted native functions to measure (none: the commit and the "
      "wake-up)");
  cmd->add_option("--file", args->file, "The calibration file")->capture_default_str();
  cmd->add_option("--repeats", args->repeats, "How many times to measure everything")
      ->check(CLI::Range(2, 10))
      ->capture_default_str();
  cmd->add_flag("--force", args->force,
                "Keep the median repeat of each cost even when the repeats disagree");
  cmd->callback([&run, args] { run = [args] { return Calibrate(*args); }; });
}

void AddSimulateCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<EmulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "simulate",
      "Run a scenario in virtual time, in this process: the same node code, the same link "
      "model and the same workloads and timeline as `enoki emulate`, deterministic for a seed; "
      "writes a results database of the same schema (mode simulate). Functions and store commits "
      "take the compute time the scenario gives them, else the time measured once on this "
      "machine (the calibration file), which also gives an idle node's wake-up; process "
      "functions need a cost in the scenario. A run "
      "that records an error (a timeline event that could not be applied) exits with status 1");
  AddRunOptions(cmd, *args);
  cmd->add_option("--calibration", args->calibration,
                  "The calibration file: compute costs measured on this machine, measured and "
                  "written where missing, reused after (default: " +
                      testbed::DefaultCalibrationPath() + ")");
  cmd->callback([&run, args] { run = [args] { return Simulate(*args); }; });
}

void AddEmulateCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<EmulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "emulate",
      "Run a scenario on this host: a real node process per cloud and edge node, links emulated "
      "by kernel netem or the user-space shaper, the workloads and the timeline; writes a "
      "results database. Ctrl-C stops it cleanly (exit status 130), keeping what it recorded, "
      "and removes every process, namespace and device it made. A run that records an error "
      "(a node that died without a crash event, a timeline event that could not be applied) "
      "lists it in the report and exits with status 1");
  AddRunOptions(cmd, *args);
  cmd->add_option("--links", args->links,
                  "How links are emulated: netem (every node in a network namespace, tc netem "
                  "per destination; needs root and sch_netem), shaper (loopback, the nodes' "
                  "user-space shaper), auto (netem when it can run and no link has a drop, else "
                  "shaper; it says why)")
      ->check(CLI::IsMember({"auto", "netem", "shaper"}))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", args->quiet, "No progress line");
  AddStrictFlag(cmd, *args);
  cmd->callback([&run, args] { run = [args] { return Emulate(*args); }; });
}

void AddRunCommand(CLI::App& app, Runner& run) {
  auto args = std::make_shared<EmulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Run a scenario on nodes that are running already, on this host or others (the cluster "
      "file maps the scenario's cloud and edge nodes to them: docs/real-machines.md, \"A "
      "scenario on running nodes\"): the same set-up, workloads and replica check as `enoki "
      "emulate`, the client nodes' callers in this process or on client hosts (--client); "
      "writes a results database of the same schema (mode cluster) that `enoki report` "
      "compares with an emulation or a simulation. Before the run it measures each talking "
      "pair's round trip, and the links are shaped on top of the network (the nodes' shapers, "
      "and where the callers run for the clients'), "
      "so that each has the scenario's delay; a crash or restart needs the cluster file's "
      "command for it. The nodes must keep a trace (--trace), which the run fetches over their "
      "API with their clocks aligned to its own: replication lag and staleness come with the "
      "alignment's error bound. Ctrl-C stops it cleanly (exit status 130)");
  AddRunOptions(cmd, *args);
  cmd->add_option(
         "--cluster", args->cluster,
         "The cluster file: each cloud and edge node's endpoint (and public key), this run's "
         "client key pair when the nodes have keys, and the client hosts (clients:)")
      ->required();
  CLI::Option* client = cmd->add_option(
      "--client", args->client,
      "Be client host NAME of the cluster file (on another host, started before the driver's "
      "`enoki run`, with the same scenario, cluster file and --duration): listen at its "
      "endpoint, run the callers of its client nodes when the driver starts the run, and hand "
      "their requests to the driver, which writes the results");
  cmd->add_option("--wait", args->wait_s,
                  "With --client: how many seconds to wait for the driver to start the run, and "
                  "to fetch the requests after it")
      ->check(CLI::Range(1, 86400))
      ->needs(client)
      ->capture_default_str();
  // Hidden: for tests of the client hosts' clock alignment (tests/integration/run_cluster_test.cc).
  cmd->add_option("--test-clock-offset-ms", args->test_clock_offset_ms,
                  "Tests only: with --client, this host's clock reads this many ms ahead of the "
                  "monotonic clock, as on another host")
      ->check(CLI::Range(0.0, 1e9))
      ->needs(client)
      ->group("");
  cmd->get_option("--results")->excludes(client);
  cmd->add_flag("-q,--quiet", args->quiet, "No progress line");
  AddStrictFlag(cmd, *args);
  cmd->callback([&run, args] { run = [args] { return RunOnCluster(*args); }; });
}

}  // namespace enoki::cli
