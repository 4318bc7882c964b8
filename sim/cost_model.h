// CostModel: how long a piece of work keeps a simulated node's CPU busy (a function's invocation,
// a storage commit): a fixed time; a time drawn around a mean per occurrence (uniform +-jitter,
// or normal with that standard deviation), never below zero; or a measured distribution, drawn
// from its percentiles.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/random.h"
#include "net/link_model.h"

namespace enoki::sim {

struct CostModel {
  core::Duration mean{0};  // the fixed cost, or the centre of the drawn ones (measured: p50)
  core::Duration jitter{0};
  net::LinkSpec::Jitter distribution = net::LinkSpec::Jitter::kUniform;
  // Measured: the 101 percentiles p0 .. p100 of the observed costs. A draw picks a point of this
  // distribution at random, between two percentiles linearly; mean and jitter are then unused.
  std::vector<core::Duration> percentiles;

  // The model of a cost that is always `cost`.
  static CostModel Fixed(core::Duration cost) {
    CostModel m;
    m.mean = cost;
    return m;
  }
  // The model of observed costs (at least one).
  static CostModel Measured(std::vector<core::Duration> samples);
  core::Duration Draw(core::StreamRng& rng) const;
  bool operator==(const CostModel&) const = default;
};

}  // namespace enoki::sim
