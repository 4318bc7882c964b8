// `enoki cluster plan SCENARIO --hosts HOSTS.yaml [--out DIR]`: places a scenario's cloud and edge
// nodes on machines and writes what deploy/ansible/ and `enoki run --cluster` need
// (testbed/cluster_plan.h).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "testbed/cluster_plan.h"
#include "testbed/scenario.h"

namespace enoki::cli {
namespace {

struct PlanArgs {
  std::string scenario;
  std::string hosts;
  std::string out = "cluster-plan";
};

int Plan(const PlanArgs& args) {
  auto scenario = testbed::LoadScenario(args.scenario);
  if (!scenario.ok()) return ReportError(scenario.status().message());
  auto hosts = testbed::LoadHostsFile(args.hosts, *scenario);
  if (!hosts.ok()) return ReportError(hosts.status().message());
  auto placed = testbed::WritePlan(*scenario, *hosts, args.out);
  if (!placed.ok()) return ReportError(placed.status().message());
  std::printf("placed %s on %zu host%s:\n", scenario->name.c_str(), hosts->hosts.size(),
              hosts->hosts.size() == 1 ? "" : "s");
  for (const auto& h : hosts->hosts) {
    std::string nodes;
    for (const auto& p : *placed) {
      if (p.host == h.name) nodes += " " + p.node + ":" + std::to_string(p.port);
    }
    std::printf("  %s (%s):%s\n", h.name.c_str(), h.address.c_str(),
                nodes.empty() ? " no nodes" : nodes.c_str());
  }
  std::string dir = args.out;
  std::printf(
      "wrote %s/: inventory.yaml, cluster.yaml, access, nodes/, keys/ (secret: keys/*.key)\n"
      "next:\n"
      "  ansible-playbook -i %s/inventory.yaml deploy/ansible/deploy.yml -e "
      "enoki_binary=PATH (or enoki_deb=PATH)\n"
      "  enoki run %s --cluster %s/cluster.yaml\n"
      "  ansible-playbook -i %s/inventory.yaml deploy/ansible/remove.yml\n",
      dir.c_str(), dir.c_str(), args.scenario.c_str(), dir.c_str(), dir.c_str());
  return 0;
}

}  // namespace

void AddClusterCommand(CLI::App& app, Runner& run) {
  CLI::App* cluster = app.add_subcommand(
      "cluster",
      "Set up a scenario's nodes on machines (docs/real-machines.md, \"From a hosts "
      "file to a compared run in four commands\")");
  cluster->require_subcommand(1);
  auto args = std::make_shared<PlanArgs>();
  CLI::App* plan = cluster->add_subcommand(
      "plan",
      "Place the scenario's cloud and edge nodes on the hosts of a hosts file (pinned ones where "
      "the file pins them; every other one on the host that takes its tier and has the fewest "
      "nodes per cpu) and write into DIR: an Ansible inventory for deploy/ansible/, each node's "
      "config, a CURVE key pair per node and one for the run, the nodes' access file, and the "
      "cluster file of `enoki run --cluster`. Client nodes are not placed: their callers run in "
      "the enoki run process");
  plan->add_option("scenario", args->scenario, "The scenario file (docs/scenarios.md)")->required();
  plan->add_option("--hosts", args->hosts,
                   "The hosts file: the machines, their addresses and what they take "
                   "(docs/real-machines.md, \"The hosts file\")")
      ->required();
  plan->add_option("--out", args->out,
                   "Folder to write the plan to (made if missing; it must hold no plan yet)")
      ->capture_default_str();
  plan->callback([&run, args] { run = [args] { return Plan(*args); }; });
}

}  // namespace enoki::cli
