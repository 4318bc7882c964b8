// CostModel: how long a piece of work keeps a simulated node's CPU busy (a function's invocation,
// a storage commit): a fixed time, or a time drawn around a mean per occurrence (uniform
// +-jitter, or normal with that standard deviation), never below zero.
#pragma once

#include <random>
#include <string>

#include "core/env.h"
#include "net/link_model.h"

namespace enoki::sim {

struct CostModel {
  core::Duration mean{0};
  core::Duration jitter{0};
  net::LinkSpec::Jitter distribution = net::LinkSpec::Jitter::kUniform;

  core::Duration Draw(std::mt19937_64& rng) const {
    return net::DrawAround(mean, jitter, distribution, rng);
  }
  bool operator==(const CostModel&) const = default;
};

}  // namespace enoki::sim
