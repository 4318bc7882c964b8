// Nodes with CURVE keys, as real `enoki node` processes: who may connect, what a client may send,
// what crosses the wire, and the refusal to listen beyond loopback without keys.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "adapters/access.h"
#include "adapters/curve.h"
#include "adapters/node_process.h"
#include "adapters/subprocess.h"
#include "net/codec.h"
#include "tests/integration/commands.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::Curl;
using testing::Enoki;
using testing::KeyFolder;
using testing::NodeCluster;
using testing::Output;

// Nodes a and b with keys; alice is the one admitted client. Both nodes get one list of peer keys,
// each node's own included (a node skips its own entry).
class SecureClusterTest : public ::testing::Test {
 protected:
  SecureClusterTest()
      : keys_({"a", "b", "alice", "mallory"}),
        cluster_({"a", "b"},
                 {"--access", keys_.Access({"alice"}), "--peer-key", "a=" + keys_.pub("a"),
                  "--peer-key", "b=" + keys_.pub("b")},
                 false, {{"a", {"--key", keys_.key("a")}}, {"b", {"--key", keys_.key("b")}}}) {}

  adapters::Client As(const std::string& client, const std::string& node,
                      milliseconds timeout = milliseconds(3000)) {
    return adapters::Client(cluster_.context(), cluster_.endpoint(node), timeout, node,
                            keys_.ClientOf(client, node));
  }

  KeyFolder keys_;
  NodeCluster cluster_;
};

TEST_F(SecureClusterTest, AKnownClientWritesAndTheReplicasAgree) {
  auto alice_a = As("alice", "a");
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  create.add_replicas("a");
  create.add_replicas("b");
  ASSERT_TRUE(alice_a.CreateKeygroup(create).ok());
  ASSERT_TRUE(alice_a.Put("kg", "k", "v").ok());
  auto alice_b = As("alice", "b");
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto got = alice_b.Get("kg", "k");
    return got.ok() && got->value() == "v";
  })) << "the write did not reach b over the peers' CURVE links";
}

TEST_F(SecureClusterTest, NoKeyOrAnUnknownKeyGetsNothing) {
  adapters::Client plain(cluster_.context(), cluster_.endpoint("a"), milliseconds(1000), "a");
  auto st = plain.CreateKeygroup(proto::CreateKeygroupRequest());
  EXPECT_EQ(st.code(), core::Code::kDeadlineExceeded) << st.ToString();

  auto mallory = As("mallory", "a", milliseconds(1000));
  proto::CreateKeygroupRequest create;
  create.set_name("mine");
  EXPECT_EQ(mallory.CreateKeygroup(create).code(), core::Code::kDeadlineExceeded);
  // Nothing was created: alice does not find it.
  EXPECT_EQ(As("alice", "a").KeygroupInfo("mine").status().code(), core::Code::kNotFound);
}

TEST_F(SecureClusterTest, AClientCannotSendPeerMessagesOrChangeLinks) {
  auto alice_a = As("alice", "a");
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  create.add_replicas("a");
  create.add_replicas("b");
  ASSERT_TRUE(alice_a.CreateKeygroup(create).ok());
  ASSERT_TRUE(alice_a.Put("kg", "k", "real").ok());
  auto meta = alice_a.KeygroupInfo("kg");
  ASSERT_TRUE(meta.ok());

  // An admitted client forges node a's Replicate (a version 10 s ahead: within the clock bound, so
  // only the sender check stops it; it would beat the later write) and a MetaUpdate that deletes
  // the keygroup, both to b, over its own authenticated connection.
  zmq::socket_t raw(cluster_.context(), zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  adapters::UseClientKeys(raw, keys_.ClientOf("alice", "b"));
  raw.connect(cluster_.endpoint("b"));
  proto::PeerMessage forged;
  forged.set_from("a");
  auto* r = forged.mutable_replicate();
  r->set_keygroup("kg");
  *r->mutable_incarnation() = meta->created();
  *r->mutable_meta_version() = meta->version();
  auto* item = r->add_items();
  item->set_key("k");
  item->set_value("forged");
  item->mutable_version()->set_wall_us(meta->version().wall_us() + 10'000'000LL);
  item->mutable_version()->set_node("a");
  std::string bytes;
  net::EncodeEnvelope(forged, &bytes);
  raw.send(zmq::buffer(bytes), zmq::send_flags::none);
  proto::PeerMessage deletion;
  deletion.set_from("a");
  *deletion.mutable_meta_update()->mutable_meta() = *meta;
  deletion.mutable_meta_update()->mutable_meta()->set_deleted(true);
  deletion.mutable_meta_update()->mutable_meta()->mutable_version()->set_logical(99);
  net::EncodeEnvelope(deletion, &bytes);
  raw.send(zmq::buffer(bytes), zmq::send_flags::none);
  // A request on the same connection: its answer means b has handled both messages before it.
  proto::Request probe;
  probe.set_id(77);
  probe.mutable_keygroup_info()->set_name("kg");
  net::EncodeEnvelope(probe, &bytes);
  raw.send(zmq::buffer(bytes), zmq::send_flags::none);
  zmq::message_t answer;
  raw.set(zmq::sockopt::rcvtimeo, 5000);
  ASSERT_TRUE(raw.recv(answer, zmq::recv_flags::none)) << "b did not answer the probe";

  auto alice_b = As("alice", "b");
  ASSERT_TRUE(NodeCluster::Eventually([&] {
    auto got = alice_b.Get("kg", "k");
    return got.ok() && got->value() == "real";
  }));
  ASSERT_TRUE(alice_a.Put("kg", "k", "later").ok());
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto got = alice_b.Get("kg", "k");
    return got.ok() && got->value() == "later";
  })) << "b took the forged messages";
  EXPECT_TRUE(alice_b.KeygroupInfo("kg").ok());

  auto link = alice_a.SetLink("b", "cut");
  EXPECT_EQ(link.code(), core::Code::kPermissionDenied) << link.ToString();
  ASSERT_TRUE(alice_a.Put("kg", "k2", "after").ok());
  EXPECT_TRUE(NodeCluster::Eventually([&] { return alice_b.Get("kg", "k2").ok(); }));
}

// What each client may do, from the access file; read again on SIGHUP.
TEST(RolesTest, EachClientDoesWhatItsPermissionsSayAndSighupChangesThem) {
  KeyFolder keys({"n", "ops", "reader", "deployer"});
  std::string access =
      keys.AccessLines({"ops ops.pub admin read:* write:*", "reader reader.pub read:kg invoke:echo",
                        "deployer deployer.pub deploy"});
  NodeCluster cluster({"n"}, {"--key", keys.key("n"), "--access", access});
  auto as = [&](const std::string& who) {
    return adapters::Client(cluster.context(), cluster.endpoint("n"), milliseconds(3000), "n",
                            keys.ClientOf(who, "n"));
  };
  auto ops = as("ops");
  auto reader = as("reader");
  auto deployer = as("deployer");
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  ASSERT_TRUE(ops.CreateKeygroup(create).ok());
  ASSERT_TRUE(ops.Put("kg", "k", "v").ok());

  // The reader reads, and nothing more.
  auto got = reader.Get("kg", "k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value(), "v");
  auto put = reader.Put("kg", "k", "mine");
  EXPECT_EQ(put.status().code(), core::Code::kPermissionDenied);
  EXPECT_EQ(put.status().message(),
            "client 'reader' may not write to keygroup 'kg': it needs 'write:kg' in the node's "
            "access file");
  create.set_name("other");
  EXPECT_EQ(reader.CreateKeygroup(create).code(), core::Code::kPermissionDenied);
  proto::FunctionSpec echo;
  echo.set_name("echo");
  echo.set_handler("echo");
  echo.set_keygroup("kg");
  EXPECT_EQ(reader.DeployFunction(echo).code(), core::Code::kPermissionDenied);
  EXPECT_EQ(reader.SetLink("x", "cut").code(), core::Code::kPermissionDenied);

  // The deployer deploys native functions, not programs.
  ASSERT_TRUE(deployer.DeployFunction(echo).ok());
  proto::FunctionSpec program;
  program.set_name("sh");
  program.set_runtime("process");
  program.set_handler("/bin/sh");
  program.set_keygroup("kg");
  auto denied = deployer.DeployFunction(program);
  EXPECT_EQ(denied.code(), core::Code::kPermissionDenied);
  EXPECT_NE(denied.message().find("'deploy-process'"), std::string::npos) << denied.message();
  EXPECT_EQ(deployer.Invoke("echo", "hi").status().code(), core::Code::kPermissionDenied);
  auto called = reader.Invoke("echo", "hi");
  ASSERT_TRUE(called.ok()) << called.status().ToString();
  EXPECT_EQ(*called, "hi");

  // The reader may write from now on, without a restart.
  keys.AccessLines({"ops ops.pub admin read:* write:*", "reader reader.pub read:kg write:kg",
                    "deployer deployer.pub deploy"});
  ::kill(cluster.pid("n"), SIGHUP);
  EXPECT_TRUE(NodeCluster::Eventually([&] { return reader.Put("kg", "k", "mine").ok(); }))
      << "SIGHUP did not give the reader write:kg";
  EXPECT_EQ(reader.Invoke("echo", "hi").status().code(), core::Code::kPermissionDenied);
  // A broken file changes nothing.
  keys.AccessLines({"reader reader.pub fly:away"});
  ::kill(cluster.pid("n"), SIGHUP);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_TRUE(reader.Put("kg", "k", "still").ok());
  EXPECT_TRUE(ops.Put("kg", "k", "ops too").ok());
}

// Each client of the access file owns at most its quota: keygroups (over the shared catalog),
// functions here, their process workers and a function's concurrency.
TEST(QuotaTest, AClientOverItsQuotaGetsAClearErrorAndRoomAgainWhenItFreesSome) {
  KeyFolder keys({"n", "small", "plain"});
  std::string access =
      keys.AccessLines({"small small.pub admin deploy-process keygroups=2 functions=2 workers=4 "
                        "concurrency=8",
                        "plain plain.pub admin"});
  NodeCluster cluster({"n"},
                      {"--key", keys.key("n"), "--access", access, "--quota-keygroups", "1"});
  auto as = [&](const std::string& who) {
    return adapters::Client(cluster.context(), cluster.endpoint("n"), milliseconds(3000), "n",
                            keys.ClientOf(who, "n"));
  };
  auto small = as("small");
  auto plain = as("plain");
  auto create = [](adapters::Client& c, const std::string& name) {
    proto::CreateKeygroupRequest r;
    r.set_name(name);
    return c.CreateKeygroup(r);
  };

  // Keygroups: two for small (its line), one for plain (the node's --quota-keygroups).
  ASSERT_TRUE(create(small, "kg1").ok());
  ASSERT_TRUE(create(small, "kg2").ok());
  core::Status over = create(small, "kg3");
  EXPECT_EQ(over.code(), core::Code::kResourceExhausted);
  EXPECT_EQ(over.message(),
            "client 'small' owns 2 keygroups, as many as its quota allows (keygroups=2): delete "
            "one, or raise the quota in node n's access file");
  ASSERT_TRUE(create(plain, "p1").ok());
  EXPECT_EQ(create(plain, "p2").code(), core::Code::kResourceExhausted);
  auto info = small.KeygroupInfo("kg1");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->owner(), "small");
  // Deleting one (whoever does it) makes room.
  ASSERT_TRUE(plain.DeleteKeygroup("kg2").ok());
  EXPECT_TRUE(create(small, "kg3").ok());

  // Functions: a concurrency within the quota (none given: the quota's 8), at most two.
  proto::FunctionSpec echo;
  echo.set_name("echo");
  echo.set_handler("echo");
  echo.set_keygroup("kg1");
  echo.set_concurrency(9);
  core::Status too_wide = small.DeployFunction(echo);
  EXPECT_EQ(too_wide.code(), core::Code::kResourceExhausted);
  EXPECT_NE(too_wide.message().find("at most 8, and 'echo' asks for 9"), std::string::npos)
      << too_wide.message();
  echo.set_concurrency(0);
  ASSERT_TRUE(small.DeployFunction(echo).ok());
  auto listed = small.ListFunctions();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->functions_size(), 1);
  EXPECT_EQ(listed->functions(0).spec().concurrency(), 8u);
  EXPECT_EQ(listed->functions(0).spec().owner(), "small");
  ASSERT_TRUE(small.DeployFunction(echo).ok()) << "a redeploy replaces, it does not add";
  echo.set_name("echo2");
  ASSERT_TRUE(small.DeployFunction(echo).ok());
  echo.set_name("echo3");
  core::Status third = small.DeployFunction(echo);
  EXPECT_EQ(third.code(), core::Code::kResourceExhausted);
  EXPECT_NE(third.message().find("has deployed 2 functions"), std::string::npos) << third.message();

  // Process workers: the sum of the process functions' concurrency (checked before any runs).
  ASSERT_TRUE(small.DeleteFunction("echo2").ok());
  proto::FunctionSpec program;
  program.set_name("prog");
  program.set_runtime("process");
  program.set_handler("/bin/cat");
  program.set_keygroup("kg1");
  program.set_concurrency(5);
  core::Status workers = small.DeployFunction(program);
  EXPECT_EQ(workers.code(), core::Code::kResourceExhausted);
  EXPECT_NE(workers.message().find("at most 4 process workers"), std::string::npos)
      << workers.message();
}

TEST(AccessFileTest, ErrorsNameFileLineAndWhat) {
  KeyFolder keys({"a"});
  std::string path = keys.AccessLines({"a a.pub read:kg", "b missing.pub"});
  auto missing = adapters::ReadAccessFile(path, net::Quota{});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message().rfind(path + ":3: client 'b': cannot read key file ", 0), 0u)
      << missing.status().message();
  keys.AccessLines({"a a.pub read:kg fly:away"});
  EXPECT_EQ(adapters::ReadAccessFile(path, net::Quota{}).status().message(),
            path +
                ":2: client 'a': unknown permission 'fly:away' (known: admin, read:KG, write:KG, "
                "deploy, deploy-process, invoke:FN, control, join; '*' for every keygroup or "
                "function)");
  keys.AccessLines({"a a.pub read:../x"});
  EXPECT_NE(adapters::ReadAccessFile(path, net::Quota{})
                .status()
                .message()
                .find(":2: client 'a': keygroup"),
            std::string::npos);
  keys.AccessLines({"a a.pub read:* keygroups=many"});
  EXPECT_EQ(adapters::ReadAccessFile(path, net::Quota{}).status().message(),
            path + ":2: client 'a': quota 'keygroups=many' needs a whole number below 1000000000");
  keys.AccessLines({"a a.pub read:* hours=3"});
  EXPECT_NE(adapters::ReadAccessFile(path, net::Quota{})
                .status()
                .message()
                .find("unknown quota 'hours' (known: keygroups=N"),
            std::string::npos);
  keys.AccessLines({"t token:abc invoke:f"});
  EXPECT_EQ(adapters::ReadAccessFile(path, net::Quota{}).status().message(),
            path +
                ":2: client 't': a token is named by the 64 lowercase hex digits of its SHA-256 "
                "(the line `enoki keys token` prints)");
  keys.AccessLines({"p - invoke:f", "q - invoke:g"});
  EXPECT_EQ(adapters::ReadAccessFile(path, net::Quota{}).status().message(),
            path +
                ":3: client 'q' is a second line for callers without a credential (after 'p'): "
                "merge them");
  keys.AccessLines({"a a.pub write:* invoke:f workers=0  # a comment"});
  auto ok = adapters::ReadAccessFile(path, net::Quota{});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  const adapters::Permissions& p = ok->at("a").permissions;
  EXPECT_EQ(ok->at("a").quota.workers, 0u);
  EXPECT_EQ(ok->at("a").quota.keygroups, net::Quota{}.keygroups);
  proto::Request put;
  put.mutable_put()->set_keygroup("any");
  EXPECT_TRUE(adapters::Authorize("a", p, put).ok());
  proto::Request get;
  get.mutable_get()->set_keygroup("any");
  EXPECT_EQ(adapters::Authorize("a", p, get).message(),
            "client 'a' may not read keygroup 'any': it needs 'read:any' in the node's access "
            "file");
}

// The node's own processes reach it on its local endpoint: the HTTP gateway (whose callers need
// a token of the access file); a process function's worker makes its store calls through its
// worker protocol.
TEST(LocalEndpointTest, WorkersAndTheGatewayReachANodeWithKeys) {
  KeyFolder keys({"n", "alice"});
  const std::string token = "a-token-of-the-test";
  std::string access =
      keys.AccessLines({"alice alice.pub admin read:* write:* deploy-process invoke:*",
                        "caller token:" + adapters::TokenDigest(token) + " invoke:counter"});
  NodeCluster cluster(
      {"n"}, {"--key", keys.key("n"), "--access", access, "--process-dir", ENOKI_TEST_FUNCTIONS},
      /*http=*/true);
  adapters::Client alice(cluster.context(), cluster.endpoint("n"), milliseconds(10000), "n",
                         keys.ClientOf("alice", "n"));
  proto::CreateKeygroupRequest create;
  create.set_name("counters");
  ASSERT_TRUE(alice.CreateKeygroup(create).ok());
  proto::FunctionSpec spec;
  spec.set_name("counter");
  spec.set_runtime("process");
  spec.set_handler(std::string(ENOKI_TEST_FUNCTIONS) + "/counter.py");
  spec.set_keygroup("counters");
  auto deployed = alice.DeployFunction(spec);
  ASSERT_TRUE(deployed.ok()) << deployed.ToString();
  auto first = alice.Invoke("counter", "hits");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, "1");
  testing::Http http =
      testing::CurlUrl("http://127.0.0.1:" + std::to_string(cluster.http_port("n")) + "/counter",
                       "hits", "-H 'Authorization: Bearer " + token + "'");
  EXPECT_EQ(http.status, 200);
  EXPECT_EQ(http.body, "2");
  auto value = alice.Get("counters", "hits");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->value(), "2");
}

TEST(GatewayLimitsTest, OversizedAndGzipBombBodiesAre413AndTheNodeStaysSmall) {
  NodeCluster cluster({"edge"}, {}, /*http=*/true);
  auto c = cluster.Client("edge");
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  ASSERT_TRUE(c->CreateKeygroup(create).ok());
  proto::FunctionSpec echo;
  echo.set_name("echo");
  echo.set_handler("echo");
  echo.set_keygroup("kg");
  ASSERT_TRUE(c->DeployFunction(echo).ok());
  int port = cluster.http_port("edge");
  KeyFolder dir({});
  std::string big = (dir.dir() / "big").string();
  std::string bomb = (dir.dir() / "bomb.gz").string();
  // 4 MiB, over the default 1 MiB; 300 MB of zeros gzipped to 305 kB (under the limit as sent).
  ASSERT_EQ(testing::RunShell("head -c 4M /dev/zero > " + big).status, 0);
  ASSERT_EQ(testing::RunShell("head -c 300M /dev/zero | gzip -9 > " + bomb).status, 0);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/echo";
  auto code = [](const testing::Output& o) { return o.text.substr(o.text.size() - 3); };

  auto t0 = std::chrono::steady_clock::now();
  testing::Output oversized =
      testing::RunShell("curl -s -o /dev/null -w '%{http_code}' --data-binary @" + big + " " + url);
  EXPECT_EQ(code(oversized), "413") << oversized.text;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  testing::Output bombed = testing::RunShell(
      "curl -s -o /dev/null -w '%{http_code}' -H 'Content-Encoding: gzip' --data-binary @" + bomb +
      " " + url);
  EXPECT_EQ(code(bombed), "413") << bombed.text;
  // Other methods and paths are answered before their bodies are read (cpp-httplib would read
  // them whole into memory), and a GET may carry none.
  std::string base = "http://127.0.0.1:" + std::to_string(port);
  for (const auto& [request, expected] :
       std::vector<std::pair<std::string, std::string>>{{"-X PUT " + url, "405"},
                                                        {"-X DELETE " + url, "405"},
                                                        {base + "/", "404"},
                                                        {base + "/a/b", "404"},
                                                        {"-X GET " + url, "400"}}) {
    testing::Output other = testing::RunShell(
        "curl -s -o /dev/null -w '%{http_code}' --data-binary @" + big + " " + request);
    EXPECT_EQ(code(other), expected) << request << ": " << other.text;
  }
  EXPECT_LT(testing::ProcStatusKb(cluster.pid("edge"), "VmHWM"), 100 * 1024);
  // Legitimate calls go on.
  testing::Http ok = Curl(port, "echo", "still here");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "still here");
}

// A TCP relay between a client and a node on loopback that keeps every byte it passes on.
class Relay {
 public:
  explicit Relay(int node_port) : node_port_(node_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Relay() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  int port() const { return port_; }
  std::string seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  void Serve() {
    int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0) return;
    int node = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(node_port_));
    if (::connect(node, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(client);
      return;
    }
    std::thread back([&] { Pump(node, client); });
    Pump(client, node);
    ::shutdown(node, SHUT_RDWR);
    ::shutdown(client, SHUT_RDWR);
    back.join();
    ::close(node);
    ::close(client);
  }
  void Pump(int from, int to) {
    char buf[4096];
    while (!stop_) {
      timeval tv{0, 100000};
      ::setsockopt(from, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n == 0) return;
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.append(buf, static_cast<size_t>(n));
      }
      if (::send(to, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) return;
    }
  }

  int node_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string seen_;
};

// One node on a loopback TCP port, with keys or without; a put through the relay.
std::string BytesOfAPutThroughARelay(bool curve, const std::string& keygroup,
                                     const std::string& value) {
  KeyFolder keys({"n", "alice"});
  fs::path dir = keys.dir() / "node";
  adapters::NodeProcessOptions o;
  o.binary = ENOKI_BINARY;
  o.id = "n";
  o.listen = "tcp://127.0.0.1:0";
  o.data_dir = dir.string();
  o.ready_file = (keys.dir() / "ready").string();
  o.log_level = "warn";
  if (curve) o.more = {"--key", keys.key("n"), "--access", keys.Access({"alice"})};
  auto proc =
      adapters::Subprocess::Start(adapters::NodeCommandLine(o), (keys.dir() / "log").string());
  EXPECT_TRUE(proc.ok());
  auto info = adapters::WaitForReadyFile(o.ready_file, "n", *proc, std::chrono::seconds(10));
  EXPECT_TRUE(info.ok()) << info.status().ToString();
  if (!info.ok()) return "";
  Relay relay(std::stoi(info->endpoint.substr(info->endpoint.rfind(':') + 1)));
  zmq::context_t context(1);
  adapters::Client c(context, "tcp://127.0.0.1:" + std::to_string(relay.port()), milliseconds(5000),
                     "n", curve ? keys.ClientOf("alice", "n") : adapters::ClientKeys{});
  proto::CreateKeygroupRequest create;
  create.set_name(keygroup);
  EXPECT_TRUE(c.CreateKeygroup(create).ok());
  EXPECT_TRUE(c.Put(keygroup, "key", value).ok());
  auto got = c.Get(keygroup, "key");
  EXPECT_TRUE(got.ok() && got->value() == value);
  return relay.seen();
}

TEST(WireTest, WithKeysTheWireCarriesNoPlaintext) {
  const std::string value = "a-value-nobody-else-may-read-4711";
  const std::string keygroup = "keygroup-name-nobody-else-may-read";
  // Without keys the relay sees the value (so the check below can fail)...
  std::string plain = BytesOfAPutThroughARelay(false, keygroup, value);
  EXPECT_NE(plain.find(value), std::string::npos);
  EXPECT_NE(plain.find(keygroup), std::string::npos);
  // ...with keys it sees none of it, nor the keygroup's name.
  std::string curve = BytesOfAPutThroughARelay(true, keygroup, value);
  EXPECT_GT(curve.size(), value.size() * 3) << "the relay saw too little to judge";
  EXPECT_EQ(curve.find(value), std::string::npos);
  EXPECT_EQ(curve.find("a-value"), std::string::npos);
  EXPECT_EQ(curve.find("nobody-else"), std::string::npos);
}

TEST(KeysCommandTest, WritesASecretOnlyItsOwnerReadsAndNeverOverwrites) {
  KeyFolder keys({});
  std::string dir = keys.dir().string();
  auto run = [&] { return Enoki("keys generate edge1 --dir " + dir); };
  Output first = run();
  EXPECT_EQ(first.status, 0) << first.text;
  struct stat st {};
  ASSERT_EQ(::stat((keys.dir() / "edge1.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto pair = adapters::ReadKeyPair((keys.dir() / "edge1.key").string());
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  EXPECT_EQ(pair->secret_key.size(), 40u);
  EXPECT_EQ(*adapters::ReadPublicKey((keys.dir() / "edge1.pub").string()), pair->public_key);
  Output again = run();
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.text.find("File exists"), std::string::npos) << again.text;
  // The first key is still there.
  EXPECT_EQ(adapters::ReadKeyPair((keys.dir() / "edge1.key").string())->secret_key,
            pair->secret_key);
}

TEST(InsecureTest, ListeningBeyondLoopbackWithoutKeysIsRefusedNamingInsecure) {
  // Refused before it binds anything.
  Output r = Enoki("node --id x --listen tcp://0.0.0.0:0 --in-memory");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.text.find("--insecure"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("tcp://0.0.0.0:0"), std::string::npos) << r.text;
  EXPECT_EQ(std::count(r.text.begin(), r.text.end(), '\n'), 1) << r.text;

  Output http = Enoki("node --id x --listen ipc:///tmp/enoki-never --http 0.0.0.0:0 --in-memory");
  EXPECT_EQ(http.status, 1);
  EXPECT_NE(http.text.find("--insecure"), std::string::npos) << http.text;
}

TEST(InsecureTest, AKeyFileOthersMayReadIsRefused) {
  KeyFolder keys({"a"});
  ASSERT_EQ(::chmod(keys.key("a").c_str(), 0644), 0);
  Output r = Enoki("node --id a --listen tcp://127.0.0.1:0 --in-memory --key " + keys.key("a"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.text.find("chmod 600"), std::string::npos) << r.text;
}

TEST(InsecureTest, APeerWithoutAKeyIsAnErrorNamingIt) {
  KeyFolder keys({"a"});
  Output r = Enoki("node --id a --listen tcp://127.0.0.1:0 --in-memory --key " + keys.key("a") +
                   " --peer b=tcp://127.0.0.1:9");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.text.find("peer 'b' has no --peer-key"), std::string::npos) << r.text;
}

}  // namespace
}  // namespace enoki
