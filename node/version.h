// Versions of items and keygroup entries, and the hybrid logical clock that makes them.
// A version is (wall_us, logical, node): comparison is lexicographic, so two replicas that saw the
// same writes in any order pick the same winner (last writer wins, node id breaks ties).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/env.h"
#include "net/proto/enoki.pb.h"

namespace enoki::node {

struct Version {
  int64_t wall_us = 0;
  uint32_t logical = 0;
  std::string node;

  auto operator<=>(const Version&) const = default;
  // "wall_us.logical@node", for logs and errors, and as the token process functions hold.
  std::string ToString() const;
  // The inverse of ToString; an empty string is the empty version. nullopt if malformed.
  static std::optional<Version> Parse(std::string_view text);

  static Version FromProto(const proto::Version& v);
  void ToProto(proto::Version* out) const;
};

// Hybrid logical clock (Kulkarni et al.): timestamps that follow the wall clock, never go back, and
// are greater than every timestamp this node has seen. When the 32-bit logical part would wrap, it
// carries into the physical part instead. How far ahead of this node's wall clock an observed
// timestamp may be is bounded before it gets here (NodeOptions::max_clock_ahead, peer_checks.h).
class HybridClock {
 public:
  HybridClock(core::Env& env, std::string node) : env_(env), node_(std::move(node)) {}
  // A new timestamp, greater than every one issued or observed before.
  Version Now();
  // Takes a timestamp seen in a message into account.
  void Observe(const Version& v);

 private:
  core::Env& env_;
  std::string node_;
  int64_t last_wall_ = 0;
  uint32_t last_logical_ = 0;
};

}  // namespace enoki::node
