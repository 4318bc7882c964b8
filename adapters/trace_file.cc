// Length-prefixed trace records in a file.
#include "adapters/trace_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace enoki::adapters {

core::Result<std::unique_ptr<TraceFile>> TraceFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return core::Status::IOError("cannot open trace " + path + ": " + std::strerror(errno));
  }
  // A torn last record (the node was killed while writing it) is cut off, so that what this run
  // appends starts at a record boundary.
  off_t size = ::lseek(fd, 0, SEEK_END);
  off_t at = 0;
  unsigned char prefix[4];
  while (size - at >= 4 && ::pread(fd, prefix, 4, at) == 4) {
    off_t next = at + 4 +
                 static_cast<off_t>(prefix[0] | (prefix[1] << 8) | (prefix[2] << 16) |
                                    (static_cast<uint32_t>(prefix[3]) << 24));
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

core::Status ReadTraceFile(const std::string& path,
                           const std::function<void(const proto::TraceRecord&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Status::NotFound("no trace file " + path);
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  proto::TraceRecord record;
  while (data.size() - at >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
    uint32_t size = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    if (data.size() - at - 4 < size) break;  // torn last record
    if (!record.ParseFromArray(data.data() + at + 4, static_cast<int>(size))) {
      return core::Status::InvalidArgument("trace " + path + ": malformed record at byte " +
                                           std::to_string(at));
    }
    fn(record);
    at += 4 + size;
  }
  return core::Status::Ok();
}

}  // namespace enoki::adapters
