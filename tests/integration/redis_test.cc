// The Redis front end (`enoki node --redis`), with real node processes: redis-cli and
// redis-benchmark as users run them, and a raw socket where a test needs the bytes (pipelining,
// protocol errors, counting acknowledged writes).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "adapters/access.h"
#include "adapters/subprocess.h"
#include "tests/integration/commands.h"
#include "tests/integration/key_folder.h"
#include "tests/integration/node_cluster.h"

namespace enoki {
namespace {

using std::chrono::milliseconds;
using testing::KeyFolder;
using testing::NodeCluster;
using testing::Output;
using testing::RunShell;

const std::vector<std::string> kRedis = {"--redis", "127.0.0.1:0", "--redis-keygroup", "kg"};

// `redis-cli -p PORT ARGS`, its output without the last line break.
std::string Cli(int port, const std::string& args) {
  Output out = RunShell("redis-cli -p " + std::to_string(port) + " " + args + " 2>&1");
  std::string text = out.text;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

void CreateKeygroup(NodeCluster& cluster, const std::string& at, const std::string& name,
                    const std::vector<std::string>& replicas) {
  proto::CreateKeygroupRequest create;
  create.set_name(name);
  for (const auto& r : replicas) create.add_replicas(r);
  auto created = cluster.Client(at)->CreateKeygroup(create);
  ASSERT_TRUE(created.ok()) << created.ToString();
}

// A client connection on a raw socket: bytes out, whole replies in.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // Reads until `n` bytes arrived, the connection closed, or `timeout` passed: what arrived.
  std::string Read(size_t n, milliseconds timeout = milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.size() < n && Fill(deadline)) {
    }
    std::string out = buffer_.substr(0, std::min(n, buffer_.size()));
    buffer_.erase(0, out.size());
    return out;
  }
  // One line of a reply ("+OK", "-ERR ...", "$3"), without its CRLF; empty when none came.
  std::string ReadLine(milliseconds timeout = milliseconds(5000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.find("\r\n") == std::string::npos && Fill(deadline)) {
    }
    auto end = buffer_.find("\r\n");
    if (end == std::string::npos) return "";
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }
  bool closed() const { return closed_; }

 private:
  // Waits for more bytes until `deadline`; false when none can come (closed, or time is up).
  bool Fill(std::chrono::steady_clock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (closed_ || left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    char buf[65536];
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) {
      closed_ = true;
      return false;
    }
    buffer_.append(buf, static_cast<size_t>(got));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string buffer_;
};

std::string Command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// What a user of redis-cli sees: writes, reads, a scan, a read at a node that holds no replica
// (forwarded to the one that does), and errors in Redis's form.
TEST(RedisTest, RedisCliSetsGetsScansAndIsForwardedFromANodeWithoutAReplica) {
  NodeCluster cluster({"a", "b"}, kRedis);
  CreateKeygroup(cluster, "a", "kg", {"a"});
  int a = cluster.redis_port("a");
  int b = cluster.redis_port("b");
  EXPECT_EQ(Cli(a, "ping"), "PONG");
  EXPECT_EQ(Cli(a, "set k1 v1"), "OK");
  EXPECT_EQ(Cli(a, "set k2 'two words'"), "OK");
  EXPECT_EQ(Cli(a, "mset k3 3 k4 4"), "OK");
  EXPECT_EQ(Cli(a, "get k2"), "two words");
  EXPECT_EQ(Cli(a, "mget k1 nope k4"), "v1\n\n4");
  EXPECT_EQ(Cli(a, "exists k1 nope k3"), "2");
  EXPECT_EQ(Cli(a, "del k4 nope"), "1");
  EXPECT_EQ(Cli(a, "get k4"), "");  // nil
  EXPECT_EQ(Cli(a, "--scan"), "k1\nk2\nk3");
  EXPECT_EQ(Cli(a, "--scan --pattern 'k[12]'"), "k1\nk2");
  // Page by page, each SCAN on a connection of its own, as a client library's pool may do.
  EXPECT_EQ(Cli(a, "scan 0 count 2"), "1\nk1\nk2");
  EXPECT_EQ(Cli(a, "scan 1 count 2"), "0\nk3");
  EXPECT_EQ(Cli(a, "scan 1 count 2"), "0\nk3");  // again, as after a lost reply
  EXPECT_EQ(Cli(a, "scan 77 count 2"), "ERR invalid cursor");
  // Conditions: NX, XX, a version.
  EXPECT_EQ(Cli(a, "set k1 other nx"), "");
  EXPECT_EQ(Cli(a, "set k9 new xx"), "");
  EXPECT_EQ(Cli(a, "set k1 v1b xx"), "OK");
  std::string got = Cli(a, "getversion k1");
  auto nl = got.find('\n');
  ASSERT_NE(nl, std::string::npos) << got;
  EXPECT_EQ(got.substr(0, nl), "v1b");
  std::string version = got.substr(nl + 1);
  EXPECT_EQ(Cli(a, "set k1 v1c ifversion " + version), "OK");
  EXPECT_EQ(Cli(a, "set k1 v1d ifversion " + version), "");  // no longer that version
  EXPECT_EQ(Cli(a, "get k1"), "v1c");

  // Node b holds no replica of kg: it forwards to a, both ways.
  auto listing = cluster.Client("b")->Call([] {
    proto::Request r;
    r.mutable_list_keygroups();
    return r;
  }());
  ASSERT_TRUE(listing.ok());
  ASSERT_EQ(listing->keygroup_list().keygroups_size(), 1);
  EXPECT_FALSE(listing->keygroup_list().keygroups(0).replica());
  EXPECT_EQ(Cli(b, "get k1"), "v1c");
  EXPECT_EQ(Cli(b, "set k5 from-b"), "OK");
  EXPECT_EQ(Cli(a, "get k5"), "from-b");

  // Errors, each one line in Redis's form; the node goes on.
  EXPECT_EQ(Cli(a, "frobnicate x"),
            "ERR unknown command 'frobnicate', with args beginning with: 'x'");
  EXPECT_EQ(Cli(a, "get"), "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(Cli(a, "set k v ex 10"),
            "ERR Enoki keeps no expiry times: EX, PX, EXAT, PXAT and KEEPTTL are not served");
  EXPECT_EQ(Cli(a, "select nope"),
            "ERR keygroup 'nope' does not exist (SELECT takes a keygroup's name)");
  EXPECT_EQ(Cli(a, "auth secret").substr(0, 38), "ERR AUTH called without any password c");
  EXPECT_EQ(Cli(a, "get k1"), "v1c");
  // Another keygroup, chosen with SELECT on the same connection.
  CreateKeygroup(cluster, "a", "other", {"a"});
  RawClient raw(a);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Send(Command({"SELECT", "other"}) + Command({"GET", "k1"}) +
                       Command({"SET", "k1", "x"}) + Command({"GET", "k1"}) +
                       Command({"SET", "\xff", "v"})));
  EXPECT_EQ(raw.Read(5 + 5 + 5 + 7), "+OK\r\n$-1\r\n+OK\r\n$1\r\nx\r\n");
  // Keys are UTF-8 (a peer would refuse to parse any other).
  EXPECT_EQ(raw.ReadLine(), "-ERR key is not valid UTF-8");
  EXPECT_EQ(Cli(a, "get k1"), "v1c");  // kg's k1 is untouched
}

// Replies leave in the order of the commands, though the node completes them in another (a read
// of a key that is not durable yet waits for the commit; PING does not); a protocol error is
// answered in Redis's words and closes that connection only.
TEST(RedisTest, PipelinedRepliesKeepTheirOrderAndAProtocolErrorClosesOnlyItsConnection) {
  NodeCluster cluster({"a"}, kRedis);
  CreateKeygroup(cluster, "a", "kg", {"a"});
  int a = cluster.redis_port("a");
  RawClient c(a);
  ASSERT_TRUE(c.connected());
  std::string batch, expected;
  for (int i = 0; i < 200; ++i) {
    std::string k = "p" + std::to_string(i);
    batch += Command({"SET", k, std::to_string(i)}) + Command({"GET", k}) +
             Command({"GET", "absent"}) + "PING\r\n";
    expected += "+OK\r\n$" + std::to_string(std::to_string(i).size()) + "\r\n" + std::to_string(i) +
                "\r\n$-1\r\n+PONG\r\n";
  }
  ASSERT_TRUE(c.Send(batch));
  EXPECT_EQ(c.Read(expected.size()), expected);

  RawClient bad(a);
  ASSERT_TRUE(bad.Send("*1\r\n$x\r\n"));
  EXPECT_EQ(bad.ReadLine(), "-ERR Protocol error: invalid bulk length");
  bad.Read(1, milliseconds(2000));
  EXPECT_TRUE(bad.closed());
  RawClient huge(a);
  ASSERT_TRUE(huge.Send("*1\r\n$999999999999\r\n"));
  EXPECT_EQ(huge.ReadLine(), "-ERR Protocol error: invalid bulk length");
  EXPECT_TRUE(c.Send(Command({"GET", "p7"})));
  EXPECT_EQ(c.Read(7), "$1\r\n7\r\n");
  // A value over the node's limit is refused by the node, with its reason.
  std::string big((1 << 20) + 1000, 'x');
  EXPECT_TRUE(c.Send(Command({"SET", "big", big})));
  std::string line = c.ReadLine(milliseconds(10000));
  EXPECT_EQ(line,
            "-ERR value is 1049576 bytes, the limit is 1048576 (raise it with "
            "--max-value-size)");
}

// On a node with keys, a connection does nothing before AUTH with a token of the access file,
// and then only what that client's permissions allow.
TEST(RedisTest, ANodeWithKeysWantsATokenAndHoldsEachClientToItsPermissions) {
  KeyFolder keys({"n", "ops"});
  std::string writer = "writer-token-of-the-test", reader = "reader-token-of-the-test";
  std::string access =
      keys.AccessLines({"ops ops.pub admin read:* write:*",
                        "app token:" + adapters::TokenDigest(writer) + " read:kg write:kg",
                        "viewer token:" + adapters::TokenDigest(reader) + " read:kg"});
  std::vector<std::string> args = kRedis;
  args.insert(args.end(), {"--key", keys.key("n"), "--access", access});
  NodeCluster cluster({"n"}, args);
  adapters::Client ops(cluster.context(), cluster.endpoint("n"), milliseconds(10000), "n",
                       keys.ClientOf("ops", "n"));
  proto::CreateKeygroupRequest create;
  create.set_name("kg");
  ASSERT_TRUE(ops.CreateKeygroup(create).ok());
  int port = cluster.redis_port("n");
  EXPECT_EQ(Cli(port, "get k"), "NOAUTH Authentication required.");
  EXPECT_EQ(Cli(port, "--no-auth-warning -a wrong get k"),
            "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\n"
            "NOAUTH Authentication required.");
  EXPECT_EQ(Cli(port, "--no-auth-warning -a " + writer + " set k v"), "OK");
  EXPECT_EQ(Cli(port, "--no-auth-warning --user app --pass " + writer + " get k"), "v");
  EXPECT_EQ(Cli(port, "--no-auth-warning -a " + reader + " get k"), "v");
  EXPECT_EQ(Cli(port, "--no-auth-warning -a " + reader + " set k w"),
            "NOPERM client 'viewer' may not write to keygroup 'kg': it needs 'write:kg' in the "
            "node's access file");
  EXPECT_EQ(Cli(port, "--no-auth-warning -3 --user app --pass " + writer + " get k"), "v");
}

// With --tls-cert and --tls-key the front end speaks TLS only: redis-cli and redis-benchmark with
// --tls are served (a value of many TLS records each way, pipelines, many connections at once);
// a plain client and one that does not trust the certificate are not, and the node goes on.
// Beyond loopback it needs keys too.
TEST(RedisTest, WithACertificateTheFrontEndSpeaksTlsOnly) {
  KeyFolder dir({});
  dir.MakeCertificate();
  std::vector<std::string> args = kRedis;
  args.insert(args.end(), {"--tls-cert", dir.cert(), "--tls-key", dir.cert_key()});
  NodeCluster cluster({"a"}, args);
  CreateKeygroup(cluster, "a", "kg", {"a"});
  int port = cluster.redis_port("a");
  const std::string tls = "--tls --cacert " + dir.cert() + " ";
  EXPECT_EQ(Cli(port, tls + "set k v"), "OK");
  EXPECT_EQ(Cli(port, tls + "get k"), "v");

  std::string big_file = (dir.dir() / "big").string();
  ASSERT_EQ(RunShell("head -c 700000 /dev/urandom | base64 -w0 > " + big_file).status, 0);
  std::string big = RunShell("cat " + big_file).text;
  ASSERT_EQ(big.size(), 933336u);
  EXPECT_EQ(Cli(port, tls + "-x set big < " + big_file), "OK");
  std::string got = Cli(port, tls + "get big");
  EXPECT_TRUE(got == big) << got.size() << " bytes came back of " << big.size();

  Output bench = RunShell("redis-benchmark " + tls + "-p " + std::to_string(port) +
                          " -t set,get -n 4000 -c 20 -P 8 -q 2>&1");
  EXPECT_EQ(bench.status, 0) << bench.text;
  EXPECT_NE(bench.text.find("SET: "), std::string::npos) << bench.text;
  EXPECT_NE(bench.text.find("GET: "), std::string::npos) << bench.text;
  EXPECT_EQ(Cli(port, tls + "get key:__rand_int__").size(), 3u);  // what its SETs wrote (-d 3)

  RawClient plain(port);
  ASSERT_TRUE(plain.connected());
  ASSERT_TRUE(plain.Send(Command({"GET", "k"})));
  std::string answer = plain.Read(1 << 16, milliseconds(3000));
  EXPECT_EQ(answer.find("v"), std::string::npos) << answer;
  EXPECT_TRUE(plain.closed());
  EXPECT_NE(Cli(port, "--tls get k"), "v");  // the certificate is not trusted: no request
  EXPECT_EQ(Cli(port, tls + "get k"), "v");

  Output exposed = testing::Enoki("node --id x --in-memory --redis 0.0.0.0:0 --tls-cert " +
                                  dir.cert() + " --tls-key " + dir.cert_key());
  EXPECT_EQ(exposed.status, 1);
  EXPECT_NE(exposed.text.find("--redis 0.0.0.0:0 is reachable beyond this host without tokens "
                              "(the node has no --key)"),
            std::string::npos)
      << exposed.text;
}

// The front end's connection cap is fitted to the file descriptor limit the node starts with:
// it takes as many connections as fit, tells the next one so in Redis's words, and its log says
// what it lowered.
TEST(RedisTest, ItsConnectionCapFitsTheFileDescriptorLimit) {
  NodeCluster cluster({"a"}, kRedis, /*http=*/false, {},
                      {{"a", {"/usr/bin/prlimit", "--nofile=128:128", "--"}}});
  std::string log = RunShell("cat " + cluster.log("a")).text;
  const std::string said = "--redis-max-connections lowered from 10000 to ";
  auto at = log.find(said);
  ASSERT_NE(at, std::string::npos) << log;
  int cap = std::stoi(log.substr(at + said.size()));
  ASSERT_GT(cap, 1);
  ASSERT_LT(cap, 128);
  int port = cluster.redis_port("a");
  std::vector<std::unique_ptr<RawClient>> taken;
  for (int i = 0; i < cap; ++i) {
    taken.push_back(std::make_unique<RawClient>(port));
    ASSERT_TRUE(taken.back()->Send("PING\r\n"));
    ASSERT_EQ(taken.back()->ReadLine(), "+PONG") << "connection " << i;
  }
  RawClient over(port);
  EXPECT_EQ(over.ReadLine(), "-ERR max number of clients reached");
  EXPECT_EQ(over.Read(1), "");
  EXPECT_TRUE(over.closed());
  taken.pop_back();
  EXPECT_TRUE(NodeCluster::Eventually([&] { return Cli(port, "ping") == "PONG"; }));
}

// A node out of file descriptors (its limit lowered below what it fitted its caps to) leaves the
// connections it cannot take queued, without polling its listener in vain meanwhile, saying so
// once, and takes them as soon as descriptors are free, saying so once they are all taken.
TEST(RedisTest, OutOfDescriptorsTheFrontEndWaitsIdleAndServesAgainOnceSomeAreFree) {
  NodeCluster cluster({"a"}, kRedis);
  int port = cluster.redis_port("a");
  std::string pid = std::to_string(cluster.pid("a"));
  size_t open = std::stoul(RunShell("ls /proc/" + pid + "/fd | wc -l").text);
  std::string limit = std::to_string(open + 8);
  ASSERT_EQ(RunShell("prlimit --pid " + pid + " --nofile=" + limit + ":" + limit).status, 0);
  std::vector<std::unique_ptr<RawClient>> many;
  for (int i = 0; i < 200; ++i) many.push_back(std::make_unique<RawClient>(port));
  std::this_thread::sleep_for(milliseconds(300));
  auto ticks = [&] {  // the node's CPU time (utime + stime), or -1 once it is gone
    std::ifstream stat("/proc/" + pid + "/stat");
    std::string field;
    long sum = 0;
    int i = 1;
    for (; i <= 15 && stat >> field; ++i) {
      if (i == 14 || i == 15) sum += std::stol(field);
    }
    return i == 16 ? sum : -1;
  };
  long before = ticks();
  ASSERT_GE(before, 0);
  std::this_thread::sleep_for(milliseconds(1000));
  long after = ticks();
  ASSERT_GE(after, 0) << "the node is gone; log: " << RunShell("cat " + cluster.log("a")).text;
  // A node polling its listener every round would use a whole core: 100 ticks a second.
  EXPECT_LT(after - before, 20);
  const std::string cannot = "the Redis front end cannot take a connection (Too many open files)";
  auto said = [&](const std::string& line) {
    std::string log = RunShell("cat " + cluster.log("a")).text;
    size_t times = 0;
    for (size_t at = log.find(line); at != std::string::npos; at = log.find(line, at + 1)) ++times;
    return times;
  };
  EXPECT_EQ(said(cannot), 1u);  // once, not at every retry (13 of them by now)
  std::string fds = RunShell("ls -l /proc/" + pid + "/fd").text;
  ASSERT_TRUE(many[0]->Send("PING\r\n"));
  EXPECT_EQ(many[0]->ReadLine(), "+PONG") << "the node's descriptors: " << fds;
  many.clear();
  // Each connection it closes lets it take the next queued one (their clients gone) at once: a
  // new client behind them is answered well within a second, where retries every 100 ms alone,
  // 8 connections at a time, would take 2.5 s for the 200 (redis-cli waits in the queue).
  auto cleared = std::chrono::steady_clock::now();
  EXPECT_EQ(Cli(port, "ping"), "PONG");
  EXPECT_LT(std::chrono::steady_clock::now() - cleared, std::chrono::seconds(1))
      << RunShell("cat " + cluster.log("a")).text;
  EXPECT_EQ(said("the Redis front end took the connections that waited"), 1u)
      << RunShell("cat " + cluster.log("a")).text;
  EXPECT_EQ(said(cannot), 1u);  // not again while it took them
}

// The node answers a SET only after its write is durable: SIGKILLed in the middle of a
// redis-benchmark SET run, it holds after its restart every write it acknowledged to a client
// that counted them.
TEST(RedisTest, NoAcknowledgedWriteIsLostWhenTheNodeIsKilledDuringARedisBenchmarkRun) {
  NodeCluster cluster({"a"}, kRedis);
  CreateKeygroup(cluster, "a", "kg", {"a"});
  int port = cluster.redis_port("a");
  Output which = RunShell("command -v redis-benchmark");
  ASSERT_EQ(which.status, 0) << "redis-benchmark is not installed (scripts/setup.sh --tests)";
  which.text.pop_back();
  auto bench = adapters::Subprocess::Start({which.text, "-p", std::to_string(port), "-t", "set",
                                            "-n", "100000000", "-c", "20", "-r", "100000", "-q"},
                                           "/dev/null");
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  // Meanwhile a client of its own pipelines writes of distinct keys, 16 at a time, and counts
  // the acknowledgements (they come in order).
  RawClient c(port);
  ASSERT_TRUE(c.connected());
  int sent = 0, acked = 0;
  auto kill_at = std::chrono::steady_clock::now() + milliseconds(1500);
  bool killed = false;
  while (!c.closed() && sent < 1000000) {
    while (sent - acked < 16) {
      std::string i = std::to_string(sent++);
      if (!c.Send(Command({"SET", "ack:" + i, "value-" + i}))) break;
    }
    std::string line = c.ReadLine(milliseconds(2000));
    if (line.empty()) break;
    ASSERT_EQ(line, "+OK") << "write " << acked;
    ++acked;
    if (!killed && std::chrono::steady_clock::now() >= kill_at) {
      cluster.Kill("a");
      killed = true;
    }
  }
  ASSERT_TRUE(killed);
  bench->Kill();
  EXPECT_GT(acked, 100);
  cluster.Start("a");
  port = cluster.redis_port("a");
  RawClient check(port);
  ASSERT_TRUE(check.connected());
  int missing = 0;
  for (int base = 0; base < acked; base += 500) {
    std::vector<std::string> mget = {"MGET"};
    for (int i = base; i < std::min(acked, base + 500); ++i)
      mget.push_back("ack:" + std::to_string(i));
    ASSERT_TRUE(check.Send(Command(mget)));
    ASSERT_EQ(check.ReadLine(), "*" + std::to_string(mget.size() - 1));
    for (size_t k = 1; k < mget.size(); ++k) {
      std::string header = check.ReadLine();
      if (header == "$-1") {
        ++missing;
        continue;
      }
      std::string value = check.ReadLine();
      EXPECT_EQ(value, "value-" + mget[k].substr(4));
    }
  }
  EXPECT_EQ(missing, 0) << "of " << acked << " acknowledged writes";
}

}  // namespace
}  // namespace enoki
