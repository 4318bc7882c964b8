// Placing a scenario on machines (`enoki cluster plan SCENARIO --hosts HOSTS.yaml`): a hosts file
// (docs/real-machines.md, "The hosts file") names the machines, their addresses and what they
// take; the plan puts each cloud and edge node of the scenario on one of them and writes what
// deploy/ansible/ needs to install and start the nodes there, and what `enoki run --cluster`
// needs to run the scenario on them: an Ansible inventory, each node's config (the `enoki node
// --config` TOML), a CURVE key pair for every node and one for the run, the nodes' access file
// and the cluster file. The scenario's client nodes are not placed: their callers run in the
// `enoki run` process.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "testbed/scenario.h"

namespace enoki::testbed {

// One machine of a hosts file.
struct PlanHost {
  std::string name;                         // the Ansible inventory's host name
  std::string address;                      // where its nodes listen and are reached
  std::vector<Tier> tiers;                  // the tiers it takes (empty: any)
  int cpus = 1;                             // its share of the nodes
  int port = 7000;                          // its first node's port; the next ones count up
  std::string prefix = "/";                 // the install prefix on it (absolute)
  std::map<std::string, std::string> vars;  // Ansible host variables, copied as they are
};

// A hosts file, read and checked against a scenario.
struct HostsFile {
  std::string file;
  std::vector<PlanHost> hosts;              // in the file's order
  std::map<std::string, std::string> pins;  // node -> host (the file's `place`)
};

// Reads the hosts file at `path` for scenario `s`. Every error names the file, line and column
// and the field: a field it does not know, a host without an address, two hosts at one address,
// a tier that is none, a cpus or port out of range, a prefix that is not absolute, a variable the
// plan sets itself, a pin of a node the scenario does not have (or of a client node), to a host
// the file does not have or that does not take the node's tier.
core::Result<HostsFile> LoadHostsFile(const std::string& path, const Scenario& s);
// The same, from text (`file` names it in errors).
core::Result<HostsFile> ParseHostsFile(const std::string& text, const std::string& file,
                                       const Scenario& s);

// Where one node runs.
struct PlacedNode {
  std::string node;
  std::string host;
  int port = 0;
};

// The placement: every cloud and edge node of `s`, in the scenario's order. A pinned node goes
// to its host; every other one, in the scenario's order, to the host that takes its tier and has
// the fewest nodes per cpu once it is added (the first in the file on a tie). A host's nodes get
// its port, port + 1, ... in that order. An error names a tier no host takes, or a host whose
// ports run past 65535.
core::Result<std::vector<PlacedNode>> PlaceNodes(const Scenario& s, const HostsFile& hosts);

// Writes the plan into `dir` (made if missing; it must hold no plan yet): inventory.yaml,
// cluster.yaml, access, nodes/NODE.toml, keys/NODE.{key,pub} and keys/run.{key,pub}. Returns the
// placement.
core::Result<std::vector<PlacedNode>> WritePlan(const Scenario& s, const HostsFile& hosts,
                                                const std::string& dir);

// The access-file line that admits the run's client `name` (key `public_key`, Z85) with every
// permission a scenario run needs, `control` included, and quotas no run reaches.
std::string RunAccessLine(const std::string& name, const std::string& public_key);

}  // namespace enoki::testbed
