// TraceSink: where a node (node/node.h) reports what a run measures (docs/results.md): every item
// write when it is durable at its origin and at every replica that applies it, and every store
// operation a function makes. The node calls Record during a round of events and Flush at the end
// of each Node::Flush; real nodes write a file (adapters/trace_file.h), tests collect in memory.
// Optional: a node without one records nothing.
#pragma once

#include <vector>

#include "net/proto/enoki.pb.h"

namespace enoki::net {

class TraceSink {
 public:
  virtual ~TraceSink() = default;
  virtual void Record(proto::TraceRecord&& record) = 0;
  // Everything recorded so far should reach its destination.
  virtual void Flush() {}
};

// A trace kept in memory (simulation, tests).
class TraceBuffer : public TraceSink {
 public:
  void Record(proto::TraceRecord&& record) override { records_.push_back(std::move(record)); }
  const std::vector<proto::TraceRecord>& records() const { return records_; }

 private:
  std::vector<proto::TraceRecord> records_;
};

}  // namespace enoki::net
