// TraceFile: a node's measurement trace on disk (`enoki node --trace FILE`), and its reader. The
// file is a sequence of proto::TraceRecords, each preceded by its length (4 bytes, little
// endian). Records are buffered and written with one write(2) per Flush, which the node calls
// after each round of events, so a node killed by SIGKILL loses at most the round it was in. The
// node serves its trace over its API from the same file (ReadPage, proto::TraceRequest), so what
// a cluster run fetches is what survived.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "net/trace.h"

namespace enoki::adapters {

class TraceFile : public net::TraceSink {
 public:
  // Opens `path` for appending (a restarted node continues its file, after cutting off a torn
  // last record), creating it if needed.
  static core::Result<std::unique_ptr<TraceFile>> Open(const std::string& path);
  ~TraceFile() override;
  TraceFile(const TraceFile&) = delete;
  TraceFile& operator=(const TraceFile&) = delete;

  void Record(proto::TraceRecord&& record) override;
  void Flush() override;

  // The most bytes of records one page holds (a larger `max_bytes` is taken as this).
  static constexpr uint32_t kMaxPageBytes = 1 << 20;
  // A page of the trace (proto::TraceRequest): the whole records from byte `from` (0, or the
  // `next` of an earlier page) that fit in `max_bytes` (at least one when any follows; none when
  // `max_bytes` is 0), what is buffered written first. INVALID_ARGUMENT when `from` is past the
  // end or no record starts there; IO_ERROR when the file cannot be read.
  [[nodiscard]] core::Status ReadPage(uint64_t from, uint32_t max_bytes, proto::TracePage& page);

 private:
  explicit TraceFile(int fd) : fd_(fd) {}
  int fd_;
  std::string buffer_;
};

// Calls `fn` for every record of the trace file at `path`, in order. A torn last record (the node
// was killed while writing it) ends the file quietly; anything else malformed is an error naming
// the file and the offset.
core::Status ReadTraceFile(const std::string& path,
                           const std::function<void(const proto::TraceRecord&)>& fn);

}  // namespace enoki::adapters
