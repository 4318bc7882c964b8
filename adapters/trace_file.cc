// Length-prefixed trace records in a file.
#include "adapters/trace_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace enoki::adapters {
namespace {

uint32_t LengthPrefix(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

// Calls `fn` for each whole record at the start of data[0, size), in order; returns the bytes
// they take (a record cut off at `size` is left). A record that does not parse is an error
// naming `what` and its byte (`origin` is data[0]'s).
core::Result<size_t> EachRecord(const char* data, size_t size, uint64_t origin,
                                const std::string& what,
                                const std::function<void(proto::TraceRecord&&)>& fn) {
  size_t at = 0;
  while (size - at >= 4) {
    uint32_t length = LengthPrefix(data + at);
    if (size - at - 4 < length) break;
    proto::TraceRecord record;
    if (!record.ParseFromArray(data + at + 4, static_cast<int>(length))) {
      return core::Status::InvalidArgument(what + ": malformed record at byte " +
                                           std::to_string(origin + at));
    }
    fn(std::move(record));
    at += 4 + length;
  }
  return at;
}

// Reads `size` bytes at `offset` of `fd` into `out`.
core::Status ReadAt(int fd, uint64_t offset, size_t size, std::string& out) {
  out.resize(size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return core::Status::IOError(std::string("cannot read the trace: ") +
                                   (n < 0 ? std::strerror(errno) : "it ended early"));
    }
    done += static_cast<size_t>(n);
  }
  return core::Status::Ok();
}

}  // namespace

core::Result<std::unique_ptr<TraceFile>> TraceFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return core::Status::IOError("cannot open trace " + path + ": " + std::strerror(errno));
  }
  // A torn last record (the node was killed while writing it) is cut off, so that what this run
  // appends starts at a record boundary.
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t at = 0;
  char prefix[4];
  while (size - at >= 4 && ::pread(fd, prefix, 4, at) == 4) {
    off_t next = at + 4 + static_cast<off_t>(LengthPrefix(prefix));
    if (next > size) break;
    at = next;
  }
  if (at < size && ::ftruncate(fd, at) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return core::Status::IOError("cannot cut the torn end of trace " + path + ": " + why);
  }
  return std::unique_ptr<TraceFile>(new TraceFile(fd));
}

TraceFile::~TraceFile() {
  Flush();
  ::close(fd_);
}

void TraceFile::Record(proto::TraceRecord&& record) {
  auto size = static_cast<uint32_t>(record.ByteSizeLong());
  char prefix[4] = {static_cast<char>(size), static_cast<char>(size >> 8),
                    static_cast<char>(size >> 16), static_cast<char>(size >> 24)};
  buffer_.append(prefix, 4);
  size_t at = buffer_.size();
  buffer_.resize(at + size);
  record.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(buffer_.data() + at));
}

void TraceFile::Flush() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // A full disk loses trace records, never the node; a part written is taken back, so that
      // later records stay readable.
      if (done > 0) {
        off_t end = ::lseek(fd_, 0, SEEK_END);
        (void)!::ftruncate(fd_, end - static_cast<off_t>(done));
      }
      break;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

core::Status TraceFile::ReadPage(uint64_t from, uint32_t max_bytes, proto::TracePage& page) {
  Flush();
  off_t end = ::lseek(fd_, 0, SEEK_END);
  if (end < 0) return core::Status::IOError(std::string("trace: ") + std::strerror(errno));
  auto size = static_cast<uint64_t>(end);
  page.set_end(size);
  page.set_next(from);
  if (from > size) {
    return core::Status::InvalidArgument("trace cursor " + std::to_string(from) +
                                         " is past the trace's end (" + std::to_string(size) +
                                         " bytes)");
  }
  if (max_bytes == 0 || from == size) return core::Status::Ok();
  auto take = [&](proto::TraceRecord&& r) { *page.add_records() = std::move(r); };
  std::string data;
  uint64_t want = std::min<uint64_t>(std::min(max_bytes, kMaxPageBytes), size - from);
  ENOKI_RETURN_IF_ERROR(ReadAt(fd_, from, want, data));
  auto taken = EachRecord(data.data(), data.size(), from, "trace", take);
  if (!taken.ok()) return taken.status();
  if (*taken == 0) {
    // The first record is larger than the page: it comes alone.
    if (size - from < 4 || !ReadAt(fd_, from, 4, data).ok() ||
        LengthPrefix(data.data()) > size - from - 4) {
      return core::Status::InvalidArgument("trace cursor " + std::to_string(from) +
                                           " is not at a record (a cursor is 0 or the next of "
                                           "an earlier page)");
    }
    ENOKI_RETURN_IF_ERROR(ReadAt(fd_, from, 4 + LengthPrefix(data.data()), data));
    taken = EachRecord(data.data(), data.size(), from, "trace", take);
    if (!taken.ok()) return taken.status();
  }
  page.set_next(from + *taken);
  return core::Status::Ok();
}

core::Status ReadTraceFile(const std::string& path,
                           const std::function<void(const proto::TraceRecord&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Status::NotFound("no trace file " + path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A torn last record is left: it ends the file quietly.
  auto taken = EachRecord(data.data(), data.size(), 0, "trace " + path,
                          [&](proto::TraceRecord&& r) { fn(r); });
  return taken.status();
}

}  // namespace enoki::adapters
