// The netem backend (adapters/netem.h) for real: namespaces, veth, a bridge and tc netem. For links
// with different delays, jitter, distributions, loss and rate, UDP datagrams carrying their send
// time are timed at the receiver (all threads of this process share one monotonic clock; each
// sender and receiver thread enters its host's namespace), and the measured one-way delays and
// losses match the configured ones within the tolerances stated here. Also: everything the
// network made is gone after it, and what a dead run left behind is removed.
//
// Needs root and a kernel with sch_netem; skipped elsewhere (scripts/test-netem.sh runs these
// tests inside a VM whose kernel has netem).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "adapters/netem.h"
#include "adapters/subprocess.h"

namespace enoki::adapters {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using Pair = NetemNetwork::Pair;

constexpr int kPort = 9000;

int64_t NowNs() { return Clock::now().time_since_epoch().count(); }

// Moves the calling thread into `netns` (a path), unless it is empty.
void Enter(const std::string& netns) {
  if (netns.empty()) return;
  int fd = ::open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << netns;
  ASSERT_EQ(::setns(fd, CLONE_NEWNET), 0) << netns;
  ::close(fd);
}

sockaddr_in Address(const std::string& ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPort);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

struct Datagram {
  int64_t seq;
  int64_t sent_ns;
};

class NetemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    core::Status available = NetemNetwork::Available();
    if (!available.ok()) GTEST_SKIP() << "netem cannot run here: " << available.message();
  }

  void Build(const std::vector<NetemNetwork::Host>& hosts,
             const std::map<Pair, net::LinkSpec>& links) {
    auto net = NetemNetwork::Create(hosts, links, dir_ + "/netem");
    ASSERT_TRUE(net.ok()) << net.status().ToString();
    net_ = std::move(net.value());
    for (const auto& h : hosts) netns_[h.name] = h.client ? "" : net_->NamespacePath(h.name);
  }

  // Sends `count` datagrams of `bytes` (at least 16) on each of `flows` (sender -> receiver),
  // `every` apart (0: back to back); returns each flow's one-way delays in ms, sorted.
  std::map<Pair, std::vector<double>> Measure(const std::vector<Pair>& flows, int count,
                                              microseconds every, size_t bytes = 16) {
    std::map<Pair, std::vector<double>> delays;
    std::vector<std::thread> threads;
    senders_done_ = false;
    std::map<std::string, int> sockets;  // receiving sockets by host, bound before anything is sent
    for (const auto& [from, to] : flows) {
      if (sockets.contains(to)) continue;
      std::thread([&, to = to] {
        Enter(netns_[to]);
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = Address(net_->Address(to));
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << to;
        int buf = 8 << 20;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        timeval tv{0, 200000};  // the receivers stop after 200 ms without a datagram
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockets[to] = fd;
      }).join();
    }
    std::map<std::string, std::map<std::string, std::vector<double>>> received;  // to, from
    for (auto& [to, fd] : sockets) received[to];  // each receiver thread then uses its own entry
    for (auto& [to, fd] : sockets) {
      threads.emplace_back([&, to = to, fd = fd] {
        char buf[65536];
        sockaddr_in from{};
        // Bounded: every datagram sent, and then 200 ms of silence, ends it.
        for (int i = 0; i < 100000; ++i) {
          socklen_t len = sizeof from;
          ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
          int64_t now = NowNs();
          if (n < static_cast<ssize_t>(sizeof(Datagram))) {
            if (senders_done_) break;
            continue;
          }
          Datagram d;
          std::memcpy(&d, buf, sizeof d);
          if (d.seq < 0) continue;  // a sender's first, for address resolution
          char ip[INET_ADDRSTRLEN];
          ::inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
          received[to][ip].push_back(static_cast<double>(now - d.sent_ns) / 1e6);
        }
        ::close(fd);
      });
    }
    std::vector<std::thread> senders;
    for (const auto& [from, to] : flows) {
      senders.emplace_back([&, from = from, to = to] {
        Enter(netns_[from]);
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in src = Address(net_->Address(from));
        src.sin_port = 0;
        EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src), 0) << from;
        sockaddr_in dst = Address(net_->Address(to));
        std::string payload(std::max(bytes, sizeof(Datagram)), 'x');
        // One datagram first, so that address resolution (ARP) is done before the clock starts.
        Datagram first{-1, 0};
        ::sendto(fd, &first, sizeof first, 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
        auto next = Clock::now() + milliseconds(200);
        for (int64_t i = 0; i < count; ++i) {
          std::this_thread::sleep_until(next);
          next += every;
          Datagram d{i, NowNs()};
          std::memcpy(payload.data(), &d, sizeof d);
          ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&dst),
                   sizeof dst);
        }
        ::close(fd);
      });
    }
    for (auto& t : senders) t.join();
    senders_done_ = true;
    for (auto& t : threads) t.join();
    for (const auto& [from, to] : flows) {
      auto d = received[to][net_->Address(from)];
      std::sort(d.begin(), d.end());
      delays[{from, to}] = d;
    }
    return delays;
  }

  static double Quantile(const std::vector<double>& sorted, double q) {
    return sorted.at(static_cast<size_t>(q * static_cast<double>(sorted.size() - 1)));
  }

  std::string dir_ =
      std::filesystem::temp_directory_path() / ("enoki-netem-test-" + std::to_string(::getpid()));
  std::unique_ptr<NetemNetwork> net_;
  std::map<std::string, std::string> netns_;
  std::atomic<bool> senders_done_{false};
};

TEST_F(NetemTest, DelayJitterAndLossMatchTheLinks) {
  constexpr int kMessages = 400;
  std::map<Pair, net::LinkSpec> links;
  for (const char* a : {"client", "edge", "cloud", "far"}) {
    for (const char* b : {"client", "edge", "cloud", "far"}) {
      if (std::string(a) != b) links[{a, b}] = {.delay = milliseconds(1)};
    }
  }
  links[{"client", "edge"}] = {.delay = milliseconds(1)};
  links[{"edge", "client"}] = {.delay = milliseconds(5)};
  links[{"edge", "cloud"}] = {.delay = milliseconds(25), .jitter = milliseconds(1)};
  links[{"edge", "far"}] = {.delay = milliseconds(10),
                            .jitter = microseconds(500),
                            .distribution = net::LinkSpec::Jitter::kNormal,
                            .loss = 0.1};
  Build({{"client", true}, {"edge"}, {"cloud"}, {"far"}}, links);
  std::vector<Pair> flows = {
      {"client", "edge"}, {"edge", "client"}, {"edge", "cloud"}, {"edge", "far"}};
  auto delays = Measure(flows, kMessages, microseconds(3000));

  // The tolerances: the median within 0.7 ms of the configured delay and never below it (in the
  // software-emulated VM of scripts/test-netem.sh a datagram's path through the kernel's stack
  // and the bridge adds 0.27 to 0.52 ms in the runs so far; the shaper's test holds 0.3 ms on
  // real cores); the
  // spread of the jitter within 25% of the configured distribution's; the loss within four
  // binomial standard deviations; nothing lost on lossless links.
  for (const auto& p : flows) {
    const auto& d = delays[p];
    const net::LinkSpec& spec = links[p];
    std::string id = p.first + "->" + p.second;
    ASSERT_GT(d.size(), kMessages / 2u) << id;
    double configured = core::ToMillis(spec.delay);
    double median = Quantile(d, 0.5);
    EXPECT_GE(median, configured) << id;
    EXPECT_NEAR(median, configured, 0.7) << id;
    RecordProperty(id + "_median_ms", std::to_string(median));
    std::printf("%s: configured %.3f ms, median %.3f ms, p10 %.3f, p90 %.3f, %zu of %d arrived\n",
                id.c_str(), configured, median, Quantile(d, 0.1), Quantile(d, 0.9), d.size(),
                kMessages);
    if (spec.loss == 0) {
      EXPECT_EQ(d.size(), static_cast<size_t>(kMessages)) << id;
    }
  }
  // The spreads: no more than 25% narrower than the configured distribution's, and no more than
  // 40% wider (the VM's own variation adds to it: a link without jitter spans 0.5 ms from p10 to
  // p90 there).
  auto spread = [](double measured, double configured, const char* id) {
    EXPECT_GE(measured, 0.75 * configured) << id;
    EXPECT_LE(measured, 1.4 * configured) << id;
  };
  const auto& cloud = delays[{"edge", "cloud"}];  // uniform +-1 ms: p10 to p90 span 1.6 ms
  spread(Quantile(cloud, 0.9) - Quantile(cloud, 0.1), 1.6, "edge->cloud");
  const auto& far = delays[{"edge", "far"}];  // normal, sd 0.5 ms: p16 to p84 span 1 ms
  spread(Quantile(far, 0.84) - Quantile(far, 0.16), 1.0, "edge->far");
  double lost = 1.0 - static_cast<double>(far.size()) / kMessages;
  EXPECT_NEAR(lost, 0.1, 4 * std::sqrt(0.1 * 0.9 / kMessages));
}

TEST_F(NetemTest, RateSerializesAndLinksChangeWhileRunning) {
  // 100 datagrams of 1,250 bytes (1,278 on the wire with UDP, IP and Ethernet headers) handed
  // over back to back at 10 Mbit/s: about 1.02 ms each on the wire.
  std::map<Pair, net::LinkSpec> links = {
      {{"client", "edge"}, {.delay = milliseconds(1), .rate_bps = 10e6}},
      {{"edge", "client"}, {.delay = milliseconds(1)}}};
  Build({{"client", true}, {"edge"}}, links);
  auto d = Measure({{"client", "edge"}}, 100, microseconds(0), 1250)[{"client", "edge"}];
  ASSERT_EQ(d.size(), 100u);
  // The first no earlier than the delay (htb's token bucket lets it pass at once); from the first
  // to the last,
  // the other 99 on the wire, within 10% (in the VM, four runs gave 93.0, 97.1, 99.6 and 100.1 ms
  // for 101.2).
  EXPECT_GE(d.front(), 1.0);
  EXPECT_NEAR(d.back() - d.front(), 99 * 1.0224, 0.1 * 99 * 1.0224);
  std::printf("rate: first %.3f ms, last %.3f ms (expected at least 1, and %.3f apart)\n",
              d.front(), d.back(), 99 * 1.0224);

  // A change and a cut on the timeline.
  net_->SetLinks({{{"edge", "client"}, {.delay = milliseconds(20)}}});
  ASSERT_TRUE(net_->Finish().empty());
  d = Measure({{"edge", "client"}}, 50, microseconds(3000))[{"edge", "client"}];
  ASSERT_EQ(d.size(), 50u);
  std::printf("changed to 20 ms: median %.3f ms\n", Quantile(d, 0.5));
  EXPECT_GE(Quantile(d, 0.5), 20);  // the change took effect (the fidelity is the test above)
  EXPECT_LE(Quantile(d, 0.5), 21);
  net_->SetLinks({{{"edge", "client"}, {.delay = milliseconds(20), .cut = true}}});
  ASSERT_TRUE(net_->Finish().empty());
  d = Measure({{"edge", "client"}}, 50, microseconds(3000))[{"edge", "client"}];
  EXPECT_TRUE(d.empty());
  net_->SetLinks({{{"edge", "nowhere"}, {}}});
  auto errors = net_->Finish();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("no link edge -> nowhere"), std::string::npos);
}

TEST_F(NetemTest, RemovesWhatItMadeAndWhatDeadRunsLeft) {
  // A namespace and a device as a run that was SIGKILLed would leave them: named after a pid
  // that no longer exists.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  std::string stale_ns = NetemNetwork::NamespacePrefix(dead) + "0";
  ASSERT_TRUE(adapters::RunCommand({"ip", "netns", "add", stale_ns}).ok());
  std::string stale_dev = NetemNetwork::DevicePrefix(dead) + "b";
  ASSERT_TRUE(adapters::RunCommand({"ip", "link", "add", stale_dev, "type", "bridge"}).ok());

  // 13 nodes: more than the digits and letters up to 'b' of device names in base 36.
  std::vector<NetemNetwork::Host> hosts = {{"client", true}};
  std::map<Pair, net::LinkSpec> links;
  for (int i = 0; i < 13; ++i) {
    hosts.push_back({"n" + std::to_string(i)});
    links[{"client", hosts.back().name}] = {};
    links[{hosts.back().name, "client"}] = {};
  }
  Build(hosts, links);
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + stale_ns));
  EXPECT_FALSE(std::filesystem::exists("/sys/class/net/" + stale_dev));
  std::string mine = NetemNetwork::NamespacePrefix(::getpid());
  auto count_mine = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/run/netns")) {
      n += e.path().filename().string().rfind(mine, 0) == 0;
    }
    return n;
  };
  EXPECT_EQ(count_mine(), 13);
  auto devices = [] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator("/sys/class/net")) {
      names.push_back(e.path().filename());
    }
    return names;
  };
  size_t before = devices().size();
  net_.reset();
  EXPECT_EQ(count_mine(), 0);
  EXPECT_EQ(devices().size(), before - 14);  // the bridge and 13 veth ends
}

}  // namespace
}  // namespace enoki::adapters
