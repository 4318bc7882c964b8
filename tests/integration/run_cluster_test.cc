// `enoki run SCENARIO --cluster FILE` end to end: three `enoki node` processes that are running
// already (a cloud and two edges, named as the scenario's nodes), a cluster file that maps the
// scenario to them, the run from the command line, its results database, and `enoki report`
// comparing it with an emulation of the same file. Also what is refused before anything runs: a
// cluster file that does not fit (naming file:line and field), a scenario with a partition, a
// node that answers under another name, a cluster that holds the scenario's keygroup already.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "testbed/report.h"
#include "tests/integration/commands.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/node_cluster.h"
#include "tests/integration/results_query.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using testing::Enoki;
using testing::KeyFolder;
using testing::NodeCluster;
using testing::Output;

const std::string kScenario = std::string(ENOKI_TEST_SCENARIOS) + "/on_cluster.yaml";

using testing::Query;

// A fresh folder for one test's files, removed at its end.
class Folder {
 public:
  explicit Folder(const std::string& name)
      : dir_(fs::temp_directory_path() / ("enoki-run-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Folder() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Writes `text` to file `name` in the folder; returns its path.
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  // The one database in subfolder `sub`, or "".
  std::string Database(const std::string& sub) const {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / sub, ec)) {
      if (e.path().extension() == ".db") return e.path().string();
    }
    return "";
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

// A cluster file mapping the scenario's nodes to the cluster's, each line `extra` added to.
std::string ClusterYaml(NodeCluster& cluster, const std::string& node_extra = "",
                        const std::string& tail = "") {
  std::string text = "nodes:\n";
  for (const char* id : {"cloud", "edge1", "edge2"}) {
    text += std::string("  ") + id + ": {endpoint: " + cluster.endpoint(id) + node_extra + "}\n";
  }
  return text + tail;
}

TEST(RunClusterTest, AScenarioRunsOnRunningNodesAndComparesWithItsEmulation) {
  NodeCluster cluster({"cloud", "edge1", "edge2"});
  Folder folder("plain");

  // A node that answers under another name than the one the file gives it is refused.
  std::string swapped = folder.Write(
      "swapped.yaml", "nodes:\n  cloud: {endpoint: " + cluster.endpoint("cloud") +
                          "}\n  edge1: {endpoint: " + cluster.endpoint("edge2") +
                          "}\n  edge2: {endpoint: " + cluster.endpoint("edge2") + "}\n");
  Output refused = Enoki("run " + kScenario + " --cluster " + swapped + " -q --results " +
                         folder.path("refused"));
  EXPECT_EQ(refused.status, 1) << refused.text;
  EXPECT_NE(refused.text.find("node edge1 at " + cluster.endpoint("edge2")), std::string::npos)
      << refused.text;
  EXPECT_NE(refused.text.find("'edge2'"), std::string::npos) << refused.text;
  EXPECT_EQ(folder.Database("refused"), "");

  std::string file = folder.Write("cluster.yaml", ClusterYaml(cluster));
  Output run =
      Enoki("run " + kScenario + " --cluster " + file + " -q --results " + folder.path("cluster"));
  ASSERT_EQ(run.status, 0) << run.text;
  EXPECT_NE(run.text.find("on-cluster: cluster, network links, seed 7"), std::string::npos)
      << run.text;
  EXPECT_NE(run.text.find("replication lag, staleness, store operations: not measured"),
            std::string::npos)
      << run.text;
  std::string db = folder.Database("cluster");
  ASSERT_NE(db, "") << run.text;
  auto report = testbed::ReadReport(db);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->run.mode, "cluster");
  EXPECT_EQ(report->run.backend, "network");
  EXPECT_TRUE(report->errors.empty());
  // 100/s for 2 s at each edge, every one answered.
  ASSERT_EQ(report->workloads.size(), 2u);
  for (const auto& w : report->workloads) {
    EXPECT_NEAR(static_cast<double>(w.count), 200, 2) << w.name;
    EXPECT_EQ(w.errors, 0) << w.name;
  }
  EXPECT_EQ(Query(db, "SELECT count(*) FROM requests WHERE status != 'OK'"), "0");
  // The three replicas hold the 40 counters alike.
  ASSERT_EQ(report->keygroups.size(), 1u);
  EXPECT_TRUE(report->keygroups[0].converged);
  ASSERT_EQ(report->keygroups[0].replicas.size(), 3u);
  for (const auto& r : report->keygroups[0].replicas) EXPECT_EQ(r.items, 40) << r.node;
  // The timeline's phase; no traces and no links.
  EXPECT_EQ(Query(db, "SELECT group_concat(detail) FROM events WHERE kind = 'phase'"),
            "second-half");
  EXPECT_EQ(Query(db, "SELECT count(*) FROM writes"), "0");
  EXPECT_EQ(Query(db, "SELECT count(*) FROM kv_ops"), "0");
  EXPECT_EQ(Query(db, "SELECT count(*) FROM links"), "0");

  // A second run on the same nodes would find the keygroup there already: refused.
  Output again =
      Enoki("run " + kScenario + " --cluster " + file + " -q --results " + folder.path("again"));
  EXPECT_EQ(again.status, 1) << again.text;
  EXPECT_NE(again.text.find("holds keygroup counts already"), std::string::npos) << again.text;

  // The same file emulated, and the two compared.
  Output emulated =
      Enoki("emulate " + kScenario + " --links shaper -q --results " + folder.path("emulated"));
  ASSERT_EQ(emulated.status, 0) << emulated.text;
  std::string edb = folder.Database("emulated");
  ASSERT_NE(edb, "");
  Output compared = Enoki("report " + db + " " + edb);
  ASSERT_EQ(compared.status, 0) << compared.text;
  EXPECT_NE(compared.text.find("A: on-cluster (cluster, network, seed 7)"), std::string::npos)
      << compared.text;
  EXPECT_NE(compared.text.find("B: on-cluster (emulate, shaper, seed 7)"), std::string::npos)
      << compared.text;
  EXPECT_NE(compared.text.find("at-edge1"), std::string::npos) << compared.text;
  EXPECT_NE(compared.text.find("at-edge2"), std::string::npos) << compared.text;
  EXPECT_EQ(compared.text.find("only in"), std::string::npos) << compared.text;
  std::cout << compared.text;
}

// Nodes with keys: the cluster file gives each node's public key and the run's identity, which
// every node's access file admits.
TEST(RunClusterTest, NodesWithKeysServeTheRunsIdentity) {
  KeyFolder keys({"cloud", "edge1", "edge2", "run"});
  std::string access = keys.Access({"run"});
  std::vector<std::string> common = {"--access", access};
  std::map<std::string, std::vector<std::string>> own;
  for (const char* id : {"cloud", "edge1", "edge2"}) {
    common.insert(common.end(), {"--peer-key", std::string(id) + "=" + keys.pub(id)});
    own[id] = {"--key", keys.key(id)};
  }
  NodeCluster cluster({"cloud", "edge1", "edge2"}, common, false, own);
  Folder folder("curve");
  std::string text = "nodes:\n";
  for (const char* id : {"cloud", "edge1", "edge2"}) {
    text += std::string("  ") + id + ": {endpoint: " + cluster.endpoint(id) +
            ", key: " + keys.pub(id) + "}\n";
  }
  std::string file = folder.Write("cluster.yaml", text + "identity: " + keys.key("run") + "\n");
  Output run = Enoki("run " + kScenario + " --cluster " + file + " -q --duration 1 --results " +
                     folder.path("out"));
  ASSERT_EQ(run.status, 0) << run.text;
  EXPECT_NE(run.text.find(", CURVE"), std::string::npos) << run.text;
  auto report = testbed::ReadReport(folder.Database("out"));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->workloads.size(), 2u);
  for (const auto& w : report->workloads) {
    EXPECT_GT(w.count, 50) << w.name;
    EXPECT_EQ(w.errors, 0) << w.name;
  }
  ASSERT_EQ(report->keygroups.size(), 1u);
  EXPECT_TRUE(report->keygroups[0].converged);

  // Without keys in the file, the nodes do not answer: refused before the run.
  std::string plain = folder.Write("plain.yaml", ClusterYaml(cluster));
  Output refused =
      Enoki("run " + kScenario + " --cluster " + plain + " -q --results " + folder.path("refused"));
  EXPECT_EQ(refused.status, 1) << refused.text;
  EXPECT_NE(refused.text.find("the cluster is not ready for the run"), std::string::npos)
      << refused.text;
}

// A cluster file that does not fit the scenario is refused before anything runs, naming the
// file, the line and the field.
TEST(RunClusterTest, ABrokenClusterFileIsRefusedNamingFileLineAndField) {
  Folder folder("broken");
  struct Case {
    std::string text, expected;
  };
  const Case cases[] = {
      {"nodes:\n  cloud: {endpoint: tcp://127.0.0.1:7000}\n  edge1: {endpoint: "
       "tcp://127.0.0.1:7001, port: 3}\n  edge2: {endpoint: tcp://127.0.0.1:7002}\n",
       ":3:43: nodes.edge1.port: unknown field (known: endpoint, key)"},
      {"nodes:\n  cloud: {endpoint: tcp://127.0.0.1:7000}\n  edge1: {endpoint: "
       "tcp://127.0.0.1:7001}\n",
       ":2:3: nodes.edge2: missing: the scenario's edge node edge2 must be mapped"},
      {"nodes:\n  cloud: {endpoint: tcp://127.0.0.1:7000}\n  edge1: {endpoint: "
       "tcp://127.0.0.1}\n  edge2: {endpoint: tcp://127.0.0.1:7002}\n",
       ":3:21: nodes.edge1.endpoint: 'tcp://127.0.0.1' is not tcp://HOST:PORT or ipc://PATH"},
      {"nodes:\n  cloud: {endpoint: tcp://127.0.0.1:7000}\n  edge1: {endpoint: "
       "tcp://127.0.0.1:7001}\n  edge2: {endpoint: tcp://127.0.0.1:7002}\n  client: {endpoint: "
       "tcp://127.0.0.1:7003}\n",
       ":5:3: nodes.client: a client node of the scenario"},
      {"nodes:\n  cloud: {endpoint: tcp://127.0.0.1:7000}\nclients: here\n",
       ":3:1: clients: unknown field (known: identity, nodes)"},
  };
  for (const auto& c : cases) {
    std::string file = folder.Write("cluster.yaml", c.text);
    Output out =
        Enoki("run " + kScenario + " --cluster " + file + " --results " + folder.path("results"));
    EXPECT_EQ(out.status, 1) << out.text;
    EXPECT_NE(out.text.find("enoki: error: " + file + c.expected), std::string::npos)
        << "expected: " << c.expected << "\ngot: " << out.text;
    EXPECT_EQ(out.text.find("running on-cluster"), std::string::npos) << out.text;
  }
  EXPECT_FALSE(fs::exists(folder.path("results")));
}

// A scenario whose timeline partitions the nodes is refused before the run, saying which event.
TEST(RunClusterTest, AScenarioWithAPartitionIsRefusedBeforeTheRun) {
  Folder folder("partition");
  std::string scenario = std::string(ENOKI_TEST_SCENARIOS) + "/partition_crash.yaml";
  std::string file = folder.Write("cluster.yaml",
                                  "nodes:\n  cloud: {endpoint: tcp://127.0.0.1:7000}\n  edge: "
                                  "{endpoint: tcp://127.0.0.1:7001}\n");
  Output out =
      Enoki("run " + scenario + " --cluster " + file + " --results " + folder.path("results"));
  EXPECT_EQ(out.status, 1) << out.text;
  EXPECT_NE(out.text.find("partition_crash.yaml: timeline[0] at 1 s is a partition, which the "
                          "cluster mode does not support yet"),
            std::string::npos)
      << out.text;
  EXPECT_FALSE(fs::exists(folder.path("results")));
}

}  // namespace
}  // namespace enoki
