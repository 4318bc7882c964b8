// LinkModel: one direction of an emulated network link (delay, jitter, loss, rate, cut), the
// model that both the user-space link shaper (adapters/zmq_transport.h) and the simulator use. It
// answers one question: a message of so many bytes handed to the link now, when does it arrive,
// if at all? Like a TCP stream under netem, messages are serialized at the rate, delayed by the
// delay plus a jitter drawn per message, and never reordered (a message arrives no earlier than
// the one sent before it). Unlike TCP under netem, a lost message is gone: the node's retries
// recover, as they do over any lossy path.
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
  double loss = 0;      // fraction of messages dropped, 0 to 1
  double rate_bps = 0;  // bits per second; 0: unlimited
  bool cut = false;     // partitioned: every message is dropped

  // "delay=25ms jitter=1ms dist=normal loss=0.5% rate=100mbit" style, keys in any order,
  // separated by ',' or spaces; every key optional. Units: delay and jitter in ns, us, ms or s;
  // loss as a fraction or a percentage; rate in bit, kbit, mbit or gbit (per second).
  static core::Result<LinkSpec> Parse(std::string_view text);
  // The text form, exact: Parse(ToString()) gives the same spec.
  std::string ToString() const;
  bool operator==(const LinkSpec&) const = default;
};

// `base` plus a jitter drawn from `distribution` (uniform: +-jitter; normal: that standard
// deviation), never below zero. No draw when `jitter` is zero.
core::Duration DrawAround(core::Duration base, core::Duration jitter, LinkSpec::Jitter distribution,
                          core::StreamRng& rng);

class LinkModel {
 public:
  // `seed`: of the link's own random stream (jitter, loss), e.g. core::StreamSeed(run seed,
  // "link/a->b").
  explicit LinkModel(LinkSpec spec = {}, uint64_t seed = 0) : spec_(spec), rng_(seed) {}
  // Changes the link from now on; messages already on it keep their arrival time.
  void Set(const LinkSpec& spec) { spec_ = spec; }
  const LinkSpec& spec() const { return spec_; }
  // When a message of `bytes` handed to the link at `now` arrives; nullopt when it is dropped.
  std::optional<core::TimePoint> Arrival(core::TimePoint now, size_t bytes);

 private:
  LinkSpec spec_;
  core::StreamRng rng_;
  core::TimePoint free_at_{};       // when the sender's side of the link has sent what it holds
  core::TimePoint last_arrival_{};  // of the previous message: no overtaking
};

}  // namespace enoki::net
