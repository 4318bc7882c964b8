// The link model (parsing, rate, order, loss as TCP recovers it, drops, cut) and the user-space
// shaper's fidelity on real ZeroMQ sockets over loopback: for links with different delays,
// jitter, distributions, loss and drops, the one-way delays and drops measured at the receivers
// match the configured ones within the tolerances stated here. Both ends run on one event loop,
// so one clock times both.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "adapters/event_loop.h"
#include "adapters/zmq_transport.h"
#include "net/link_model.h"

namespace enoki::adapters {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(LinkSpecTest, ParsesWhatTheScenarioFilesWrite) {
  auto spec = net::LinkSpec::Parse("delay=25ms, jitter=500us,dist=normal loss=0.5% rate=100mbit");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->delay, milliseconds(25));
  EXPECT_EQ(spec->jitter, microseconds(500));
  EXPECT_EQ(spec->distribution, net::LinkSpec::Jitter::kNormal);
  EXPECT_DOUBLE_EQ(spec->loss, 0.005);
  EXPECT_DOUBLE_EQ(spec->rate_bps, 100e6);
  EXPECT_EQ(net::LinkSpec::Parse(spec->ToString()).value(), *spec);  // ToString parses back
  EXPECT_EQ(net::LinkSpec::Parse("").value(), net::LinkSpec{});
  // Odd values survive the text form exactly (the orchestrator sends links as text).
  net::LinkSpec odd{.delay = std::chrono::nanoseconds(1234567),
                    .jitter = microseconds(7),
                    .loss = 1e-5 / 3,
                    .rate_bps = 1234567.891,
                    .cut = true};
  EXPECT_EQ(net::LinkSpec::Parse(odd.ToString()).value(), odd) << odd.ToString();
  EXPECT_EQ(net::LinkSpec::Parse("delay=0").value().delay, core::Duration(0));
  EXPECT_FALSE(net::LinkSpec::Parse("delay=-1ms").ok());
  EXPECT_FALSE(net::LinkSpec::Parse("rate=infmbit").ok());
  EXPECT_EQ(net::LinkSpec::Parse("rate=1e-300bit").status().message(),
            "link 'rate=1e-300bit': rate '1e-300bit' is not a rate such as 100mbit, 10mbit or "
            "500kbit, at least 1bit");
  EXPECT_EQ(net::LinkSpec::Parse("loss=0.25").value().loss, 0.25);

  auto bad_unit = net::LinkSpec::Parse("delay=25");
  EXPECT_EQ(bad_unit.status().message(),
            "link 'delay=25': delay '25' is not a duration such as 25ms, 500us or 1s");
  EXPECT_NE(net::LinkSpec::Parse("loss=150%").status().message().find("up to 100%"),
            std::string::npos);
  EXPECT_NE(
      net::LinkSpec::Parse("bandwidth=1mbit").status().message().find("unknown key 'bandwidth'"),
      std::string::npos);
}

TEST(LinkModelTest, RateSerializesAndMessagesNeverOvertake) {
  core::TimePoint t0{};
  net::LinkModel link(net::LinkSpec{.delay = milliseconds(5), .rate_bps = 8e6}, 1);  // 1 byte/us
  EXPECT_EQ(*link.Arrival(t0, 1000), t0 + microseconds(1000) + milliseconds(5));
  // Handed over at once: it waits for the first to be sent.
  EXPECT_EQ(*link.Arrival(t0, 1000), t0 + microseconds(2000) + milliseconds(5));

  // The slowest link and the largest message: a time far off, not an overflow.
  net::LinkModel slowest(net::LinkSpec{.rate_bps = 1}, 1);
  auto far = slowest.Arrival(t0, size_t{1} << 40);
  ASSERT_TRUE(far.has_value());
  EXPECT_EQ(*far - t0, std::chrono::seconds(1000000000));

  net::LinkModel jittery(net::LinkSpec{.delay = milliseconds(10), .jitter = milliseconds(5)}, 1);
  core::TimePoint last{};
  for (int i = 0; i < 1000; ++i) {
    auto a = jittery.Arrival(t0 + microseconds(10 * i), 100);
    ASSERT_TRUE(a.has_value());
    EXPECT_GE(*a, last);  // in order, as over one TCP stream
    EXPECT_GE(*a, t0 + microseconds(10 * i) + milliseconds(5));
    last = *a;
  }
}

TEST(LinkModelTest, DropDropsItsFractionAndACutDropsEverything) {
  net::LinkModel lossy(net::LinkSpec{.delay = milliseconds(1), .drop = 0.2}, 2);
  int lost = 0;
  constexpr int kMessages = 20000;
  for (int i = 0; i < kMessages; ++i) lost += lossy.Arrival(core::TimePoint{}, 10) ? 0 : 1;
  // Binomial: standard deviation sqrt(n p (1-p)) = 57; allow four.
  EXPECT_NEAR(lost, 0.2 * kMessages, 4 * 57);
  lossy.Set(net::LinkSpec{.cut = true});
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(lossy.Arrival(core::TimePoint{}, 10));
}

TEST(LinkModelTest, TheRetransmissionTimeoutIsLinuxs) {
  // The round trip plus four deviations (the jitter), at least 200 ms.
  EXPECT_EQ(net::RetransmissionTimeout({.delay = milliseconds(1)}), milliseconds(202));
  EXPECT_EQ(net::RetransmissionTimeout({.delay = milliseconds(25), .jitter = milliseconds(2)}),
            milliseconds(250));
  EXPECT_EQ(net::RetransmissionTimeout({.delay = milliseconds(25), .jitter = milliseconds(60)}),
            milliseconds(290));
}

// Messages sent 1000 s apart, so that none waits for another: how much later than without loss
// each arrived, in ms; -1 for one never delivered.
std::vector<double> ExtraDelays(net::LinkModel& link, int count, size_t bytes) {
  std::vector<double> extra;
  for (int i = 0; i < count; ++i) {
    core::TimePoint sent{std::chrono::seconds(1000) * i};
    auto a = link.Arrival(sent, bytes);
    extra.push_back(a ? core::ToMillis(*a - sent - link.spec().delay) : -1);
  }
  return extra;
}

TEST(LinkModelTest, LossIsRecoveredAsTcpRecoversIt) {
  // 10 ms each way, 20% of segments lost: the timeout is 20 + 200 = 220 ms, doubling.
  net::LinkModel link(net::LinkSpec{.delay = milliseconds(10), .loss = 0.2}, 2);
  constexpr int kMessages = 20000;
  // One segment: nothing is lost; a lost one comes after the timeout, a second loss after twice
  // it more, a third after four times more.
  auto one = ExtraDelays(link, kMessages, 100);
  std::map<double, int> counts;
  for (double e : one) ++counts[e];
  EXPECT_FALSE(counts.contains(-1));
  for (const auto& [extra, n] : counts) {
    EXPECT_TRUE(extra == 0 || extra == 220 || extra == 660 || extra == 1540 || extra >= 3300)
        << extra << " ms, " << n << " times";
  }
  // P(late) = 0.2, P(lost again | late) = 0.2: four binomial standard deviations.
  int late = kMessages - counts[0];
  EXPECT_NEAR(late, 0.2 * kMessages, 4 * std::sqrt(kMessages * 0.2 * 0.8));
  int again = late - counts[220];
  EXPECT_NEAR(again, 0.2 * late, 4 * std::sqrt(late * 0.2 * 0.8));

  // Ten segments (14,480 bytes): a lost segment with three after it is fast-retransmitted one
  // round trip (20 ms) later, one of the last three waits for the timeout. The message is as
  // late as its latest segment. P(exactly 20 ms late) = P(none of the last three lost) x
  // P(each of the first seven arrives, or is lost once, and not all seven arrive)
  // = 0.8^3 x (0.96^7 - 0.8^7) = 0.2773.
  constexpr int kLarge = 5000;
  net::LinkModel large(link.spec(), 5);
  auto ten = ExtraDelays(large, kLarge, 10 * net::kSegmentBytes);
  int fast = static_cast<int>(std::count(ten.begin(), ten.end(), 20.0));
  EXPECT_NEAR(fast, 0.2773 * kLarge, 4 * std::sqrt(kLarge * 0.2773 * 0.7227));
  EXPECT_GT(std::count(ten.begin(), ten.end(), 220.0), 0);
  EXPECT_EQ(std::count(ten.begin(), ten.end(), -1.0), 0);

  // Messages behind a lost one wait for it, as over one TCP stream: sent 1 ms apart, none
  // arrives before the one sent before it, and those sent within a lost one's timeout arrive
  // with it (2% of 2,000 lost, each holding back about the next 200).
  net::LinkModel stream(net::LinkSpec{.delay = milliseconds(10), .loss = 0.02}, 3);
  core::TimePoint t0{};
  std::optional<core::TimePoint> before;
  int with_it = 0;
  for (int i = 0; i < 2000; ++i) {
    auto a = stream.Arrival(t0 + milliseconds(i), 100);
    ASSERT_TRUE(a.has_value());
    if (before) {
      EXPECT_GE(*a, *before);
      with_it += *a == *before ? 1 : 0;
    }
    before = a;
  }
  EXPECT_GT(with_it, 1000);

  // Lost every time: the connection gives up after 15 retransmissions, as Linux does.
  net::LinkModel dead(net::LinkSpec{.delay = milliseconds(1), .loss = 1}, 4);
  EXPECT_FALSE(dead.Arrival(t0, 100).has_value());
}

// A sender and several receivers on one loop; every receiver notes when each message arrived.
// A timer of the same loop, due every 1 ms while messages are on their way, notes how late the
// host fires timers apart from anything the transport does.
class ShaperRun {
 public:
  struct Receiver : net::MessageHandler {
    EventLoop* loop;
    std::map<int, core::TimePoint> arrived;  // by sequence number
    void OnPeerMessage(proto::PeerMessage&& msg) override {
      arrived[std::stoi(msg.meta_ack().keygroup())] = loop->Now();
    }
    void OnClientRequest(const net::ClientId&, const net::Caller&, proto::Request&&) override {}
  };

  // Sends `count` messages of `bytes` to each receiver, `every` apart, over links `specs`; then
  // waits `settle` for what is still on its way. sent_[i] is when message i was handed to the
  // transport.
  void Run(const std::map<std::string, net::LinkSpec>& specs, int count, core::Duration every,
           size_t bytes = 0, core::Duration settle = milliseconds(500)) {
    settle_ = settle;
    ZmqTransportOptions src{"src", "tcp://127.0.0.1:*", {}, 4 << 20, specs};
    for (const auto& [id, spec] : specs) {
      receivers_[id].loop = &loop_;
      transports_.push_back(std::make_unique<ZmqTransport>(
          context_, loop_, ZmqTransportOptions{id, "tcp://127.0.0.1:*", {}, 4 << 20, {}}));
      transports_.back()->SetHandler(&receivers_[id]);
      ASSERT_TRUE(transports_.back()->Start().ok());
      src.peers[id] = transports_.back()->bound_endpoint();
    }
    ZmqTransport sender(context_, loop_, src);
    ASSERT_TRUE(sender.Start().ok());
    // Lets the connections come up before the clock starts.
    loop_.Schedule(milliseconds(200), [&] { Send(sender, specs, 0, count, every, bytes); });
    Probe(milliseconds(200));
    loop_.Run();
    drops_ = sender.shaper_drops();
  }

  void Send(ZmqTransport& sender, const std::map<std::string, net::LinkSpec>& specs, int i,
            int count, core::Duration every, size_t bytes) {
    if (i == count) {
      stopping_ = true;
      loop_.Schedule(settle_, [&] { loop_.Stop(); });
      return;
    }
    sent_[i] = loop_.Now();
    proto::PeerMessage msg;
    msg.set_from("src");
    msg.mutable_meta_ack()->set_keygroup(std::to_string(i));
    msg.mutable_meta_ack()->mutable_version()->set_node(std::string(bytes, 'x'));
    for (const auto& [id, spec] : specs) EXPECT_TRUE(sender.SendToPeer(id, msg));
    loop_.Schedule(
        every, [&, i, count, every, bytes] { Send(sender, specs, i + 1, count, every, bytes); });
  }

  void Probe(core::Duration after) {
    core::TimePoint due = loop_.Now() + after;
    loop_.Schedule(after, [this, due] {
      lateness_.push_back(core::ToMillis(loop_.Now() - due));
      if (!stopping_) Probe(milliseconds(1));
    });
  }

  // The `q` quantile of how late the loop's timer fired during the run, in ms.
  double TimerLateness(double q) {
    std::sort(lateness_.begin(), lateness_.end());
    return lateness_.empty() ? 0 : Quantile(lateness_, q);
  }

  // One-way delays to receiver `id`, in ms, sorted.
  std::vector<double> Delays(const std::string& id) {
    std::vector<double> d;
    for (const auto& [i, t] : receivers_[id].arrived) d.push_back(core::ToMillis(t - sent_[i]));
    std::sort(d.begin(), d.end());
    return d;
  }
  static double Quantile(const std::vector<double>& sorted, double q) {
    return sorted.at(static_cast<size_t>(q * static_cast<double>(sorted.size() - 1)));
  }

  zmq::context_t context_{1};
  EventLoop loop_{42};
  std::vector<std::unique_ptr<ZmqTransport>> transports_;
  std::map<std::string, Receiver> receivers_;
  std::map<int, core::TimePoint> sent_;
  uint64_t drops_ = 0;
  std::vector<double> lateness_;
  bool stopping_ = false;
  core::Duration settle_{0};
};

TEST(ShaperFidelityTest, DelayJitterAndDropsMatchTheLinks) {
  // Messages 3 ms apart, so that jitter (at most +-1 ms here) never makes one wait for another.
  constexpr int kMessages = 400;
  std::map<std::string, net::LinkSpec> links = {
      {"edge", {.delay = milliseconds(1)}},
      {"cloud", {.delay = milliseconds(25), .jitter = milliseconds(1)}},
      {"far",
       {.delay = milliseconds(10),
        .jitter = microseconds(500),
        .distribution = net::LinkSpec::Jitter::kNormal,
        .drop = 0.1}},
  };
  // A host busy with other work fires some of the loop's timers milliseconds late; those
  // messages arrive late and move the median of a jittered link's delays (15% of them 2 ms late
  // moved it 0.2-0.3 ms with two busy loops on this 2-core host), which says nothing about the
  // shaper. So a run in which the loop's own timer fired 10% of the time over 0.25 ms late
  // (quiet: 0.013 ms) is done again, three times at most.
  std::unique_ptr<ShaperRun> run;
  for (int attempt = 1;; ++attempt) {
    run = std::make_unique<ShaperRun>();
    run->Run(links, kMessages, milliseconds(3));
    double busy = run->TimerLateness(0.9);
    if (busy < 0.25) break;
    if (attempt == 3)
      GTEST_SKIP() << "the host is too busy to measure the shaper: 10% of timers fired over "
                   << busy << " ms late, three runs in a row";
    std::printf("the host was busy (10%% of timers over %.3f ms late): again\n", busy);
  }

  // The tolerances: the median within 0.15 ms of the configured delay (the message reaches the
  // receiver ahead of its time and waits there on a timer that fires within microseconds), and
  // on a link without jitter no message early; the spread of the jitter within 25% of the
  // configured distribution's; the drops within four binomial standard deviations; nothing lost
  // on other links.
  for (const auto& [id, spec] : links) {
    auto d = run->Delays(id);
    ASSERT_GT(d.size(), kMessages / 2u) << id;
    double configured = core::ToMillis(spec.delay);
    double median = ShaperRun::Quantile(d, 0.5);
    if (spec.jitter.count() == 0) {
      EXPECT_GE(d.front(), configured) << id;
    }
    EXPECT_NEAR(median, configured, 0.15) << id;
    RecordProperty(id + "_median_ms", std::to_string(median));
    std::printf("%s: configured %.3f ms, min %.3f, median %.3f, max %.3f\n", id.c_str(), configured,
                d.front(), median, d.back());
    if (spec.drop == 0) {
      EXPECT_EQ(d.size(), static_cast<size_t>(kMessages)) << id;
    }
  }
  // Uniform +-1 ms: the 10th to 90th percentiles span 1.6 ms.
  auto cloud = run->Delays("cloud");
  EXPECT_NEAR(ShaperRun::Quantile(cloud, 0.9) - ShaperRun::Quantile(cloud, 0.1), 1.6, 0.4);
  // Normal, sd 0.5 ms: the 16th to 84th percentiles span about two standard deviations, 1 ms.
  auto far = run->Delays("far");
  EXPECT_NEAR(ShaperRun::Quantile(far, 0.84) - ShaperRun::Quantile(far, 0.16), 1.0, 0.25);
  double lost = 1.0 - static_cast<double>(far.size()) / kMessages;
  EXPECT_NEAR(lost, 0.1, 4 * std::sqrt(0.1 * 0.9 / kMessages));
  EXPECT_EQ(run->drops_, static_cast<uint64_t>(kMessages - far.size()));
}

TEST(ShaperFidelityTest, LostSegmentsAreRetransmittedAndNothingIsLost) {
  // 30% of segments lost on a 1 ms link: every message arrives, in order; the lost ones (and
  // those behind them) after the retransmission timeout, 202 ms, doubling when lost again. The
  // loop's seed fixes which are lost: the last arrives 1.4 s after its send.
  constexpr int kMessages = 40;
  ShaperRun run;
  run.Run({{"lossy", {.delay = milliseconds(1), .loss = 0.3}}}, kMessages, milliseconds(3), 0,
          std::chrono::seconds(6));
  auto d = run.Delays("lossy");
  ASSERT_EQ(d.size(), static_cast<size_t>(kMessages));
  EXPECT_EQ(run.drops_, 0u);
  EXPECT_GE(d.front(), 1.0);
  EXPECT_GE(d.back(), 202.0);  // P(no loss in 40) = 0.7^40, 6e-7
  std::printf("lossy: min %.3f, median %.3f, max %.3f ms\n", d.front(), ShaperRun::Quantile(d, 0.5),
              d.back());
}

TEST(ShaperFidelityTest, RateSerializesLargeMessages) {
  ShaperRun run;
  // 20 messages of about 125 kB handed over at once at 100 Mbit/s: 10 ms each on the wire.
  // Times from the first hand-over: the loop hands them over one per round, so the later ones
  // leave a little later, but the link serializes them back to back from the first.
  run.Run({{"slow", {.delay = milliseconds(1), .rate_bps = 100e6}}}, 20, microseconds(0), 125000);
  std::vector<double> d;
  for (const auto& [i, t] : run.receivers_["slow"].arrived)
    d.push_back(core::ToMillis(t - run.sent_[0]));
  ASSERT_EQ(d.size(), 20u);
  // Message i arrives 1 ms + 10 ms x (i + 1) after the first hand-over (the link is busy from the
  // first on), never earlier; consecutive ones 10 ms apart (the rate: median spacing within
  // 0.2 ms). All of one run are late by about the same offset, 0.4 to 3.7 ms in runs on this
  // shared 2-core host for 125 kB messages (1 ms links with small messages: 3 us, see above);
  // the median lateness must stay under 5 ms.
  std::vector<double> late, spacing;
  for (size_t i = 0; i < d.size(); ++i) {
    late.push_back(d[i] - (1 + 10.0 * static_cast<double>(i + 1)));
    EXPECT_GE(late.back(), -0.01) << i;
    if (i > 0) spacing.push_back(d[i] - d[i - 1]);
  }
  std::sort(late.begin(), late.end());
  std::sort(spacing.begin(), spacing.end());
  EXPECT_NEAR(ShaperRun::Quantile(spacing, 0.5), 10.0, 0.2);
  EXPECT_LT(ShaperRun::Quantile(late, 0.5), 5.0);
}

}  // namespace
}  // namespace enoki::adapters
