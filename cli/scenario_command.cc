// `enoki scenario check FILE`: reads and validates a scenario file, and shows what it declares,
// with the one-way link between every pair of nodes as the run will emulate it.
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "testbed/scenario.h"
#include "testbed/topology.h"

namespace enoki::cli {
namespace {

// Above this many nodes the link table is summarized, not printed pair by pair.
constexpr size_t kMaxNodesForTable = 20;

// "250ms", or from a second on "2750s" (never an exponent).
std::string Span(core::Duration d) {
  char buf[32];
  double ms = core::ToMillis(d);
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.10gms", ms);
  } else {
    std::snprintf(buf, sizeof buf, "%.10gs", ms / 1000);
  }
  return buf;
}

int Check(const std::string& path) {
  auto loaded = testbed::LoadScenario(path);
  if (!loaded.ok()) return ReportError(loaded.status().message());
  const testbed::Scenario& s = *loaded;
  auto table = testbed::LinkTable(s);
  if (!table.ok()) return ReportError(table.status().message());

  std::cout << "scenario " << s.name << " (" << path << "): valid\n";
  if (!s.description.empty()) std::cout << "  " << s.description << "\n";
  std::cout << "seed " << s.seed << ", warm-up " << Span(s.warmup) << " cut from each workload, "
            << "results in " << s.results << "/\n";
  std::cout << "nodes (" << s.nodes.size() << "):";
  for (const auto& n : s.nodes) {
    std::cout << " " << n.name << " (" << TierName(n.tier);
    if (!n.cpus.empty()) {
      std::cout << ", cpus";
      for (size_t i = 0; i < n.cpus.size(); ++i) std::cout << (i ? "," : " ") << n.cpus[i];
    }
    if (n.forward_timeout) std::cout << ", forward timeout " << Span(*n.forward_timeout);
    std::cout << ")";
  }
  std::cout << "\n";
  if (s.nodes.size() <= kMaxNodesForTable) {
    std::cout << "links, one way:\n";
    for (const auto& [pair, spec] : *table) {
      std::cout << "  " << pair.first << " -> " << pair.second << ": " << spec.ToString() << "\n";
    }
  } else {
    std::cout << "links: " << table->size() << " one-way pairs (listed for up to "
              << kMaxNodesForTable << " nodes)\n";
  }
  for (const auto& k : s.keygroups) {
    std::cout << "keygroup " << k.name << ": " << (k.mode == proto::SYNC ? "sync" : "async") << ", "
              << (k.mutability == proto::APPEND_ONLY ? "append-only" : "mutable") << ", replicas";
    for (const auto& r : k.replicas) std::cout << " " << r;
    std::cout << "\n";
  }
  for (const auto& f : s.functions) {
    std::cout << "function " << f.spec.name() << ": " << f.spec.runtime() << ":" << f.spec.handler()
              << " on keygroup " << f.spec.keygroup() << ", at";
    for (const auto& n : f.nodes) std::cout << " " << n;
    std::cout << "\n";
  }
  for (const auto& w : s.workloads) {
    std::cout << "workload " << w.name << ": " << w.callers << " callers at " << w.client
              << " call " << w.function << " at " << w.node << ", ";
    if (w.rate) {
      std::cout << "open loop " << *w.rate << "/s each";
    } else {
      std::cout << "closed loop, think " << Span(w.think);
    }
    if (w.requests) std::cout << ", " << *w.requests << " requests each";
    if (w.duration) std::cout << ", for " << Span(*w.duration);
    std::cout << ", from " << Span(w.start) << "\n";
  }
  for (const auto& e : s.timeline) {
    std::cout << "at " << Span(e.at) << ": ";
    switch (e.kind) {
      case testbed::TimelineEvent::Kind::kLink:
        std::cout << "link " << e.link.a << " - " << e.link.b << " becomes "
                  << e.link.spec.ToString();
        break;
      case testbed::TimelineEvent::Kind::kPartition:
        std::cout << "partition into " << e.groups.size() << " groups";
        break;
      case testbed::TimelineEvent::Kind::kHeal:
        std::cout << "heal partitions";
        break;
      case testbed::TimelineEvent::Kind::kCrash:
        std::cout << "crash " << e.node;
        break;
      case testbed::TimelineEvent::Kind::kRestart:
        std::cout << "restart " << e.node;
        break;
      case testbed::TimelineEvent::Kind::kPhase:
        std::cout << "phase " << e.phase;
        break;
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

void AddScenarioCommand(CLI::App& app, Runner& run) {
  CLI::App* scenario =
      app.add_subcommand("scenario", "Work with scenario files (docs/scenarios.md)");
  scenario->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  CLI::App* check = scenario->add_subcommand(
      "check", "Validate a scenario file and show what it declares, with the link table");
  check->add_option("file", *file, "The scenario file (YAML)")->required();
  check->callback([&run, file] { run = [file] { return Check(*file); }; });
}

}  // namespace enoki::cli
