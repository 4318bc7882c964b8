// Request-body templates of workloads: parsed when a scenario is read, expanded for every request
// of a run (docs/scenarios.md, "body").
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/random.h"
#include "core/status.h"

namespace enoki::testbed {

// A workload's body template, parsed: literal text and the fields filled in per request.
struct BodyPart {
  enum class Kind { kText, kCaller, kSeq, kInt, kRandom };
  Kind kind = Kind::kText;
  std::string text;      // kText
  int64_t a = 0, b = 0;  // kInt: the range; kRandom: the length in a
};
// Parses a template: {caller}, {seq}, {int:A:B}, {random:N}; "{{" and "}}" are braces.
core::Result<std::vector<BodyPart>> ParseBody(const std::string& text);
// The length of the longest body `parts` expands to, for callers 0 to callers - 1 and sequence
// numbers 0 to max_seq.
uint64_t MaxBodyBytes(const std::vector<BodyPart>& parts, int callers, int64_t max_seq);
// One request's body.
std::string ExpandBody(const std::vector<BodyPart>& parts, int caller, int64_t seq,
                       core::StreamRng& rng);

}  // namespace enoki::testbed
