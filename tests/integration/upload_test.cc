// Uploaded code (`enoki deploy --upload`) through real node processes: a Python function sent
// from a folder runs from the node's own copy in its data directory, survives the node's
// restart, and is replaced by a second upload (whose files alone remain); deleting the function
// removes its files. Refusals: over the node's --max-upload-bytes, paths that leave the folder,
// a handler that is not in the upload, a node without process functions, a client without the
// deploy-process permission.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "adapters/access.h"
#include "tests/integration/commands.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/namespaces.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::Enoki;
using testing::NodeCluster;
using testing::Output;

// Process functions are on: an upload runs only where programs may.
const std::vector<std::string> kProcessDir = {"--process-dir", ENOKI_TEST_FUNCTIONS,
                                              "--allow-upload"};

// A temporary folder that a test fills with a function's files.
class SourceFolder {
 public:
  SourceFolder() {
    dir_ = fs::temp_directory_path() /
           ("enoki-upload-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
  }
  ~SourceFolder() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const std::string& path, const std::string& text, bool executable = false) {
    fs::path p = dir_ / path;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    fs::permissions(p, executable ? fs::perms(0755) : fs::perms(0644));
  }
  std::string path() const { return dir_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
};

// fn.py answers VERSION, what lib.py makes of the body, and data/note.txt (read from the folder
// it runs in).
void PythonFunction(SourceFolder& src, const std::string& version) {
  src.Write("fn.py",
            "#!/usr/bin/env python3\n"
            "import enoki\n"
            "import lib\n"
            "def handle(body):\n"
            "    with open('data/note.txt') as f:\n"
            "        note = f.read().strip()\n"
            "    return '" +
                version +
                " ' + lib.shout(body.decode()) + ' ' + note\n"
                "enoki.serve(handle)\n",
            /*executable=*/true);
  src.Write("lib.py", "def shout(s):\n    return s.upper()\n");
  src.Write("__init__.py", "");  // an empty file travels too
  src.Write("data/note.txt", "note-" + version + "\n");
}

// fn.py alone, which answers "v2 " and the files of the folder it runs in.
void ListingFunction(SourceFolder& src) {
  src.Write("fn.py",
            "#!/usr/bin/env python3\n"
            "import enoki\n"
            "import os\n"
            "enoki.serve(lambda body: 'v2 ' + ','.join(sorted(os.listdir('.'))))\n",
            /*executable=*/true);
}

// The folder where node `id` of `cluster` keeps uploaded code.
fs::path CodeDir(const NodeCluster& cluster, const std::string& id) {
  return fs::path(cluster.log(id)).parent_path() / id / "functions";
}

void CreateKeygroup(adapters::Client& c, const std::string& name) {
  proto::CreateKeygroupRequest kg;
  kg.set_name(name);
  ASSERT_TRUE(c.CreateKeygroup(kg).ok());
}

// The same over a network: the node runs on another "host" (a network namespace of its own, on a
// bridge), and the CLI here uploads to its address.
TEST(UploadTest, AFolderUploadedToANodeOnAnotherHostRunsThereSurvivesARestartAndIsReplaced) {
  if (std::string why = testing::Namespaces::Unavailable(); !why.empty()) GTEST_SKIP() << why;
  testing::Namespaces hosts({"far"});
  fs::path dir = fs::temp_directory_path() / ("enoki-upload-far-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    testing::HostNode node = hosts.StartNode("far", dir.string(), kProcessDir);
    ASSERT_TRUE(node.process.has_value());
    std::string n = " --node " + node.endpoint;
    ASSERT_EQ(Enoki("keygroup create kg" + n).status, 0);
    SourceFolder v1;
    PythonFunction(v1, "v1");
    Output deployed =
        Enoki("deploy up --runtime process --upload " + v1.path() + " --handler fn.py -k kg" + n);
    ASSERT_EQ(deployed.status, 0) << deployed.text;
    EXPECT_EQ(Enoki("invoke up hello" + n).text, "v1 HELLO note-v1\n");
    fs::remove_all(v1.path());  // the node runs its own copy
    node.process->Stop();
    node = hosts.StartNode("far", dir.string(), kProcessDir);
    ASSERT_TRUE(node.process.has_value());
    EXPECT_EQ(Enoki("invoke up again" + n).text, "v1 AGAIN note-v1\n");
    SourceFolder v2;
    ListingFunction(v2);
    deployed =
        Enoki("deploy up --runtime process --upload " + v2.path() + " --handler fn.py -k kg" + n);
    ASSERT_EQ(deployed.status, 0) << deployed.text;
    EXPECT_EQ(Enoki("invoke up x" + n).text, "v2 fn.py\n");
    node.process->Stop();
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(UploadTest, APythonFolderRunsSurvivesARestartAndIsReplacedByASecondUpload) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg");
  std::string n = " --node " + cluster.endpoint("a");
  SourceFolder v1;
  PythonFunction(v1, "v1");

  Output deployed =
      Enoki("deploy up --runtime process --upload " + v1.path() + " --handler fn.py -k kg" + n);
  ASSERT_EQ(deployed.status, 0) << deployed.text;
  EXPECT_EQ(Enoki("invoke up hello" + n).text, "v1 HELLO note-v1\n");
  // The node runs its own copy: the source may go.
  fs::path code = CodeDir(cluster, "a") / "up";
  EXPECT_TRUE(fs::exists(code / "1" / "fn.py"));
  EXPECT_TRUE(fs::exists(code / "1" / "data" / "note.txt"));
  EXPECT_TRUE(fs::exists(code / "1" / "__init__.py"));
  EXPECT_NE(fs::status(code / "1" / "fn.py").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  fs::remove_all(v1.path());
  Output listed = Enoki("functions list" + n);
  EXPECT_NE(listed.text.find("process:fn.py (uploaded, "), std::string::npos) << listed.text;

  // SIGKILL: what the node acknowledged is in its data directory.
  cluster.Kill("a");
  cluster.Start("a");
  auto after = cluster.Client("a")->Invoke("up", "again");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(*after, "v1 AGAIN note-v1");

  // A second upload replaces the first: other files, and the old ones are gone.
  SourceFolder v2;
  ListingFunction(v2);
  deployed =
      Enoki("deploy up --runtime process --upload " + v2.path() + " --handler fn.py -k kg" + n);
  ASSERT_EQ(deployed.status, 0) << deployed.text;
  EXPECT_EQ(Enoki("invoke up x" + n).text, "v2 fn.py\n");
  EXPECT_FALSE(fs::exists(code / "1"));
  EXPECT_TRUE(fs::exists(code / "2" / "fn.py"));
  EXPECT_FALSE(fs::exists(code / "2" / "lib.py"));

  cluster.Stop("a");
  cluster.Start("a");
  EXPECT_EQ(Enoki("invoke up x" + n).text, "v2 fn.py\n");

  // A program on the node's machine instead: the uploaded files go.
  ASSERT_EQ(Enoki("deploy up --runtime process --handler " + std::string(ENOKI_TEST_FUNCTIONS) +
                  "/counter.py -k kg" + n)
                .status,
            0);
  EXPECT_EQ(Enoki("invoke up" + n).text, "1\n");
  EXPECT_FALSE(fs::exists(code));

  // Deleting an uploaded function removes its files.
  SourceFolder v3;
  PythonFunction(v3, "v3");
  ASSERT_EQ(
      Enoki("deploy up --runtime process --upload " + v3.path() + " --handler fn.py -k kg" + n)
          .status,
      0);
  EXPECT_EQ(Enoki("invoke up z" + n).text, "v3 Z note-v3\n");
  EXPECT_TRUE(fs::exists(code / "1" / "fn.py")) << "numbered from 1 again once none was left";
  ASSERT_EQ(Enoki("functions delete up" + n).status, 0);
  EXPECT_FALSE(fs::exists(code));
  EXPECT_TRUE(fs::is_empty(CodeDir(cluster, "a")));
}

TEST(UploadTest, AnUploadOverTheLimitIsRefusedNamingTheLimitAndTheSize) {
  NodeCluster cluster({"a"}, {"--process-dir", ENOKI_TEST_FUNCTIONS, "--allow-upload",
                              "--max-upload-bytes", "64KiB"});
  CreateKeygroup(*cluster.Client("a"), "kg");
  std::string n = " --node " + cluster.endpoint("a");
  SourceFolder src;
  PythonFunction(src, "v1");
  src.Write("big.bin", std::string(100 << 10, 'x'));
  Output refused =
      Enoki("deploy big --runtime process --upload " + src.path() + " --handler fn.py -k kg" + n);
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.text.find("resource exhausted: the upload of function 'big' holds "),
            std::string::npos)
      << refused.text;
  EXPECT_NE(refused.text.find("over this node's limit of 65536 bytes (--max-upload-bytes)"),
            std::string::npos)
      << refused.text;
  uintmax_t total = 0;  // every file's bytes and its path's
  for (const auto& f : fs::recursive_directory_iterator(src.path())) {
    if (f.is_regular_file()) {
      total += f.file_size() + fs::relative(f.path(), src.path()).string().size();
    }
  }
  EXPECT_NE(refused.text.find("holds " + std::to_string(total) + " bytes"), std::string::npos)
      << "the size, all files and paths together: " << refused.text;
  EXPECT_FALSE(fs::exists(CodeDir(cluster, "a") / "big"));
  // Far over it, over the node's largest message: the transport drops it; the client says why
  // there may be no answer.
  src.Write("big.bin", std::string(4 << 20, 'x'));
  Output dropped = Enoki("deploy big --runtime process --upload " + src.path() +
                         " --handler fn.py -k kg --wait-ms 1000" + n);
  EXPECT_NE(dropped.status, 0);
  EXPECT_NE(dropped.text.find("bytes: a node drops a request larger than its --max-upload-bytes"),
            std::string::npos)
      << dropped.text;
  // Under it, the same function goes.
  fs::remove(fs::path(src.path()) / "big.bin");
  Output deployed =
      Enoki("deploy big --runtime process --upload " + src.path() + " --handler fn.py -k kg" + n);
  EXPECT_EQ(deployed.status, 0) << deployed.text;
}

TEST(UploadTest, PathsThatLeaveTheFolderAreRefused) {
  NodeCluster cluster({"a"}, kProcessDir);
  auto a = cluster.Client("a");
  CreateKeygroup(*a, "kg");
  proto::FunctionSpec spec;
  spec.set_name("evil");
  spec.set_runtime("process");
  spec.set_handler("fn.py");
  spec.set_keygroup("kg");
  auto file = [](const std::string& path, bool executable = false) {
    proto::FunctionFile f;
    f.set_path(path);
    f.set_data("#!/bin/sh\necho pwned\n");
    f.set_executable(executable);
    return f;
  };
  struct Case {
    std::string path;
    std::string says;
  };
  for (const Case& c :
       {Case{"../escaped.sh", "escapes the uploaded folder ('..')"},
        Case{"lib/../../escaped.sh", "escapes the uploaded folder ('..')"},
        Case{"/tmp/escaped.sh", "is absolute"}, Case{"a//b.sh", "has an empty or '.' part"},
        Case{"./b.sh", "has an empty or '.' part"}}) {
    auto st = a->DeployFunction(spec, {file("fn.py", true), file(c.path)});
    EXPECT_EQ(st.code(), core::Code::kInvalidArgument) << c.path << ": " << st.ToString();
    EXPECT_NE(st.message().find("uploaded file '" + c.path + "' of function 'evil' " + c.says),
              std::string::npos)
        << st.message();
  }
  EXPECT_FALSE(fs::exists(CodeDir(cluster, "a").parent_path() / "escaped.sh"));
  EXPECT_FALSE(fs::exists("/tmp/escaped.sh"));
  EXPECT_TRUE(fs::is_empty(CodeDir(cluster, "a")));
  // A file that is also a folder, or twice.
  auto twice = a->DeployFunction(spec, {file("fn.py", true), file("x"), file("x/y")});
  EXPECT_NE(twice.message().find("'x' of function 'evil' is also a folder"), std::string::npos)
      << twice.ToString();
  // Only runtime process takes files.
  spec.set_runtime("native");
  spec.set_handler("echo");
  auto native = a->DeployFunction(spec, {file("fn.py", true)});
  EXPECT_NE(native.message().find("only runtime 'process' takes uploaded files"), std::string::npos)
      << native.ToString();
}

TEST(UploadTest, AHandlerMissingFromTheUploadIsRefusedNamingIt) {
  NodeCluster cluster({"a"}, kProcessDir);
  CreateKeygroup(*cluster.Client("a"), "kg");
  std::string n = " --node " + cluster.endpoint("a");
  SourceFolder src;
  PythonFunction(src, "v1");
  Output missing =
      Enoki("deploy f --runtime process --upload " + src.path() + " --handler main.py -k kg" + n);
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.text.find("the handler 'main.py' of function 'f' is not among the uploaded "
                              "files (__init__.py, data/note.txt, fn.py, lib.py)"),
            std::string::npos)
      << missing.text;
  Output not_executable =
      Enoki("deploy f --runtime process --upload " + src.path() + " --handler lib.py -k kg" + n);
  EXPECT_NE(not_executable.text.find("the handler 'lib.py' of function 'f' is not executable"),
            std::string::npos)
      << not_executable.text;
  EXPECT_TRUE(fs::is_empty(CodeDir(cluster, "a")));
  // A failed upload leaves the deployed one as it was.
  ASSERT_EQ(
      Enoki("deploy f --runtime process --upload " + src.path() + " --handler fn.py -k kg" + n)
          .status,
      0);
  Output again =
      Enoki("deploy f --runtime process --upload " + src.path() + " --handler gone.py -k kg" + n);
  EXPECT_NE(again.status, 0);
  EXPECT_EQ(Enoki("invoke f ok" + n).text, "v1 OK note-v1\n");
  EXPECT_TRUE(fs::exists(CodeDir(cluster, "a") / "f" / "1" / "fn.py"));
  EXPECT_FALSE(fs::exists(CodeDir(cluster, "a") / "f" / "2"));
}

TEST(UploadTest, UploadsFollowTheProcessFunctionRules) {
  SourceFolder src;
  PythonFunction(src, "v1");
  {
    // Without --process-dir: no programs, uploaded or not.
    NodeCluster cluster({"a"});
    CreateKeygroup(*cluster.Client("a"), "kg");
    Output off = Enoki("deploy f --runtime process --upload " + src.path() +
                       " --handler fn.py -k kg --node " + cluster.endpoint("a"));
    EXPECT_NE(off.status, 0);
    EXPECT_NE(off.text.find("process functions are off at node a"), std::string::npos) << off.text;
  }
  {
    // With --process-dir but not --allow-upload: the programs on the host only.
    NodeCluster cluster({"a"}, {"--process-dir", ENOKI_TEST_FUNCTIONS});
    CreateKeygroup(*cluster.Client("a"), "kg");
    Output off = Enoki("deploy f --runtime process --upload " + src.path() +
                       " --handler fn.py -k kg --node " + cluster.endpoint("a"));
    EXPECT_NE(off.status, 0);
    EXPECT_NE(off.text.find("node a takes no uploaded code"), std::string::npos) << off.text;
    EXPECT_NE(Enoki("node --id b --process-dir /tmp --http-manage 127.0.0.1:0")
                  .text.find("--http-manage deploys uploaded code, which needs --allow-upload"),
              std::string::npos);
  }
  // With keys: the deploy-process permission, as for any program.
  testing::KeyFolder keys({"n", "ops", "deployer"});
  std::string access = keys.AccessLines(
      {"ops ops.pub admin read:* write:* deploy-process invoke:*", "deployer deployer.pub deploy"});
  NodeCluster cluster({"n"}, {"--key", keys.key("n"), "--access", access, "--process-dir",
                              ENOKI_TEST_FUNCTIONS, "--allow-upload"});
  auto as = [&](const std::string& who) {
    return adapters::Client(cluster.context(), cluster.endpoint("n"), milliseconds(5000), "n",
                            keys.ClientOf(who, "n"));
  };
  auto ops = as("ops");
  auto deployer = as("deployer");
  CreateKeygroup(ops, "kg");
  proto::FunctionSpec spec;
  spec.set_name("f");
  spec.set_runtime("process");
  spec.set_handler("fn.py");
  spec.set_keygroup("kg");
  proto::FunctionFile fn;
  fn.set_path("fn.py");
  fn.set_data("#!/usr/bin/env python3\nimport enoki\nenoki.serve(lambda b: 'up ' + b.decode())\n");
  fn.set_executable(true);
  auto denied = deployer.DeployFunction(spec, {fn});
  EXPECT_EQ(denied.code(), core::Code::kPermissionDenied);
  EXPECT_NE(denied.message().find("'deploy-process'"), std::string::npos) << denied.message();
  EXPECT_TRUE(fs::is_empty(CodeDir(cluster, "n")));
  auto deployed = ops.DeployFunction(spec, {fn});
  ASSERT_TRUE(deployed.ok()) << deployed.ToString();
  // The sandbox's user (nobody, under a root node) reads and runs the node's copy.
  auto r = ops.Invoke("f", "there");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "up there");
}

// ---- tinyFaaS's management API (`enoki node --http-manage`) and zip archives -----------------

// Writes `files` (path -> text; a path ending in '*' is made executable, without the '*') into a
// zip archive at `zip`, with Python's zipfile, which writes any path asked for (also '../x').
void MakeZip(const std::string& zip, const std::map<std::string, std::string>& files) {
  std::string script = "import zipfile\nz = zipfile.ZipFile('" + zip + "', 'w')\n";
  for (const auto& [path, text] : files) {
    bool x = path.back() == '*';
    std::string name = x ? path.substr(0, path.size() - 1) : path;
    script += "i = zipfile.ZipInfo('" + name + "')\ni.external_attr = (0o100" +
              (x ? "755" : "644") + ") << 16\nz.writestr(i, " + "'''" + text + "''')\n";
  }
  script += "z.close()\n";
  std::ofstream(zip + ".py") << script;
  ASSERT_EQ(testing::RunShell("python3 " + zip + ".py 2>&1").status, 0);
}

// POSTs the tinyFaaS upload body for `zip` to the management API on `port`; `options`: more curl
// options.
testing::Http TinyFaasUpload(int port, const std::string& name, const std::string& env,
                             const std::string& zip, const std::string& options = "") {
  std::string body = zip + ".json";
  std::string make = "printf '{\"name\": \"" + name + "\", \"env\": \"" + env +
                     "\", \"threads\": 2, \"zip\": \"%s\"}' \"$(base64 -w0 " + zip + ")\" > " +
                     body;
  EXPECT_EQ(testing::RunShell(make).status, 0);
  Output out = testing::RunShell("curl -s -o - -w '\\n%{http_code}' --data-binary @" + body + " " +
                                 options + " http://127.0.0.1:" + std::to_string(port) + "/upload");
  auto nl = out.text.rfind('\n');
  return {std::atoi(out.text.c_str() + nl + 1), out.text.substr(0, nl)};
}

testing::Http CurlManage(int port, const std::string& path, const std::string& body = "",
                         const std::string& options = "") {
  Output out = testing::RunShell("curl -s -o - -w '\\n%{http_code}' " +
                                 (body.empty() ? std::string() : "--data-binary '" + body + "' ") +
                                 options + " http://127.0.0.1:" + std::to_string(port) + path);
  auto nl = out.text.rfind('\n');
  return {std::atoi(out.text.c_str() + nl + 1), out.text.substr(0, nl)};
}

const char* kTinyFaasFn =
    "def fn(input, headers):\n"
    "    return 'tf ' + (input or '') + ' ' + open('note.txt').read().strip()\n";

TEST(TinyFaasManagementTest, UploadListLogsDeleteLikeTinyFaaS) {
  NodeCluster cluster({"a"},
                      {"--process-dir", ENOKI_TEST_FUNCTIONS, "--allow-upload", "--http-manage",
                       "127.0.0.1:0", "--max-upload-bytes", "256KiB"},
                      /*http=*/true);
  int manage = cluster.manage_port("a");
  SourceFolder work;
  std::string zip = work.path() + "/fn.zip";
  MakeZip(zip, {{"fn.py", kTinyFaasFn}, {"note.txt", "from-the-zip"}, {"requirements.txt", ""}});

  auto up = TinyFaasUpload(manage, "tf", "python3", zip);
  ASSERT_EQ(up.status, 200) << up.body;
  auto called = testing::Curl(cluster.http_port("a"), "tf", "hi");
  EXPECT_EQ(called.status, 200) << called.body;
  EXPECT_EQ(called.body, "tf hi from-the-zip");
  EXPECT_EQ(CurlManage(manage, "/list").body, "tf\n");
  auto logs = CurlManage(manage, "/logs?name=tf");
  EXPECT_EQ(logs.status, 200);
  EXPECT_NE(logs.body.find("deployed process:enoki-tinyfaas.py on keygroup tf"), std::string::npos)
      << logs.body;
  EXPECT_NE(CurlManage(manage, "/logs").body.find("tf: "), std::string::npos);
  EXPECT_TRUE(fs::exists(CodeDir(cluster, "a") / "tf" / "1" / "note.txt"));

  // tinyFaaS's binary runtime: fn.sh, once per call, the body on its stdin.
  std::string sh = work.path() + "/sh.zip";
  MakeZip(sh, {{"fn.sh*", "#!/bin/sh\\necho \"sh $(cat)\"\\n"}});
  auto sh_up = TinyFaasUpload(manage, "sh", "binary", sh);
  ASSERT_EQ(sh_up.status, 200) << sh_up.body;
  EXPECT_EQ(testing::Curl(cluster.http_port("a"), "sh", "there").body, "sh there\n");

  // Refusals: paths out of the folder, an unknown env, too large, wrong routes.
  std::string evil = work.path() + "/evil.zip";
  MakeZip(evil, {{"fn.py", kTinyFaasFn}, {"../evil.py", "x"}});
  auto refused = TinyFaasUpload(manage, "evil", "python3", evil);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("uploaded file '../evil.py' of function 'evil' escapes the "
                              "uploaded folder ('..')"),
            std::string::npos)
      << refused.body;
  std::string absolute = work.path() + "/abs.zip";
  MakeZip(absolute, {{"fn.py", kTinyFaasFn}, {"/tmp/abs.py", "x"}});
  refused = TinyFaasUpload(manage, "evil", "python3", absolute);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("'/tmp/abs.py' of function 'evil' is absolute"), std::string::npos)
      << refused.body;
  EXPECT_FALSE(fs::exists(CodeDir(cluster, "a") / "evil"));
  EXPECT_EQ(TinyFaasUpload(manage, "n", "nodejs", zip).body,
            "env 'nodejs' is not supported here; supported: binary, python3\n");
  std::string big = work.path() + "/big.zip";
  MakeZip(big, {{"fn.py", kTinyFaasFn}, {"big.txt", std::string(300 << 10, 'x')}});
  auto too_big = TinyFaasUpload(manage, "big", "python3", big);
  EXPECT_EQ(too_big.status, 413);
  EXPECT_NE(too_big.body.find("over the limit of 262144 bytes (--max-upload-bytes)"),
            std::string::npos)
      << too_big.body;
  EXPECT_EQ(CurlManage(manage, "/list", "", "-X POST").status, 405);
  EXPECT_EQ(CurlManage(manage, "/tf", "x").status, 404);

  ASSERT_EQ(CurlManage(manage, "/delete", "{\"name\": \"tf\"}").status, 200);
  EXPECT_EQ(CurlManage(manage, "/list").body, "sh\n");
  EXPECT_EQ(testing::Curl(cluster.http_port("a"), "tf", "hi").status, 404);
  EXPECT_FALSE(fs::exists(CodeDir(cluster, "a") / "tf"));
  EXPECT_EQ(CurlManage(manage, "/delete", "{\"name\": \"tf\"}").status, 404);
}

TEST(TinyFaasManagementTest, TheCliUploadsAZipAndTheNodeRefusesOneThatEscapes) {
  NodeCluster cluster({"a"}, kProcessDir);
  CreateKeygroup(*cluster.Client("a"), "kg");
  std::string n = " --node " + cluster.endpoint("a");
  SourceFolder work;
  std::string zip = work.path() + "/fn.zip";
  MakeZip(zip, {{"bin/run*",
                 "#!/usr/bin/env python3\nimport enoki\n"
                 "enoki.serve(lambda b: 'zip ' + open('../data.txt').read())\n"},
                {"data.txt", "inside"}});
  Output deployed =
      Enoki("deploy z --runtime process --upload " + zip + " --handler bin/run -k kg" + n);
  ASSERT_EQ(deployed.status, 0) << deployed.text;
  EXPECT_EQ(Enoki("invoke z" + n).text, "zip inside\n");

  std::string evil = work.path() + "/evil.zip";
  MakeZip(evil, {{"bin/run*", "x"}, {"../../escaped", "x"}});
  Output refused =
      Enoki("deploy z --runtime process --upload " + evil + " --handler bin/run -k kg" + n);
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.text.find("uploaded file '../../escaped' of function 'z' escapes"),
            std::string::npos)
      << refused.text;
  EXPECT_EQ(Enoki("invoke z" + n).text, "zip inside\n") << "the deployed version stays";

  // A symbolic link in a zip (`zip -y`) is refused by name, not unpacked as a file.
  std::string link = work.path() + "/link.zip";
  ASSERT_EQ(testing::RunShell("python3 -c \"import zipfile\nz = zipfile.ZipFile('" + link +
                              "', 'w')\ni = zipfile.ZipInfo('passwd')\n"
                              "i.create_system = 3\ni.external_attr = 0o120777 << 16\n"
                              "z.writestr(i, '/etc/passwd')\nz.writestr('bin/run', 'x')\n"
                              "z.close()\"")
                .status,
            0);
  refused = Enoki("deploy z --runtime process --upload " + link + " --handler bin/run -k kg" + n);
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.text.find("'passwd' is a symbolic link"), std::string::npos) << refused.text;
}

TEST(TinyFaasManagementTest, WithKeysItNeedsATokenThatMayDeployProcesses) {
  testing::KeyFolder keys({"n"});
  const std::string ops = "ops-token-of-the-test", viewer = "viewer-token-of-the-test";
  std::string access =
      keys.AccessLines({"ops token:" + adapters::TokenDigest(ops) + " deploy deploy-process",
                        "viewer token:" + adapters::TokenDigest(viewer) + " deploy"});
  NodeCluster cluster(
      {"n"}, {"--key", keys.key("n"), "--access", access, "--process-dir", ENOKI_TEST_FUNCTIONS,
              "--allow-upload", "--http-manage", "127.0.0.1:0"});
  int manage = cluster.manage_port("n");
  SourceFolder work;
  std::string zip = work.path() + "/fn.zip";
  MakeZip(zip, {{"fn.py", kTinyFaasFn}, {"note.txt", "k"}});
  auto none = TinyFaasUpload(manage, "tf", "python3", zip);
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_EQ(CurlManage(manage, "/list").status, 401);
  auto viewing =
      TinyFaasUpload(manage, "tf", "python3", zip, "-H 'Authorization: Bearer " + viewer + "'");
  EXPECT_EQ(viewing.status, 403);
  EXPECT_NE(viewing.body.find("'deploy-process'"), std::string::npos) << viewing.body;
  auto up = TinyFaasUpload(manage, "tf", "python3", zip, "-H 'Authorization: Bearer " + ops + "'");
  EXPECT_EQ(up.status, 200) << up.body;
  auto listed = CurlManage(manage, "/list", "", "-H 'Authorization: Bearer " + viewer + "'");
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.body, "tf\n");
}

}  // namespace
}  // namespace enoki
