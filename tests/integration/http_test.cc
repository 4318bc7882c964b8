// The HTTP gateway of real `enoki node` processes under attack and with credentials: TLS, bearer
// tokens and public functions, slow clients (timeouts, caps per address and in all, 1,000 slow
// connections beside a legitimate call), and the ZeroMQ side's cap below the file descriptor
// limit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "adapters/access.h"
#include "tests/integration/commands.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using testing::Curl;
using testing::CurlUrl;
using testing::Enoki;
using testing::KeyFolder;
using testing::NodeCluster;
using testing::Output;

// Deploys the built-in echo function as each of `names` (keygroup "kg"), with client `c`.
void DeployEcho(adapters::Client& c, const std::vector<std::string>& names) {
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  ASSERT_TRUE(c.CreateKeygroup(create).ok());
  for (const auto& name : names) {
    proto::FunctionSpec echo;
    echo.set_name(name);
    echo.set_handler("echo");
    echo.set_keygroup("kg");
    ASSERT_TRUE(c.DeployFunction(echo).ok());
  }
}

// A TCP connection to 127.0.0.1:`port` from the loopback address `from` (the whole of 127/8 is
// loopback, so many addresses are at hand); -1 if it failed.
int ConnectFrom(const std::string& from, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, from.c_str(), &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the peer closed `fd` (a read finds the end of the stream or an error), waiting at most
// `limit`; bytes it sent are skipped.
bool ClosedWithin(int fd, milliseconds limit) {
  timeval tv{static_cast<time_t>(limit.count() / 1000),
             static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[512];
  while (std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
  }
  return false;
}

// Raises this process's soft limit of open files to its hard limit; returns it.
rlim_t RaiseOwnFileLimit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

TEST(HttpTlsTest, ACallOverTlsWorksAndPlainHttpToTheSamePortFails) {
  KeyFolder dir({});
  dir.MakeCertificate();
  std::string cert = dir.cert();
  NodeCluster cluster({"n"}, {"--tls-cert", cert, "--tls-key", dir.cert_key()},
                      /*http=*/true);
  DeployEcho(*cluster.Client("n"), {"echo"});
  std::string at = "127.0.0.1:" + std::to_string(cluster.http_port("n")) + "/echo";
  testing::Http tls = CurlUrl("https://" + at, "over tls", "--cacert " + cert);
  EXPECT_EQ(tls.status, 200) << tls.body;
  EXPECT_EQ(tls.body, "over tls");
  testing::Http plain = CurlUrl("http://" + at, "in clear", "--max-time 5");
  EXPECT_NE(plain.status, 200) << plain.body;
  EXPECT_EQ(plain.body.find("in clear"), std::string::npos);
  // A client that does not trust the certificate stops before it sends anything.
  EXPECT_EQ(CurlUrl("https://" + at, "x").status, 0);
}

TEST(HttpTlsTest, MissingOrWrongFilesAreErrorsNamingTheFile) {
  KeyFolder dir({});
  dir.MakeCertificate();
  std::string cert = dir.cert();
  std::string key = dir.cert_key();
  std::string node = "node --id x --listen tcp://127.0.0.1:0 --in-memory --http 127.0.0.1:0 ";
  Output missing = Enoki(node + "--tls-cert " + cert + ".gone --tls-key " + key);
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.text.find("cannot read the TLS certificate file " + cert + ".gone"),
            std::string::npos)
      << missing.text;
  Output swapped = Enoki(node + "--tls-cert " + key + " --tls-key " + cert);
  EXPECT_EQ(swapped.status, 1);
  EXPECT_NE(swapped.text.find("the TLS certificate file " + key + " holds no PEM certificate"),
            std::string::npos)
      << swapped.text;
  Output alone = Enoki(node + "--tls-cert " + cert);
  EXPECT_EQ(alone.status, 1);
  EXPECT_NE(alone.text.find("--tls-cert and --tls-key go together"), std::string::npos)
      << alone.text;
}

// The access file of the token tests: ops (a CURVE key, to deploy), caller (may call echo),
// reader (a token without invoke), and the public function hello.
std::vector<std::string> TokenLines(const std::string& caller, const std::string& reader,
                                    const std::string& reader_permissions) {
  return {"ops ops.pub admin deploy read:* write:*", "caller " + caller + " invoke:echo",
          "reader " + reader + " " + reader_permissions, "anyone - invoke:hello"};
}

// The access-file line `enoki keys token NAME` prints: its key field.
std::string TokenField(const Output& printed) {
  auto at = printed.text.find(" token:");
  EXPECT_NE(at, std::string::npos) << printed.text;
  return printed.text.substr(at + 1, 6 + 64);
}

TEST(HttpTokenTest, CallsNeedATokenWithInvokeUnlessPublicAndSighupReloadsTokens) {
  KeyFolder keys({"n", "ops"});
  std::string dir = keys.dir().string();
  Output made_caller = Enoki("keys token caller --dir " + dir);
  ASSERT_EQ(made_caller.status, 0) << made_caller.text;
  ASSERT_EQ(Enoki("keys token reader --dir " + dir).status, 0);
  std::ifstream caller_file(dir + "/caller.token");
  std::ifstream reader_file(dir + "/reader.token");
  std::string caller_token, reader_token;
  caller_file >> caller_token;
  reader_file >> reader_token;
  ASSERT_EQ(caller_token.size(), 64u);
  EXPECT_EQ(TokenField(made_caller), "token:" + adapters::TokenDigest(caller_token));
  std::string caller = "token:" + adapters::TokenDigest(caller_token);
  std::string reader = "token:" + adapters::TokenDigest(reader_token);
  std::string access = keys.AccessLines(TokenLines(caller, reader, "read:kg"));
  NodeCluster cluster({"n"}, {"--key", keys.key("n"), "--access", access}, /*http=*/true);
  adapters::Client ops(cluster.context(), cluster.endpoint("n"), milliseconds(5000), "n",
                       keys.ClientOf("ops", "n"));
  DeployEcho(ops, {"echo", "hello"});
  std::string url = "http://127.0.0.1:" + std::to_string(cluster.http_port("n"));
  auto bearer = [](const std::string& token) { return "-H 'Authorization: Bearer " + token + "'"; };

  testing::Http none = CurlUrl(url + "/echo", "hi");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("is not public"), std::string::npos) << none.body;
  testing::Http wrong = CurlUrl(url + "/echo", "hi", bearer(std::string(64, 'a')));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body, "unknown bearer token (not in the node's access file)\n");
  testing::Http no_invoke = CurlUrl(url + "/echo", "hi", bearer(reader_token));
  EXPECT_EQ(no_invoke.status, 403);
  EXPECT_EQ(no_invoke.body,
            "client 'reader' may not call function 'echo': it needs 'invoke:echo' in the node's "
            "access file\n");
  testing::Http right = CurlUrl(url + "/echo", "hi", bearer(caller_token));
  EXPECT_EQ(right.status, 200);
  EXPECT_EQ(right.body, "hi");
  testing::Http open = CurlUrl(url + "/hello", "anyone");
  EXPECT_EQ(open.status, 200);
  EXPECT_EQ(open.body, "anyone");

  // The reader may call echo from now on; the caller is gone.
  keys.AccessLines({"ops ops.pub admin deploy read:* write:*", "reader " + reader + " invoke:echo",
                    "anyone - invoke:hello"});
  ::kill(cluster.pid("n"), SIGHUP);
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    return CurlUrl(url + "/echo", "hi", bearer(reader_token)).status == 200;
  })) << "SIGHUP did not give the reader's token invoke:echo";
  EXPECT_EQ(CurlUrl(url + "/echo", "hi", bearer(caller_token)).status, 401);
}

TEST(HttpTokenTest, BeyondLoopbackTheGatewayNeedsTlsAndKeys) {
  KeyFolder keys({"n"});
  std::string node = "node --id x --listen tcp://127.0.0.1:0 --in-memory --http 0.0.0.0:0 ";
  Output plain = Enoki(node);
  EXPECT_EQ(plain.status, 1);
  EXPECT_NE(plain.text.find("--http 0.0.0.0:0 is reachable beyond this host without TLS"),
            std::string::npos)
      << plain.text;
  EXPECT_NE(plain.text.find("--insecure"), std::string::npos) << plain.text;
  EXPECT_EQ(std::count(plain.text.begin(), plain.text.end(), '\n'), 1) << plain.text;
  Output keyed = Enoki(node + "--key " + keys.key("n"));
  EXPECT_EQ(keyed.status, 1);
  EXPECT_NE(keyed.text.find("without TLS: give --tls-cert and --tls-key,"), std::string::npos)
      << keyed.text;
}

// The node's fd count (its open files and sockets).
size_t OpenFiles(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

TEST(HttpSlowClientsTest, AThousandSlowConnectionsLeaveALegitimateCallAnsweredWithinASecond) {
  constexpr int kSlow = 1000;
  if (RaiseOwnFileLimit() < kSlow + 200) GTEST_SKIP() << "this process may not open 1,200 files";
  // A header timeout longer than the test, so that the slow connections stay open throughout.
  NodeCluster cluster({"n"}, {"--http-header-timeout", "60"}, /*http=*/true);
  DeployEcho(*cluster.Client("n"), {"echo"});
  int port = cluster.http_port("n");
  long rss_before = testing::ProcStatusKb(cluster.pid("n"), "VmRSS");
  // Each from its own address (127.1.x.y), so that the cap per address lets them all in; each
  // sends the start of a request head, then a header line now and then, never its end.
  std::vector<int> slow;
  for (int i = 0; i < kSlow; ++i) {
    std::string from = "127.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    int fd = ConnectFrom(from, port);
    ASSERT_GE(fd, 0) << "connection " << i << " from " << from << ": " << std::strerror(errno);
    const char start[] = "POST /echo HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(::send(fd, start, sizeof start - 1, MSG_NOSIGNAL), ssize_t(sizeof start - 1));
    slow.push_back(fd);
  }
  EXPECT_TRUE(NodeCluster::Eventually([&] { return OpenFiles(cluster.pid("n")) > kSlow; },
                                      std::chrono::seconds(10)))
      << "the node holds " << OpenFiles(cluster.pid("n")) << " files";
  double slowest = 0;
  for (int round = 0; round < 5; ++round) {
    for (int fd : slow) (void)::send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
    auto t0 = std::chrono::steady_clock::now();
    testing::Http legit = Curl(port, "echo", "legit " + std::to_string(round));
    double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(legit.status, 200) << legit.body;
    EXPECT_EQ(legit.body, "legit " + std::to_string(round));
    slowest = std::max(slowest, took);
    std::this_thread::sleep_for(milliseconds(300));
  }
  EXPECT_LT(slowest, 1.0);
  // The slow connections are all still open.
  int open = 0;
  char byte;
  for (int fd : slow) {
    open += ::recv(fd, &byte, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN ? 1 : 0;
  }
  EXPECT_EQ(open, kSlow);
  long rss = testing::ProcStatusKb(cluster.pid("n"), "VmRSS");
  std::printf(
      "[ measured ] slowest legitimate call beside %d slow connections: %.0f ms; node "
      "RSS %ld kB before, %ld kB with them\n",
      kSlow, slowest * 1000, rss_before, rss);
  EXPECT_LT(rss, 200 * 1024);
  for (int fd : slow) ::close(fd);
}

TEST(HttpSlowClientsTest, CapsPerAddressAndInAllAnswer503) {
  // The idle connections must stay open while the test counts them: timeouts far longer than the
  // test (the default header timeout, 5 s, closed the first three on a busy host before the last
  // check).
  NodeCluster cluster(
      {"n"},
      {"--http-max-per-address", "3", "--http-max-connections", "6", "--http-header-timeout", "120",
       "--http-read-timeout", "120", "--http-manage", "127.0.0.1:0", "--process-dir",
       ENOKI_TEST_FUNCTIONS, "--allow-upload"},
      /*http=*/true);
  DeployEcho(*cluster.Client("n"), {"echo"});
  int port = cluster.http_port("n");
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/echo";
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(ConnectFrom("127.0.0.1", port));
  testing::Http same = CurlUrl(url, "hi");
  EXPECT_EQ(same.status, 503);
  EXPECT_EQ(same.body, "too many connections from 127.0.0.1\n");
  testing::Http other = CurlUrl(url, "hi", "--interface 127.0.0.2");
  EXPECT_EQ(other.status, 200) << other.body;
  for (int i = 0; i < 3; ++i) idle.push_back(ConnectFrom("127.0.0.3", port));
  // Six open: the seventh is one too many, from any address.
  EXPECT_TRUE(NodeCluster::Eventually(
      [&] { return CurlUrl(url, "hi", "--interface 127.0.0.4").status == 503; },
      std::chrono::seconds(3)));
  testing::Http full = CurlUrl(url, "hi", "--interface 127.0.0.4");
  EXPECT_EQ(full.body, "too many connections to this node's HTTP gateway\n");
  for (int fd : idle) ::close(fd);
  EXPECT_TRUE(NodeCluster::Eventually(
      [&] { return CurlUrl(url, "hi", "--interface 127.0.0.4").status == 200; },
      std::chrono::seconds(5)));

  // The management API has the same caps, counted apart.
  int manage = cluster.manage_port("n");
  auto list = [&](const std::string& from) {
    return std::atoi(testing::RunShell("curl -s -o /dev/null -w '%{http_code}' --interface " +
                                       from + " http://127.0.0.1:" + std::to_string(manage) +
                                       "/list")
                         .text.c_str());
  };
  EXPECT_EQ(list("127.0.0.7"), 200);
  idle.clear();
  for (const char* from : {"127.0.0.5", "127.0.0.6"}) {
    for (int i = 0; i < 3; ++i) idle.push_back(ConnectFrom(from, manage));
  }
  EXPECT_TRUE(
      NodeCluster::Eventually([&] { return list("127.0.0.7") == 503; }, std::chrono::seconds(3)));
  for (int fd : idle) ::close(fd);
}

TEST(HttpSlowClientsTest, AHeadNotDoneInTimeAndAnIdleConnectionAreClosed) {
  NodeCluster cluster({"n"}, {"--http-header-timeout", "1", "--http-read-timeout", "2"},
                      /*http=*/true);
  int port = cluster.http_port("n");
  // A head that trickles in, a line every 300 ms: closed after 1 s in all, not 300 ms at a time.
  int trickle = ConnectFrom("127.0.0.1", port);
  ASSERT_GE(trickle, 0);
  auto t0 = std::chrono::steady_clock::now();
  (void)::send(trickle, "GET /echo HTTP/1.1\r\n", 20, MSG_NOSIGNAL);
  bool closed = false;
  for (int i = 0; i < 10 && !closed; ++i) {
    (void)::send(trickle, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
    closed = ClosedWithin(trickle, milliseconds(300));
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(closed) << "a head that never ends was not closed";
  EXPECT_GT(took, 0.8);
  EXPECT_LT(took, 2.0);
  ::close(trickle);
  // A connection that sends nothing: closed by the header timeout too.
  int idle = ConnectFrom("127.0.0.1", port);
  EXPECT_TRUE(ClosedWithin(idle, milliseconds(2500)));
  ::close(idle);
}

// The ZeroMQ side: a node whose file descriptor limit is 256 caps client connections below it,
// says so, and still serves its client and its peer while more clients than the cap knock.
TEST(ZmqConnectionCapTest, ANodeWithFewFilesRefusesClientsOverTheCapAndServesItsOwn) {
  KeyFolder keys({"a", "b", "alice"});
  NodeCluster cluster({"a", "b"}, {"--access", keys.Access({"alice"})}, false,
                      {{"a", {"--key", keys.key("a"), "--peer-key", "b=" + keys.pub("b")}},
                       {"b", {"--key", keys.key("b"), "--peer-key", "a=" + keys.pub("a")}}},
                      {{"a", {"/usr/bin/prlimit", "--nofile=256:256", "--"}}});
  auto as_alice = [&](const std::string& node) {
    return adapters::Client(cluster.context(), cluster.endpoint(node), milliseconds(5000), node,
                            keys.ClientOf("alice", node));
  };
  auto alice_a = as_alice("a");
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  create.add_replicas("a");
  create.add_replicas("b");
  ASSERT_TRUE(alice_a.CreateKeygroup(create).ok());
  // 300 more clients with alice's key, arriving 10 every 20 ms: over the cap (256 less the
  // reserve). (They must not all come at once: ZeroMQ accepts a connection before ZAP can refuse
  // it, and libzmq 4.3.4 aborts when an ipc accept finds no descriptor left.)
  zmq::context_t crowd_context(1);
  std::vector<zmq::socket_t> crowd;
  for (int i = 0; i < 300; ++i) {
    crowd.emplace_back(crowd_context, zmq::socket_type::dealer);
    crowd.back().set(zmq::sockopt::linger, 0);
    adapters::UseClientKeys(crowd.back(), keys.ClientOf("alice", "a"));
    crowd.back().connect(cluster.endpoint("a"));
    if (i % 10 == 9) std::this_thread::sleep_for(milliseconds(20));
  }
  std::string log;
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    std::ifstream in(cluster.log("a"));
    log.assign(std::istreambuf_iterator<char>(in), {});
    return log.find("refused a client connection") != std::string::npos;
  })) << log;
  // 256, less 64 and 2 per peer kept for the rest.
  EXPECT_NE(log.find("file descriptor limit 256: at most 190 ZeroMQ connections (--max-clients "
                     "10000 lowered to fit"),
            std::string::npos)
      << log;
  // The client that was there, and the peer: b restarted connects again, as a peer, over the cap.
  auto put = alice_a.Put("kg", "k", "v");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  cluster.Kill("b");
  cluster.Start("b");
  auto alice_b = as_alice("b");
  ASSERT_TRUE(alice_b.Put("kg", "from-b", "w").ok());
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto got = alice_a.Get("kg", "from-b");
    return got.ok() && got->value() == "w";
  })) << "b's write did not reach a";
  EXPECT_TRUE(NodeCluster::Eventually([&] {
    auto got = alice_b.Get("kg", "k");
    return got.ok() && got->value() == "v";
  }));
}

}  // namespace
}  // namespace enoki
