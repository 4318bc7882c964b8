// Starting `enoki node` processes: their command line, built in one place, and how the process
// that starts them (the emulation, `enoki demo`, the tests' cluster) and the nodes find each
// other. No process picks a port for another: each node binds what it is given (a Unix
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
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/subprocess.h"
#include "core/status.h"

namespace enoki::adapters {

// What an `enoki node` process is started with (`enoki node --help` says what each does).
struct NodeProcessOptions {
  std::string binary;  // the enoki executable
  std::string id;
  std::string listen;  // an endpoint to bind (see the file's comment)
  std::string data_dir;
  std::string ready_file;                                  // where it says what it holds
  std::vector<std::pair<std::string, std::string>> peers;  // id, endpoint
  std::map<std::string, std::string> links;  // peer id -> its link (LinkSpec's text form)
  std::string log_level;                     // empty: the node's default
  uint64_t seed = 0;                         // 0: a random one
  std::optional<std::chrono::milliseconds> retry_interval;
  std::optional<std::chrono::milliseconds> forward_timeout;
  std::string trace;              // a trace file; empty: none
  std::string http;               // HOST:PORT for the HTTP gateway; empty: none
  std::vector<std::string> more;  // further options, as they are
};

// The argv of an `enoki node` process with `options`.
std::vector<std::string> NodeCommandLine(const NodeProcessOptions& options);

struct ReadyInfo {
  std::string id;        // the node's id
  std::string endpoint;  // the ZeroMQ endpoint it listens on, as bound
  std::string http;      // HOST:PORT of its HTTP gateway, as bound; empty without one
  std::string metrics;   // HOST:PORT of its metrics endpoint, as bound; empty without one
  std::string manage;    // HOST:PORT of its tinyFaaS management API, as bound; empty without one
  std::string redis;     // HOST:PORT of its Redis front end, as bound; empty without one
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
