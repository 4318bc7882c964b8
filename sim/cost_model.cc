// Drawing compute costs.
#include "sim/cost_model.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace enoki::sim {

CostModel CostModel::Measured(std::vector<core::Duration> samples) {
  assert(!samples.empty());
  std::sort(samples.begin(), samples.end());
  CostModel m;
  for (int p = 0; p <= 100; ++p) {  // nearest rank
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    m.percentiles.push_back(samples[rank == 0 ? 0 : rank - 1]);
  }
  m.mean = m.percentiles[50];
  return m;
}

core::Duration CostModel::Draw(core::StreamRng& rng) const {
  if (percentiles.empty()) return net::DrawAround(mean, jitter, distribution, rng);
  double at = std::uniform_real_distribution<double>(0, 100)(rng);
  auto i = static_cast<size_t>(at);
  if (i >= 100) return percentiles[100];
  double lo = static_cast<double>(percentiles[i].count());
  double hi = static_cast<double>(percentiles[i + 1].count());
  return core::Duration(static_cast<core::Duration::rep>(std::llround(lo + (at - i) * (hi - lo))));
}

}  // namespace enoki::sim
