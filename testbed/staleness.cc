// Staleness at the client, from the requests' records.
#include "testbed/staleness.h"

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>
#include <unordered_map>

#include "core/hash.h"

namespace enoki::testbed {

std::vector<ClientStalenessRecord> ClientStaleness(const Scenario& s,
                                                   const std::vector<RequestRecord>& requests) {
  std::vector<ClientStalenessRecord> out;
  const int64_t empty = static_cast<int64_t>(core::Fnv1a(""));
  for (const auto& reads : s.workloads) {
    if (reads.stale_against.empty()) continue;
    struct Write {
      int64_t start, end, digest;
    };
    std::vector<Write> writes;
    for (const auto& r : requests) {
      if (r.workload == reads.stale_against && r.status == "OK") {
        writes.push_back({r.start_ns, r.end_ns, r.response_digest});
      }
    }
    std::sort(writes.begin(), writes.end(), [](const Write& a, const Write& b) {
      return std::tie(a.start, a.end) < std::tie(b.start, b.end);
    });
    // Where each value was written, in the order the writes started.
    std::unordered_map<int64_t, std::vector<size_t>> by_value;
    for (size_t i = 0; i < writes.size(); ++i) by_value[writes[i].digest].push_back(i);
    constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
    for (const auto& r : requests) {
      if (r.workload != reads.name || r.status != "OK") continue;
      // The end of the write that overwrote the value read: the one after the write of it.
      int64_t overwritten_at = -1;
      auto written = by_value.find(r.response_digest);
      if (written != by_value.end()) {
        const std::vector<size_t>& at = written->second;
        auto after = std::partition_point(at.begin(), at.end(),
                                          [&](size_t i) { return writes[i].start < r.end_ns; });
        if (after != at.begin()) {
          size_t next = *(after - 1) + 1;
          overwritten_at = next < writes.size() ? writes[next].end : kNever;
        }
      }
      if (overwritten_at == -1 && r.response_digest == empty) {
        overwritten_at = writes.empty() ? kNever : writes.front().end;
      }
      int64_t staleness = overwritten_at == -1        ? -1
                          : overwritten_at < r.end_ns ? r.end_ns - overwritten_at
                                                      : 0;
      out.push_back({r.workload, r.caller, r.seq, r.start_ns, r.end_ns, staleness});
    }
  }
  return out;
}

}  // namespace enoki::testbed
