// Random streams: one generator per model of a run (each link, each node, each workload caller's
// arrivals and bodies, the costs), each seeded from the run's seed and the model's name, as ns-3
// gives every model a stream of its own: a draw added to one model moves no other model's numbers,
// so a golden trace changes only where the model that changed is involved.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/hash.h"

namespace enoki::core {

// The seed of stream `name` of a run seeded `seed`: FNV-1a over the name, mixed with the seed by
// SplitMix64's finalizer. Fixed forever: changing it changes every golden trace.
inline uint64_t StreamSeed(uint64_t seed, std::string_view name) {
  // (Its start is not FNV's standard offset, a digit short: kept, as every seed depends on it.)
  uint64_t z = seed ^ Fnv1a(name, 1469598103934665603ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The generator of a model's stream: xoshiro256** (32 bytes of state, where std::mt19937_64 holds
// 2.5 kB: a topology of 10,000 nodes has tens of thousands of links), its state filled by
// SplitMix64 from the seed. A UniformRandomBitGenerator, for the standard distributions.
class StreamRng {
 public:
  using result_type = uint64_t;
  explicit StreamRng(uint64_t seed = 0) {
    for (uint64_t& word : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      word = z ^ (z >> 31);
    }
  }
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }
  result_type operator()() {
    uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// The generator of stream `name` of a run seeded `seed`.
inline StreamRng Stream(uint64_t seed, std::string_view name) {
  return StreamRng(StreamSeed(seed, name));
}

}  // namespace enoki::core
