// Metrics: what a node counts about itself, as plain numbers kept on the loop thread, and a writer
// of the Prometheus text exposition format (version 0.0.4) that the node and its function host
// render them with. An adapter (adapters/metrics_server.h) serves the text over HTTP; node/ never
// does. docs/operations.md lists every metric.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace enoki::node {

// A histogram with fixed bucket bounds (in seconds), as Prometheus keeps one: the count of
// observations at or below each bound, their sum and their number.
class Histogram {
 public:
  // Bounds for request latencies: 50 us to 10 s.
  static const std::vector<double>& LatencyBounds();
  // Bounds for replication lag: 100 us to 60 s.
  static const std::vector<double>& LagBounds();

  explicit Histogram(const std::vector<double>& bounds)
      : bounds_(&bounds), counts_(bounds.size() + 1) {}
  void Observe(double seconds);
  const std::vector<double>& bounds() const { return *bounds_; }
  // Observations in bucket i alone (not cumulative); i == bounds().size(): above the last bound.
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  const std::vector<double>* bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The counters of one kind of client request (its field name in proto::Request: get, put, ...).
struct RequestStats {
  uint64_t requests = 0;  // answered
  uint64_t errors = 0;    // answered with a code other than OK (NOT_FOUND of a get included)
  Histogram latency{Histogram::LatencyBounds()};  // from arrival to the answer, node's clock
};

struct NodeMetrics {
  std::map<std::string, RequestStats> requests;  // by kind
  uint64_t replicated_items = 0;                 // items from peers' Replicate messages applied
  // Apply time at this replica minus the write's version time at its origin (wall clocks).
  Histogram replication_lag{Histogram::LagBounds()};
  uint64_t commit_failures = 0;  // storage commits that failed (node/core.h: a storage fault)
  uint64_t corrupt_items = 0;    // items dropped at start: a failed checksum, a far-future version
  uint64_t lost_commits = 0;     // commits the storage no longer held at start
  // Anti-entropy (node/anti_entropy.h): digest exchanges this node started, items it sent to
  // repair a peer, items it applied from a peer's repair.
  uint64_t digest_exchanges = 0;
  uint64_t repair_items_sent = 0;
  uint64_t repaired_items = 0;
  // The catalog's exchange: exchanges this node started, lists of its entries it sent (a peer's
  // catalog digest differed from its own), entries it sent to a peer that lacked them or held
  // older ones.
  uint64_t catalog_exchanges = 0;
  uint64_t catalog_lists_sent = 0;
  uint64_t catalog_entries_sent = 0;
};

// Writes metrics in the Prometheus text format: a family's HELP and TYPE once, then its samples.
class MetricsWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  // Starts a family; `type`: counter, gauge or histogram.
  void Family(const std::string& name, const std::string& type, const std::string& help);
  void Sample(const std::string& name, const Labels& labels, double value);
  // The _bucket (cumulative, then +Inf), _sum and _count samples of histogram `name`.
  void Histogram(const std::string& name, const Labels& labels, const node::Histogram& h);
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace enoki::node
