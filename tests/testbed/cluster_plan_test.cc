// The plan of `enoki cluster plan`: the hosts file (each error names file:line:column and field),
// the placement (by tier, by cpus, as pinned; many nodes on a host get ports one after another),
// and the files written, read back as deploy/ansible/ and `enoki run --cluster` read them.
#include "testbed/cluster_plan.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "testbed/cluster.h"

namespace enoki::testbed {
namespace {

namespace fs = std::filesystem;

// A cloud, four edges (each with a keygroup replicated to the cloud) and a client.
constexpr const char* kScenario = R"(name: p
nodes:
  - {name: cloud, tier: cloud}
  - {name: e1, tier: edge}
  - {name: e2, tier: edge}
  - {name: e3, tier: edge}
  - {name: e4, tier: edge}
  - {name: c, tier: client}
tier_links:
  client-edge: {delay: 1ms}
  edge-cloud: {delay: 25ms}
keygroups:
  - {name: k1, replicas: [e1, cloud]}
  - {name: k2, replicas: [e2, cloud]}
  - {name: k3, replicas: [e3, cloud]}
  - {name: k4, replicas: [e4, cloud]}
functions:
  - {name: f, nodes: e1, handler: echo, keygroup: k1}
workloads:
  - {name: w, client: c, function: f, node: e1, rate: 1/s, duration: 1s}
)";

Scenario Load() {
  auto s = ParseScenario(kScenario, "p.yaml");
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return *s;
}

std::string Placement(const std::vector<PlacedNode>& placed) {
  std::string out;
  for (const auto& p : placed) out += p.node + "@" + p.host + ":" + std::to_string(p.port) + " ";
  return out;
}

TEST(ClusterPlanTest, NodesGoByTierAndCpusUnlessPinned) {
  Scenario s = Load();
  // The edges share pa (2 cpus) and pb (1 cpu) by nodes per cpu, the first on a tie.
  auto hosts = ParseHostsFile(R"(hosts:
  vm: {address: 10.0.0.1, tiers: cloud}
  pa: {address: 10.0.0.2, tiers: [edge], cpus: 2}
  pb: {address: 10.0.0.3, tiers: [edge], port: 9000}
)",
                              "h.yaml", s);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  auto placed = PlaceNodes(s, *hosts);
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  EXPECT_EQ(Placement(*placed), "cloud@vm:7000 e1@pa:7000 e2@pa:7001 e3@pb:9000 e4@pa:7002 ");

  // Pinned: e3 and e4 where the file says, the others around them; a host of any tier.
  hosts = ParseHostsFile(R"(hosts:
  vm: {address: 10.0.0.1}
  pa: {address: 10.0.0.2, tiers: [edge]}
place: {e1: vm, e4: pa}
)",
                         "h.yaml", s);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  placed = PlaceNodes(s, *hosts);
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  // vm holds e1 and pa e4; the cloud can go to vm only; then e2 to pa (1 + 1 nodes per cpu
  // against 2 + 1), e3 to vm (3 against 3: the first on a tie). Ports in the scenario's order.
  EXPECT_EQ(Placement(*placed), "cloud@vm:7000 e1@vm:7001 e2@pa:7000 e3@vm:7002 e4@pa:7001 ");
}

TEST(ClusterPlanTest, ABadHostsFileIsRefusedNamingFileLineAndField) {
  Scenario s = Load();
  struct Case {
    std::string text, expected;
  };
  const Case cases[] = {
      {"hosts:\n  vm: {address: 10.0.0.1, cpu: 2}\n",
       "h.yaml:2:27: hosts.vm.cpu: unknown field (known: address, cpus, port, prefix, tiers, "
       "vars)"},
      {"hosts:\n  vm: {tiers: cloud}\n", "h.yaml:2:7: hosts.vm.address: missing (required)"},
      {"hosts:\n  vm: {address: 10.0.0.1}\n  pi: {address: 10.0.0.1}\n",
       "h.yaml:3:17: hosts.pi.address: host vm has this address already"},
      {"hosts:\n  vm: {address: 10.0.0.1, tiers: [cloud, fog]}\n",
       "h.yaml:2:42: hosts.vm.tiers[1]: 'fog' is not a tier to place (cloud or edge)"},
      {"hosts:\n  vm: {address: 10.0.0.1, tiers: client}\n",
       "h.yaml:2:34: hosts.vm.tiers: client nodes are not placed"},
      {"hosts:\n  vm: {address: 10.0.0.1, cpus: 0}\n",
       "h.yaml:2:33: hosts.vm.cpus: '0' is not a whole number from 1 to 4096"},
      {"hosts:\n  vm: {address: 10.0.0.1, port: 70000}\n",
       "h.yaml:2:33: hosts.vm.port: '70000' is not a whole number from 1 to 65535"},
      {"hosts:\n  vm: {address: 10.0.0.1, prefix: opt/enoki}\n",
       "h.yaml:2:35: hosts.vm.prefix: expected an absolute path"},
      {"hosts:\n  vm: {address: 10.0.0.1, vars: {ansible_host: 10.0.0.9}}\n",
       "h.yaml:2:34: hosts.vm.vars.ansible_host: set by the plan"},
      {"hosts:\n  vm: {address: 'tcp://10.0.0.1'}\n",
       "h.yaml:2:17: hosts.vm.address: expected a host name or an IPv4 address"},
      {"hosts:\n  vm: {address: 10.0.0.1}\nplace: {e9: vm}\n",
       "h.yaml:3:9: place.e9: the scenario (p.yaml) has no node e9"},
      {"hosts:\n  vm: {address: 10.0.0.1}\nplace: {c: vm}\n",
       "h.yaml:3:9: place.c: a client node: its callers run in the enoki run process"},
      {"hosts:\n  vm: {address: 10.0.0.1}\nplace: {e1: pi}\n",
       "h.yaml:3:13: place.e1: 'pi' is no host of this file"},
      {"hosts:\n  vm: {address: 10.0.0.1, tiers: cloud}\nplace: {e1: vm}\n",
       "h.yaml:3:13: place.e1: host vm does not take edge nodes"},
      {"hosts:\n  vm: {address: 10.0.0.1}\n  vm: {address: 10.0.0.2}\n",
       "h.yaml:3:3: hosts.vm: duplicate key (first at line 2, column 3)"},
      {"hosts:\n  vm: {address: 10.0.0.1}\nplace: {e1: vm, e1: vm}\n",
       "h.yaml:3:17: place.e1: duplicate key (first at line 3, column 9)"},
      {"hosts:\n  vm: {address: 10.0.0.1}\nclients: here\n",
       "h.yaml:3:1: clients: unknown field (known: hosts, place)"},
  };
  for (const auto& c : cases) {
    auto f = ParseHostsFile(c.text, "h.yaml", s);
    ASSERT_FALSE(f.ok()) << c.text;
    EXPECT_NE(f.status().message().find(c.expected), std::string::npos)
        << "expected: " << c.expected << "\ngot: " << f.status().message();
  }
  // A tier no host takes.
  auto f = ParseHostsFile("hosts:\n  vm: {address: 10.0.0.1, tiers: cloud}\n", "h.yaml", s);
  ASSERT_TRUE(f.ok());
  auto placed = PlaceNodes(s, *f);
  ASSERT_FALSE(placed.ok());
  EXPECT_EQ(placed.status().message(),
            "h.yaml: hosts: no host takes edge nodes, so node e1 has nowhere to go (a host's "
            "tiers)");
}

std::string Read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ClusterPlanTest, ThePlanHoldsWhatAnsibleAndTheRunRead) {
  Scenario s = Load();
  auto hosts = ParseHostsFile(R"(hosts:
  vm: {address: 10.0.0.1, tiers: cloud, prefix: /opt/enoki/}
  pa: {address: 10.0.0.2, tiers: edge, vars: {ansible_user: pi, ansible_port: 2222}}
  spare: {address: 10.0.0.3, tiers: cloud}
place: {cloud: vm}
)",
                              "h.yaml", s);
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  fs::path dir = fs::temp_directory_path() / ("enoki-plan-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto placed = WritePlan(s, *hosts, dir.string());
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();

  // The inventory: the hosts with nodes, their nodes and endpoints, the hosts file's variables.
  YAML::Node inv = YAML::LoadFile((dir / "inventory.yaml").string());
  EXPECT_EQ(inv["all"]["vars"]["enoki_plan"].as<std::string>(), dir.string());
  YAML::Node hs = inv["all"]["hosts"];
  ASSERT_EQ(hs.size(), 2u);  // not `spare`, which runs nothing
  EXPECT_EQ(hs["vm"]["ansible_host"].as<std::string>(), "10.0.0.1");
  EXPECT_EQ(hs["vm"]["enoki_prefix"].as<std::string>(), "/opt/enoki");
  EXPECT_EQ(hs["pa"]["enoki_prefix"].as<std::string>(), "/");
  EXPECT_EQ(hs["pa"]["enoki_nodes"].size(), 4u);
  EXPECT_EQ(hs["pa"]["enoki_endpoints"]["e4"].as<std::string>(), "tcp://10.0.0.2:7003");
  EXPECT_EQ(hs["pa"]["ansible_port"].as<int>(), 2222);
  EXPECT_EQ(hs["pa"]["ansible_user"].as<std::string>(), "pi");

  // A node's config: under its host's prefix, its peers at theirs.
  EXPECT_EQ(Read(dir / "nodes/cloud.toml"),
            "# Written by enoki cluster plan: node cloud on host vm (deploy/ansible/ installs it "
            "as /opt/enoki/etc/enoki/cloud.toml).\n"
            "id = \"cloud\"\n"
            "listen = \"tcp://0.0.0.0:7000\"\n"
            "advertise = \"tcp://10.0.0.1:7000\"\n"
            "data-dir = \"/opt/enoki/var/lib/enoki/cloud\"\n"
            "trace = \"/opt/enoki/var/lib/enoki/cloud/cloud.trace\"\n"
            "key = \"/opt/enoki/etc/enoki/keys/cloud.key\"\n"
            "access = \"/opt/enoki/etc/enoki/access\"\n"
            "peer = [\"e1=tcp://10.0.0.2:7000\", \"e2=tcp://10.0.0.2:7001\", "
            "\"e3=tcp://10.0.0.2:7002\", \"e4=tcp://10.0.0.2:7003\"]\n"
            "peer-key = [\"e1=/opt/enoki/etc/enoki/keys/e1.pub\", "
            "\"e2=/opt/enoki/etc/enoki/keys/e2.pub\", \"e3=/opt/enoki/etc/enoki/keys/e3.pub\", "
            "\"e4=/opt/enoki/etc/enoki/keys/e4.pub\"]\n");
  EXPECT_NE(Read(dir / "nodes/e2.toml").find("peer = [\"cloud=tcp://10.0.0.1:7000\"]\n"),
            std::string::npos);
  EXPECT_NE(Read(dir / "nodes/e2.toml").find("key = \"/etc/enoki/keys/e2.key\""),
            std::string::npos);

  // Secret keys are their owner's only; the access file admits the run with `control`.
  struct stat st {};
  ASSERT_EQ(::stat((dir / "keys/e3.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((dir / "keys/run.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto run = adapters::ReadKeyPair((dir / "keys/run.key").string());
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_NE(Read(dir / "access").find(RunAccessLine("run", run->public_key)), std::string::npos);
  EXPECT_NE(RunAccessLine("run", run->public_key).find(" control "), std::string::npos);

  // The cluster file is what `enoki run --cluster` takes, with the nodes' keys.
  auto cluster = LoadClusterFile((dir / "cluster.yaml").string(), s);
  ASSERT_TRUE(cluster.ok()) << cluster.status().ToString();
  EXPECT_EQ(cluster->nodes.size(), 5u);
  EXPECT_EQ(cluster->nodes.at("e3").endpoint, "tcp://10.0.0.2:7002");
  auto e3 = adapters::ReadPublicKey((dir / "keys/e3.pub").string());
  ASSERT_TRUE(e3.ok());
  EXPECT_EQ(cluster->nodes.at("e3").public_key, *e3);
  EXPECT_EQ(cluster->identity.public_key, run->public_key);

  // A second plan into the same folder is refused.
  auto again = WritePlan(s, *hosts, dir.string());
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("holds a plan already"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace enoki::testbed
