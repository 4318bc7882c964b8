// The enoki command line as a user runs it: a node started from a config file, the kv and keygroup
// commands' output and exit codes, and their one-line errors; strict config files, one peer list
// shared by all nodes, and a data directory that keeps its node's id.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "tests/integration/commands.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using testing::Enoki;
using testing::Output;

TEST(CliTest, NodeFromConfigFileAndClientCommands) {
  // Port 0: the node picks a free port itself and says which in its ready file.
  std::string config = ::testing::TempDir() + "enoki-cli-test.toml";
  std::string ready = ::testing::TempDir() + "enoki-cli-test.ready";
  std::filesystem::remove(ready);
  // A comment, the default section, and a peer list over two lines that names the node itself.
  std::ofstream(config) << "# solo\n[default]\nid = \"solo\"\nlisten = \"tcp://127.0.0.1:0\"\n"
                        << "peer = [\"solo=tcp://127.0.0.1:0\",\n  \"other=tcp://127.0.0.1:1\"]\n"
                        << "in-memory = true\n"
                        << "log-level = \"warn\"\nready-file = \"" << ready << "\"\n";
  auto node = adapters::Subprocess::Start({ENOKI_BINARY, "node", "--config", config});
  ASSERT_TRUE(node.ok());
  auto bound = adapters::WaitForReadyFile(ready, "solo", *node, std::chrono::seconds(10));
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  std::string endpoint = bound->endpoint;
  ASSERT_EQ(endpoint.rfind("tcp://127.0.0.1:", 0), 0u) << endpoint;
  ASSERT_NE(endpoint, "tcp://127.0.0.1:0");
  std::string n = " --node " + endpoint;

  // The peer from the config file is known: a keygroup may be replicated to it.
  EXPECT_EQ(Enoki("keygroup create shop --replicas solo,other" + n).status, 0);
  Output info = Enoki("keygroup info shop" + n);
  EXPECT_EQ(info.status, 0);
  EXPECT_NE(info.text.find("replicas: solo other"), std::string::npos) << info.text;

  EXPECT_EQ(Enoki("kv put shop apples 12" + n).status, 0);
  EXPECT_EQ(Enoki("kv put shop pears 7" + n).status, 0);
  Output get = Enoki("kv get shop apples" + n);
  EXPECT_EQ(get.status, 0);
  EXPECT_EQ(get.text, "12\n");
  Output scan = Enoki("kv scan shop" + n);
  EXPECT_EQ(scan.text, "apples\t12\npears\t7\n");
  EXPECT_EQ(Enoki("kv delete shop apples" + n).status, 0);
  EXPECT_EQ(Enoki("kv put shop apples 13" + n).status, 0);
  EXPECT_EQ(Enoki("kv del shop apples" + n).status, 0);  // the short name is kept
  // A value from stdin, byte for byte.
  std::string piped =
      "printf 'two\\nlines' | " + std::string(ENOKI_BINARY) + " kv put shop note --file -" + n;
  EXPECT_EQ(std::system(piped.c_str()), 0);
  EXPECT_EQ(Enoki("kv get shop note" + n).text, "two\nlines\n");
  EXPECT_EQ(Enoki("keygroup create log --append-only" + n).status, 0);
  Output appended = Enoki("kv append log first-entry" + n);
  EXPECT_EQ(appended.status, 0);
  EXPECT_EQ(Enoki("kv get log " + appended.text.substr(0, appended.text.size() - 1) + n).text,
            "first-entry\n");
  EXPECT_EQ(Enoki("kv put shop nothing" + n).text,
            "enoki: error: kv put: give a VALUE or --file\n");

  // Functions: deploy, invoke (argument and stdin), list, delete.
  EXPECT_EQ(Enoki("deploy greet --handler echo --keygroup shop --call-timeout-ms 2000 --wait-ms "
                  "3000" +
                  n)
                .status,
            0);
  EXPECT_EQ(Enoki("invoke greet hello" + n).text, "hello\n");
  std::string piped_body =
      "printf 'from stdin' | " + std::string(ENOKI_BINARY) + " invoke greet --file -" + n;
  EXPECT_EQ(std::system(piped_body.c_str()), 0);
  Output listed = Enoki("functions list" + n);
  EXPECT_NE(listed.text.find("greet\tnative:echo\tkeygroup=shop\tinvocations=2"), std::string::npos)
      << listed.text;
  Output log = Enoki("functions logs greet --tail 1 --utc" + n);
  EXPECT_NE(log.text.find("deployed native:echo on keygroup shop"), std::string::npos) << log.text;
  // A readable time: 2026-12-04T09:05:07.161+00:00.
  EXPECT_TRUE(std::regex_search(
      log.text, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 #0 deployed)")))
      << log.text;
  // The version names the commit it was built from, when built from a git checkout.
  Output version = Enoki("--version");
  EXPECT_EQ(version.text.rfind("enoki 0.", 0), 0u) << version.text;
  if (std::filesystem::exists(std::string(ENOKI_SOURCE_DIR) + "/.git")) {
    Output head =
        testing::RunShell("git -C " + std::string(ENOKI_SOURCE_DIR) +
                          " -c safe.directory=" + ENOKI_SOURCE_DIR + " rev-parse --short HEAD");
    ASSERT_FALSE(head.text.empty());
    EXPECT_NE(version.text.find(head.text.substr(0, head.text.size() - 1)), std::string::npos)
        << version.text;
  }
  EXPECT_EQ(Enoki("functions delete greet" + n).status, 0);
  EXPECT_EQ(Enoki("invoke greet x" + n).text,
            "enoki: error: not found: function 'greet' is not deployed at solo (node " + endpoint +
                ")\n");
  // A keygroup the node does not know is created when asked.
  Output created = Enoki("deploy fresh --handler echo --keygroup fresh --create-keygroup" + n);
  EXPECT_EQ(created.status, 0) << created.text;
  EXPECT_EQ(created.text, "created keygroup fresh (its replica: the node asked)\n");
  EXPECT_NE(Enoki("keygroup info fresh" + n).text.find("replicas: solo"), std::string::npos);
  EXPECT_EQ(Enoki("invoke fresh hi" + n).text, "hi\n");
  Output bad_param = Enoki("deploy g --handler echo --keygroup shop --param novalue" + n);
  EXPECT_EQ(bad_param.text, "enoki: error: --param 'novalue' must look like KEY=VALUE\n");

  Output missing = Enoki("kv get shop apples" + n);
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(missing.text,
            "enoki: error: not found: key 'apples' not found in keygroup 'shop' (node " + endpoint +
                ")\n");
  Output unknown = Enoki("keygroup create x --replicas nobody" + n);
  EXPECT_EQ(unknown.status, 1);
  EXPECT_NE(unknown.text.find("'nobody' is not a node known to solo"), std::string::npos);
  node->Stop();
  std::filesystem::remove(config);
  std::filesystem::remove(ready);
}

TEST(CliTest, BadCommandLinesFailWithOneClearLine) {
  Output bad_id = Enoki("node --id 'no spaces' --in-memory");
  EXPECT_EQ(bad_id.status, 1);
  EXPECT_NE(bad_id.text.find("--id 'no spaces' may only hold"), std::string::npos) << bad_id.text;
  Output bad_peer = Enoki("node --id a --peer b --in-memory");
  EXPECT_EQ(bad_peer.status, 1);
  EXPECT_NE(bad_peer.text.find("must look like ID=ENDPOINT"), std::string::npos);
  Output bad_endpoint = Enoki("node --id a --peer b=foo://x --in-memory");
  EXPECT_EQ(bad_endpoint.status, 1);
  EXPECT_NE(bad_endpoint.text.find("--peer b: 'foo://x'"), std::string::npos) << bad_endpoint.text;
  Output no_node = Enoki("kv get kg k --node tcp://127.0.0.1:1 --wait-ms 200");
  EXPECT_EQ(no_node.status, 1);
  EXPECT_NE(no_node.text.find("no answer from tcp://127.0.0.1:1 within 200 ms"), std::string::npos);
  EXPECT_NE(Enoki("kv frobnicate").status, 0);
}

// Every command, given what a user gets wrong (an endpoint without a scheme or with another one,
// a bad port, nothing listening, an unknown keygroup, a missing function, a bad flag, a file that
// does not exist, a value too large), answers with one line on stderr and exit status 1 (or 2 for
// a command line it cannot parse), naming what is wrong: never an abort.
TEST(CliTest, EveryWrongInputIsOneLineAndExitOneOrTwo) {
  std::string dir = ::testing::TempDir() + "enoki-cli-wrong-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::string ready = dir + "/solo.ready";
  auto node = adapters::Subprocess::Start(
      {ENOKI_BINARY, "node", "--id", "solo", "--listen", "127.0.0.1:0", "--in-memory",
       "--max-value-size", "1KiB", "--log-level", "warn", "--ready-file", ready},
      dir + "/solo.log");
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  auto bound = adapters::WaitForReadyFile(ready, "solo", *node, std::chrono::seconds(10));
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  // HOST:PORT, without a scheme, is taken as tcp://HOST:PORT.
  std::string host_port = bound->endpoint.substr(std::string("tcp://").size());
  std::string n = " --node " + host_port;
  ASSERT_EQ(Enoki("keygroup create shop" + n).status, 0);
  ASSERT_EQ(Enoki("kv put shop apples 12" + n).text, "");
  std::string big = dir + "/big";
  std::ofstream(big) << std::string(2000, 'x');
  std::string missing = dir + "/does-not-exist";

  struct Case {
    std::string args;
    std::string says;  // a part of the line
  };
  const Case cases[] = {
      // Endpoints.
      {"kv get shop apples --node http://" + host_port,
       "a node speaks tcp:// and ipc://, not http://"},
      {"kv get shop apples --node 127.0.0.1:99999", "the port '99999' is not a number from 1"},
      {"kv get shop apples --node localhost", "'localhost': not an endpoint"},
      {"kv get shop apples --node nowhere:1:2",
       "the host 'nowhere:1' has a ':': write an IPv6 address in brackets"},
      {"kv get shop apples --node 127.0.0.1:1 --wait-ms 300",
       "no answer from tcp://127.0.0.1:1 within 300 ms: nothing listens at 127.0.0.1:1 "
       "(connection refused)"},
      {"node status --node ipc://" + missing + " --wait-ms 300",
       "nothing listens at " + missing + " (no such socket file)"},
      {"node --id a --in-memory --listen 127.0.0.1:70000", "--listen: '127.0.0.1:70000'"},
      {"node --id a --in-memory --listen http://127.0.0.1:7000", "not http://"},
      {"node --id a --in-memory --redis nonsense", "--redis 'nonsense' must be HOST:PORT"},
      {"node --id a --in-memory --redis 0.0.0.0:6379",
       "--redis 0.0.0.0:6379 is reachable beyond this host without TLS or tokens"},
      {"node --id a --in-memory --redis-keygroup kg", "--redis-keygroup needs --redis"},
      {"node --id a --in-memory --peer b=127.0.0.1", "--peer b: '127.0.0.1': not an endpoint"},
      {"node --id a --in-memory --join ftp://127.0.0.1:1", "--join: 'ftp://127.0.0.1:1'"},
      // What the node does not have.
      {"kv get nokg apples" + n, "keygroup 'nokg' does not exist"},
      {"kv put nokg apples 1" + n, "keygroup 'nokg' does not exist"},
      {"kv scan nokg" + n, "keygroup 'nokg' does not exist"},
      {"kv append nokg x" + n, "keygroup 'nokg' does not exist"},
      {"kv delete nokg apples" + n, "keygroup 'nokg' does not exist"},
      {"keygroup remove-replica nokg solo" + n, "keygroup 'nokg' does not exist"},
      {"keygroup list --node http://" + host_port, "not http://"},
      {"functions list --node 127.0.0.1:1 --wait-ms 300", "nothing listens at 127.0.0.1:1"},
      {"node leave --node ftp://" + host_port, "not ftp://"},
      {"kv get shop pears" + n, "key 'pears' not found in keygroup 'shop'"},
      {"keygroup info nokg" + n, "keygroup 'nokg' does not exist"},
      {"keygroup delete nokg" + n, "keygroup 'nokg' does not exist"},
      {"keygroup add-replica nokg solo" + n, "keygroup 'nokg' does not exist"},
      {"keygroup create other --replicas nobody" + n, "'nobody' is not a node known to solo"},
      {"invoke nofn" + n, "function 'nofn' is not deployed at solo"},
      {"functions logs nofn" + n, "function 'nofn' is not deployed at solo"},
      {"functions delete nofn" + n, "function 'nofn' is not deployed at solo"},
      {"deploy f --handler nosuch --keygroup shop" + n, "no native function 'nosuch'"},
      {"deploy f --handler echo --keygroup shpo" + n,
       "keygroup 'shpo' does not exist (the node has: shop): create it first (`enoki keygroup "
       "create shpo`), or deploy with --create-keygroup"},
      // Command lines that do not parse.
      {"frobnicate", "enoki: 'frobnicate' is not a subcommand (subcommands: node, kv,"},
      {"kv", "enoki kv: a subcommand is required"},
      {"kv frobnicate" + n, "enoki kv: "},
      {"kv get shop apples --bogus" + n, "enoki kv get: "},
      {"kv get" + n, "enoki kv get: keygroup is required"},
      {"keygroup create" + n, "enoki keygroup create: name is required"},
      {"report", "enoki report: database is required"},
      {"report a.db b.db c.db", "enoki report: database: one run's .db file, or two"},
      {"node --id a --in-memory --bogus", "enoki node: "},
      {"emulate x.yaml --duration soon", "'soon' is not a number of seconds above 0"},
      // Files that do not exist.
      {"kv put shop k --file " + missing + n, "cannot read file " + missing},
      {"scenario check " + missing, missing},
      {"emulate " + missing, missing},
      {"simulate " + missing, missing},
      {"calibrate " + missing, missing},
      {"report " + missing, missing},
      {"run " + missing + " --cluster " + missing, missing},
      {"cluster plan " + missing + " --hosts " + missing, missing},
      {"deploy f --runtime process --upload " + missing + " --handler f.py --keygroup shop" + n,
       missing},
      {"node --config " + missing, missing},
      {"kv get shop apples --identity " + missing + " --server-key " + missing + n, missing},
      {"keys generate x --dir " + missing, "enoki keys generate: --dir: "},
      {"keys token x --dir " + missing, "enoki keys token: --dir: "},
      {"demo --dir /proc/enoki-demo", "cannot create /proc/enoki-demo"},
      // Values too large.
      {"kv put shop big --file " + big + n, "1024"},
      {"kv get shop apples --wait-ms 99999999" + n, "enoki kv get: "},
      {"kv scan shop --count 99999999999" + n, "enoki kv scan: "},
      {"deploy f --handler echo --keygroup shop --concurrency 5000" + n, "over the 1024"},
      {"keygroup create " + std::string(300, 'k') + n, "keygroup"},
      {"node --id a --in-memory --retry-ms 999999", "enoki node: "},
      {"node --id a --in-memory --listen ipc://" + std::string(200, 'p'), "over the 107"},
  };
  for (const Case& c : cases) {
    Output out = Enoki(c.args);
    EXPECT_TRUE(out.status == 1 || out.status == 2) << c.args << "\n"
                                                    << out.status << ": " << out.text;
    EXPECT_EQ(out.text.rfind("enoki: error: ", 0), 0u) << c.args << "\n" << out.text;
    EXPECT_EQ(std::count(out.text.begin(), out.text.end(), '\n'), 1) << c.args << "\n" << out.text;
    EXPECT_NE(out.text.find(c.says), std::string::npos) << c.args << "\n" << out.text;
  }
  EXPECT_EQ(node->Stop(), 0);
  std::filesystem::remove_all(dir);
}

// A folder of its own under the test's temporary folder, emptied first.
std::string FreshDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "enoki-cli-" + std::to_string(::getpid()) + "-" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// `enoki node --config FILE ARGS` with `text` in FILE: what it printed (it must fail at once).
Output NodeWithConfig(const std::string& file, const std::string& text,
                      const std::string& args = "") {
  std::ofstream(file) << text;
  return Enoki("node --config " + file + " " + args);
}

TEST(CliTest, ConfigFileErrorsNameTheFileAndLine) {
  std::string f = FreshDir("strict") + "/node.toml";
  EXPECT_EQ(
      NodeWithConfig(f, "id = \"a\"\nin-memory = true\n\n# where\ndatadir = \"/tmp/x\"\n").text,
      "enoki: error: " + f + ":5: unknown key 'datadir' (did you mean 'data-dir'?)\n");
  EXPECT_EQ(NodeWithConfig(f, "peers = [\"b=ipc:///tmp/b\"]\nid = \"a\"\n").text,
            "enoki: error: " + f + ":1: unknown key 'peers' (did you mean 'peer'?)\n");
  // Underscores are not dashes; a key nothing is near to gets no suggestion.
  EXPECT_EQ(NodeWithConfig(f, "id = \"a\"\ndata_dir = \"d\"\n").text,
            "enoki: error: " + f + ":2: unknown key 'data_dir' (did you mean 'data-dir'?)\n");
  EXPECT_EQ(NodeWithConfig(f, "id = \"a\"\nfrobnicate = 1\n").text,
            "enoki: error: " + f + ":2: unknown key 'frobnicate'\n");
  // The key is found wherever CLI11 would look for it: after a multi-line array, in a section.
  EXPECT_EQ(
      NodeWithConfig(
          f, "peer = [\"b=ipc:///tmp/b\",\n \"c=ipc:///tmp/c\",\n \"d=ipc:///tmp/d\"]\nlisen = 1\n")
          .text,
      "enoki: error: " + f + ":4: unknown key 'lisen' (did you mean 'listen'?)\n");
  EXPECT_EQ(NodeWithConfig(f, "id = \"a\"\n[node]\nin-memory = true\n").text,
            "enoki: error: " + f +
                ":2: unknown section '[node]' (keys go at the top of the file, or under "
                "[default])\n");
  // Given twice: CLI11 would keep the first value.
  EXPECT_EQ(NodeWithConfig(f, "id = \"a\"\nin-memory = true\nid = \"b\"\n").text,
            "enoki: error: " + f + ":3: 'id' is given again (first on line 1)\n");
  EXPECT_EQ(
      NodeWithConfig(f, "peer = \"b=ipc:///tmp/b\"\nid = \"a\"\npeer = \"c=ipc:///tmp/c\"\n").text,
      "enoki: error: " + f +
          ":3: 'peer' is given again (first on line 1): give all its values together, in "
          "one array or on lines one after another\n");
  EXPECT_EQ(NodeWithConfig(f, "config = \"other.toml\"\n").text,
            "enoki: error: " + f + ":1: 'config' cannot be set in a config file\n");
  // A value CLI11 refuses is reported at its line, unless the command line gave the option.
  Output range = NodeWithConfig(f, "id = \"a\"\nretry-ms = 0\n");
  EXPECT_EQ(range.status, 1);
  EXPECT_EQ(range.text.rfind("enoki: error: " + f + ":2: --retry-ms: ", 0), 0u) << range.text;
  Output typed = NodeWithConfig(f, "id = \"a\"\nseed = \"many\"\n");
  EXPECT_EQ(typed.text.rfind("enoki: error: " + f + ":2: ", 0), 0u) << typed.text;
  EXPECT_NE(typed.text.find("--seed"), std::string::npos) << typed.text;
  Output command_line = NodeWithConfig(f, "id = \"a\"\nin-memory = true\n", "--retry-ms 0");
  EXPECT_NE(command_line.status, 0);
  EXPECT_EQ(command_line.text.find(f + ":"), std::string::npos) << command_line.text;
  std::filesystem::remove_all(std::filesystem::path(f).parent_path());
}

TEST(CliTest, OnePeerListServesEveryNode) {
  std::string dir = FreshDir("shared");
  std::string config = dir + "/cluster.toml";
  std::ofstream(config) << "peer = [\"a=ipc://" << dir << "/a\", \"b=ipc://" << dir
                        << "/b\", \"c=ipc://" << dir
                        << "/c\"]\nretry-ms = 50\nlog-level = \"warn\"\n";
  std::map<std::string, adapters::Subprocess> nodes;
  for (std::string id : {"a", "b", "c"}) {
    std::string ready = dir + "/" + id + ".ready";
    auto p = adapters::Subprocess::Start(
        {ENOKI_BINARY, "node", "--config", config, "--id", id, "--listen",
         "ipc://" + dir + "/" + id, "--data-dir", dir + "/data-" + id, "--ready-file", ready},
        dir + "/" + id + ".log");
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    auto& node = nodes.emplace(id, std::move(*p)).first->second;
    auto info = adapters::WaitForReadyFile(ready, id, node, std::chrono::seconds(10));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
  }
  std::string at_a = " --node ipc://" + dir + "/a";
  ASSERT_EQ(Enoki("keygroup create shared --replicas a,b,c" + at_a).status, 0);
  ASSERT_EQ(Enoki("kv put shared k v" + at_a).status, 0);
  for (std::string id : {"b", "c"}) {
    EXPECT_TRUE(testing::NodeCluster::Eventually([&] {
      return Enoki("kv get shared k --node ipc://" + dir + "/" + id).text == "v\n";
    })) << id;
  }
  for (auto& [id, node] : nodes) EXPECT_EQ(node.Stop(), 0) << id;
  std::filesystem::remove_all(dir);
}

TEST(CliTest, ADataDirectoryServesOneNode) {
  std::string dir = FreshDir("owner");
  std::string data = dir + "/data";
  auto start = [&](const std::string& id) {
    std::string ready = dir + "/" + id + ".ready";
    std::filesystem::remove(ready);
    auto p = adapters::Subprocess::Start(
        {ENOKI_BINARY, "node", "--id", id, "--listen", "ipc://" + dir + "/" + id, "--data-dir",
         data, "--log-level", "warn", "--ready-file", ready},
        dir + "/" + id + ".log");
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    auto info = adapters::WaitForReadyFile(ready, id, *p, std::chrono::seconds(10));
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(p->Stop(), 0);
  };
  start("a");
  Output other =
      Enoki("node --id b --listen ipc://" + dir + "/b --data-dir " + data + " --log-level warn");
  EXPECT_EQ(other.status, 1);
  EXPECT_EQ(other.text, "enoki: error: " + data +
                            "/store.db holds the state of node 'a', not of 'b' (a data directory "
                            "serves one node: start that node on it, or give --data-dir another "
                            "folder)\n");
  start("a");  // its own node may come back
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace enoki
