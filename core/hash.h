// Fnv1a: the 64-bit FNV-1a hash, for digests that must stay the same across processes, hosts and
// versions (a scenario file's text, a replica's contents), which std::hash does not promise.
#pragma once

#include <cstdint>
#include <string_view>

namespace enoki::core {

inline constexpr uint64_t kFnv1aOffset = 14695981039346656037ull;

// `bytes` hashed on from `h` (kFnv1aOffset: a fresh hash; a hash so far: its continuation).
inline uint64_t Fnv1a(std::string_view bytes, uint64_t h = kFnv1aOffset) {
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

// `bytes` hashed on from `h`, then a separator byte (0xff), so that a digest of several fields
// tells ("ab", "c") from ("a", "bc").
inline uint64_t Fnv1aField(std::string_view bytes, uint64_t h) {
  return Fnv1a("\xff", Fnv1a(bytes, h));
}

}  // namespace enoki::core
