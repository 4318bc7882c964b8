// How a process that starts nodes (the emulation, `enoki demo`, the tests' cluster) and the nodes
// find each other. No process picks a port for another: each node binds what it is given (a Unix
// socket path in a folder of the starter's, a fixed address, or port 0), and once it listens and
// has started, and before it serves anything, it writes its id and its bound endpoints to its
// ready file (`enoki node --ready-file`). The file appears whole (written beside, then renamed),
// so a reader never sees half of it.
//
// Format, one field per line, "NAME VALUE":
//   id edge8
//   endpoint tcp://127.0.0.1:40125
//   http 127.0.0.1:40126        (only with --http)
#pragma once

#include <chrono>
#include <string>

#include "adapters/subprocess.h"
#include "core/status.h"

namespace enoki::adapters {

struct ReadyInfo {
  std::string id;        // the node's id
  std::string endpoint;  // the ZeroMQ endpoint it listens on, as bound
  std::string http;      // HOST:PORT of its HTTP gateway, as bound; empty without one
};

// Writes `info` to `path` atomically (a temporary file in the same folder, renamed).
[[nodiscard]] core::Status WriteReadyFile(const std::string& path, const ReadyInfo& info);

// Reads a ready file; an error names the file and, for a malformed one, the line.
core::Result<ReadyInfo> ReadReadyFile(const std::string& path);

// Waits until node `id`, started as `proc`, wrote its ready file `path`, at most `timeout`.
// Fails at once when the process ended meanwhile (saying how), when the time is up, or when the
// file names another id. The caller removes an old file before starting the node.
core::Result<ReadyInfo> WaitForReadyFile(const std::string& path, const std::string& id,
                                         adapters::Subprocess& proc,
                                         std::chrono::milliseconds timeout);

// A folder for the Unix sockets (ipc:// endpoints) of nodes whose ids have at most
// `longest_id` characters.
struct SocketFolder {
  std::string path;        // absolute
  bool temporary = false;  // made in the temporary directory: the caller removes it
};
// `preferred` (created) when every socket path in it fits a Unix socket address (107
// characters), else a fresh folder in the temporary directory.
core::Result<SocketFolder> MakeSocketFolder(const std::string& preferred, size_t longest_id);

}  // namespace enoki::adapters
