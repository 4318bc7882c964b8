// Clock estimates and trace pages over the nodes' API.
#include "testbed/remote_traces.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

#include <zmq.hpp>

#include "adapters/trace_file.h"

namespace enoki::testbed {
namespace {

using core::Status;

// How long a node may take to answer one clock request, and one trace page.
constexpr auto kClockTimeout = std::chrono::seconds(3);
constexpr auto kPageTimeout = std::chrono::seconds(10);
// The fewest exchanges an estimate makes, whatever they take.
constexpr int kMinExchanges = 10;
// The most two monotonic clocks' rates may differ by while an estimate's exchanges last: the
// kernel slews a clock NTP disciplines by at most 500 ppm (adjtimex), so two such clocks differ
// by at most twice that.
constexpr double kMaxRateDifference = 1000e-6;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Moves a record's times from the node's clock to the driver's.
void ShiftRecord(const NodeClock& clock, proto::TraceRecord& r) {
  if (r.has_write()) {
    proto::WriteTrace& w = *r.mutable_write();
    w.set_durable_ns(clock.ToDriver(w.durable_ns()));
  } else if (r.has_kv_op()) {
    proto::KvOpTrace& k = *r.mutable_kv_op();
    k.set_start_ns(clock.ToDriver(k.start_ns()));
    k.set_end_ns(clock.ToDriver(k.end_ns()));
  }
}

}  // namespace

core::Result<ClockEstimate> EstimateClock(adapters::Client& client, int exchanges,
                                          std::chrono::nanoseconds budget) {
  struct Exchange {
    int64_t t0, t1, t3;
  };
  std::vector<Exchange> all;
  all.reserve(static_cast<size_t>(exchanges));
  int64_t until = Now() + budget.count();
  // A lost answer or two (a busy network) costs those exchanges, not the estimate; the first
  // must come, so that a node that does not answer costs one timeout.
  constexpr int kMaxLost = 2;
  int lost = 0;
  for (int i = 0; i < exchanges && (i < kMinExchanges || Now() < until); ++i) {
    int64_t t0 = Now();
    auto t1 = client.Clock();
    int64_t t3 = Now();
    if (!t1.ok()) {
      if (all.empty() || ++lost > kMaxLost) return t1.status();
      continue;
    }
    all.push_back({t0, *t1, t3});
  }
  if (all.empty()) return Status::InvalidArgument("a clock estimate needs an exchange");
  ClockEstimate e;
  e.exchanges = static_cast<int>(all.size());
  std::sort(all.begin(), all.end(),
            [](const Exchange& a, const Exchange& b) { return a.t3 - a.t0 < b.t3 - b.t0; });
  all.resize(std::max<size_t>(all.size() / 10, 1));
  e.kept = static_cast<int>(all.size());
  e.rtt_ns = all.front().t3 - all.front().t0;
  // Where the kept exchanges' ranges [t1 - t3, t1 - t0] overlap; all of them hold the offset as
  // long as the clocks' rates agree. Should they not overlap (a clock stepped), their hull.
  int64_t lo = INT64_MIN, hi = INT64_MAX, first = INT64_MAX, last = INT64_MIN;
  for (const auto& x : all) {
    lo = std::max(lo, x.t1 - x.t3);
    hi = std::min(hi, x.t1 - x.t0);
    first = std::min(first, x.t0);
    last = std::max(last, x.t3);
  }
  if (lo > hi) {
    lo = INT64_MAX;
    hi = INT64_MIN;
    for (const auto& x : all) {
      lo = std::min(lo, x.t1 - x.t3);
      hi = std::max(hi, x.t1 - x.t0);
    }
  }
  e.offset_ns = lo + (hi - lo) / 2;
  e.at_ns = first + (last - first) / 2;  // when the kept exchanges were made
  e.error_ns = (hi - lo + 1) / 2 +
               static_cast<int64_t>(kMaxRateDifference * static_cast<double>(last - first)) + 1;
  return e;
}

int64_t NodeClock::ToDriver(int64_t node_ns) const {
  // With the offset at driver time t being before.offset + rate * (t - before.at), the node's
  // time n = t + offset(t) gives t - before.at = (n - before.at - before.offset) / (1 + rate).
  int64_t span = after.at_ns - before.at_ns;
  int64_t since = node_ns - before.at_ns - before.offset_ns;
  if (span <= 0) return before.at_ns + since;
  double rate = static_cast<double>(after.offset_ns - before.offset_ns) / static_cast<double>(span);
  return before.at_ns + std::llround(static_cast<double>(since) / (1 + rate));
}

int64_t NodeClock::error_ns() const { return std::max(before.error_ns, after.error_ns); }

core::Result<RemoteTraces> RemoteTraces::Begin(const ClusterFile& cluster) {
  zmq::context_t context(1);
  RemoteTraces traces(cluster);
  std::string problems;
  for (const auto& [id, n] : cluster.nodes) {
    adapters::Client client = cluster.Connect(context, id, kClockTimeout);
    auto page = client.Trace(0, 0);  // no records: where the trace ends
    auto estimate = page.ok() ? EstimateClock(client) : core::Result<ClockEstimate>(page.status());
    if (!estimate.ok()) {
      problems += "\n  " + cluster.file + ": node " + id + " at " + n.endpoint + ": " +
                  estimate.status().message();
      continue;
    }
    traces.nodes_[id] = {*estimate, page->end()};
  }
  if (problems.empty()) return traces;
  return Status::FailedPrecondition(
      "the cluster mode fetches every node's trace (started with --trace FILE) and reads its "
      "clock, which needs the `control` role in its access file for this run's identity:" +
      problems);
}

Status RemoteTraces::Finish(ResultsDb& db, int64_t t0_ns) {
  zmq::context_t context(1);
  std::string problems;
  std::vector<ClockRecord> clocks;
  for (const auto& [id, n] : nodes_) {
    clocks.push_back({id, "before", n.before});
    adapters::Client client = cluster_->Connect(context, id, kPageTimeout);
    auto after = EstimateClock(client);
    Status st = after.status();
    if (after.ok()) {
      clocks.push_back({id, "after", *after});
      NodeClock clock{n.before, *after};
      // Up to where the trace ended when the fetch began: what comes later is not the run's.
      uint64_t start = n.cursor;
      st = db.WriteTrace(
          id,
          [&](const std::function<void(const proto::TraceRecord&)>& each) -> Status {
            uint64_t cursor = start, end = UINT64_MAX;
            while (cursor < end) {
              auto page = client.Trace(cursor, adapters::TraceFile::kMaxPageBytes);
              if (!page.ok()) return page.status();
              end = std::min<uint64_t>(end, page->end());
              if (page->next() == cursor) break;  // nothing more (the trace was cut short)
              cursor = page->next();
              for (auto& r : *page->mutable_records()) {
                ShiftRecord(clock, r);
                each(r);
              }
            }
            return Status::Ok();
          },
          t0_ns);
    }
    if (!st.ok()) {
      problems += (problems.empty() ? "" : "\n") + std::string("the trace of node ") + id +
                  " is missing from the results: " + st.message();
    }
  }
  ENOKI_RETURN_IF_ERROR(db.WriteClocks(clocks, t0_ns));
  if (problems.empty()) return Status::Ok();
  return Status::Unavailable(problems);
}

}  // namespace enoki::testbed
