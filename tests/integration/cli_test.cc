// The enoki command line as a user runs it: a node started from a config file, the kv and keygroup
// commands' output and exit codes, and their one-line errors.
#include <cstdio>
#include <filesystem>
#include <fstream>

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
  std::ofstream(config) << "id = \"solo\"\nlisten = \"tcp://127.0.0.1:0\"\n"
                        << "peer = [\"other=tcp://127.0.0.1:1\"]\nin-memory = true\n"
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
  EXPECT_EQ(Enoki("kv del shop apples" + n).status, 0);
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
  EXPECT_EQ(Enoki("deploy greet --handler echo --keygroup shop" + n).status, 0);
  EXPECT_EQ(Enoki("invoke greet hello" + n).text, "hello\n");
  std::string piped_body =
      "printf 'from stdin' | " + std::string(ENOKI_BINARY) + " invoke greet --file -" + n;
  EXPECT_EQ(std::system(piped_body.c_str()), 0);
  Output listed = Enoki("functions list" + n);
  EXPECT_NE(listed.text.find("greet\tnative:echo\tkeygroup=shop\tinvocations=2"), std::string::npos)
      << listed.text;
  Output log = Enoki("functions logs greet --tail 1" + n);
  EXPECT_NE(log.text.find("deployed native:echo on keygroup shop"), std::string::npos) << log.text;
  EXPECT_EQ(Enoki("functions delete greet" + n).status, 0);
  EXPECT_EQ(Enoki("invoke greet x" + n).text,
            "enoki: error: not found: function 'greet' is not deployed at solo (node " + endpoint +
                ")\n");
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
  EXPECT_NE(bad_endpoint.text.find("peer b at 'foo://x'"), std::string::npos) << bad_endpoint.text;
  Output no_node = Enoki("kv get kg k --node tcp://127.0.0.1:1 --timeout-ms 200");
  EXPECT_EQ(no_node.status, 1);
  EXPECT_NE(no_node.text.find("no answer from tcp://127.0.0.1:1 within 200 ms"), std::string::npos);
  EXPECT_NE(Enoki("kv frobnicate").status, 0);
}

}  // namespace
}  // namespace enoki
