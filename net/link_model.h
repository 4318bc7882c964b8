// LinkModel: one direction of an emulated network link (delay, jitter, loss, rate, cut), the
// model that both the user-space link shaper (adapters/zmq_transport.h) and the simulator use. It
// answers one question: a message of so many bytes handed to the link now, when does it arrive,
// if at all? As over a TCP stream under netem, messages are serialized at the rate, delayed by the
// delay plus a jitter drawn per message, and never reordered (a message arrives no earlier than
// the one sent before it). Loss is as TCP shows it: a message is carried in segments, each lost
// with the link's `loss`, and a lost segment arrives when TCP's retransmission brings it (a fast
// retransmit one round trip later when three segments after it arrive; else the retransmission
// timeout, the round trip plus at least 200 ms, doubling each time it is lost again), while the
// messages behind it wait; nothing is lost while the connection lives. `drop` is the other
// choice, for those who want it: a message dropped whole, recovered only by the node's retries.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "core/env.h"
#include "core/random.h"
#include "core/status.h"

namespace enoki::net {

// How far ahead of a message's arrival time a shaper hands it to the real network, stamped with
// that time (Envelope.deliver_at_ns), for the receiver to hold until then: the receiving
// process's wake-up from idle (a few hundred microseconds on a busy shared host) then overlaps the
// emulated delay instead of adding to it. A cut still drops what is due later than this.
constexpr core::Duration kDeliveryLead = std::chrono::milliseconds(1);

struct LinkSpec {
  enum class Jitter { kUniform, kNormal };

  core::Duration delay{0};   // one-way
  core::Duration jitter{0};  // uniform: +-jitter around the delay; normal: standard deviation
  Jitter distribution = Jitter::kUniform;
  double loss = 0;      // fraction of TCP segments lost (and retransmitted), 0 to 1
  double drop = 0;      // fraction of messages dropped whole, 0 to 1
  double rate_bps = 0;  // bits per second; 0: unlimited
  bool cut = false;     // partitioned: every message is dropped

  // "delay=25ms jitter=1ms dist=normal loss=0.5% rate=100mbit" style, keys in any order,
  // separated by ',' or spaces; every key optional. Units: delay and jitter in ns, us, ms or s;
  // loss and drop as a fraction or a percentage; rate in bit, kbit, mbit or gbit (per second).
  static core::Result<LinkSpec> Parse(std::string_view text);
  // The text form, exact: Parse(ToString()) gives the same spec.
  std::string ToString() const;
  bool operator==(const LinkSpec&) const = default;
};

// TCP's segment: the payload of one packet over a 1500-byte MTU (Linux's MSS with timestamps).
inline constexpr size_t kSegmentBytes = 1448;
// Linux's TCP_RTO_MIN: a retransmission timeout is the round trip plus at least this.
inline constexpr core::Duration kMinRetransmissionTimeout = std::chrono::milliseconds(200);
// Linux's TCP_RTO_MAX: the doubling stops here.
inline constexpr core::Duration kMaxRetransmissionTimeout = std::chrono::seconds(120);
// Linux's tcp_retries2: a segment lost this many times more ends the connection (the message is
// never delivered, as when the link is cut).
inline constexpr int kMaxRetransmissions = 15;

// The retransmission timeout over a link of this spec in both directions, as Linux sets it from a
// steady round trip: the round trip (twice the delay) plus four times its deviation (taken as the
// jitter), at least kMinRetransmissionTimeout.
core::Duration RetransmissionTimeout(const LinkSpec& spec);

// `base` plus a jitter drawn from `distribution` (uniform: +-jitter; normal: that standard
// deviation), never below zero. No draw when `jitter` is zero.
core::Duration DrawAround(core::Duration base, core::Duration jitter, LinkSpec::Jitter distribution,
                          core::StreamRng& rng);

class LinkModel {
 public:
  // `seed`: of the link's own random stream (jitter, loss, drop), e.g. core::StreamSeed(run seed,
  // "link/a->b").
  explicit LinkModel(LinkSpec spec = {}, uint64_t seed = 0) : spec_(spec), rng_(seed) {}
  // Changes the link from now on; messages already on it keep their arrival time.
  void Set(const LinkSpec& spec) { spec_ = spec; }
  const LinkSpec& spec() const { return spec_; }
  // When a message of `bytes` handed to the link at `now` arrives; nullopt when it is dropped
  // (cut, drop, or a segment lost more than kMaxRetransmissions times).
  std::optional<core::TimePoint> Arrival(core::TimePoint now, size_t bytes);

 private:
  // How much later than it would have without loss the last of a message's `bytes` arrives:
  // the longest of its lost segments' recoveries; nullopt when one is never recovered.
  std::optional<core::Duration> Recovery(size_t bytes);

  LinkSpec spec_;
  core::StreamRng rng_;
  core::TimePoint free_at_{};       // when the sender's side of the link has sent what it holds
  core::TimePoint last_arrival_{};  // of the previous message: no overtaking
};

}  // namespace enoki::net
