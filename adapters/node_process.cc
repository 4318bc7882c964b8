// Starting `enoki node` processes: the command line, ready files, socket folders.
#include "adapters/node_process.h"

#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <filesystem>
#include <fstream>

namespace enoki::adapters {

using core::Status;

std::vector<std::string> NodeCommandLine(const NodeProcessOptions& o) {
  std::vector<std::string> argv = {o.binary,       "node",      "--id",       o.id,
                                   "--listen",     o.listen,    "--data-dir", o.data_dir,
                                   "--ready-file", o.ready_file};
  auto option = [&](const std::string& name, const std::string& value) {
    if (!value.empty()) argv.push_back("--" + name + "=" + value);
  };
  option("log-level", o.log_level);
  if (o.seed != 0) option("seed", std::to_string(o.seed));
  if (o.retry_interval) option("retry-ms", std::to_string(o.retry_interval->count()));
  if (o.forward_timeout) option("forward-timeout-ms", std::to_string(o.forward_timeout->count()));
  option("trace", o.trace);
  option("http", o.http);
  for (const auto& [id, endpoint] : o.peers) {
    option("peer", id + "=" + endpoint);
    if (auto link = o.links.find(id); link != o.links.end())
      option("link", id + "=" + link->second);
  }
  argv.insert(argv.end(), o.more.begin(), o.more.end());
  return argv;
}

Status WriteReadyFile(const std::string& path, const ReadyInfo& info) {
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "id " << info.id << "\nendpoint " << info.endpoint << "\n";
    if (!info.http.empty()) out << "http " << info.http << "\n";
    if (!info.metrics.empty()) out << "metrics " << info.metrics << "\n";
    if (!info.manage.empty()) out << "manage " << info.manage << "\n";
    if (!info.redis.empty()) out << "redis " << info.redis << "\n";
    out.flush();
    if (!out) {
      std::string why = std::strerror(errno);
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      return Status::IOError("cannot write the ready file " + path + ": " + why);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    return Status::IOError("cannot write the ready file " + path + ": " + ec.message());
  }
  return Status::Ok();
}

core::Result<ReadyInfo> ReadReadyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no ready file " + path);
  ReadyInfo info;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    auto space = line.find(' ');
    std::string name = line.substr(0, space);
    std::string value = space == std::string::npos ? "" : line.substr(space + 1);
    std::string* field = name == "id"         ? &info.id
                         : name == "endpoint" ? &info.endpoint
                         : name == "http"     ? &info.http
                         : name == "metrics"  ? &info.metrics
                         : name == "manage"   ? &info.manage
                         : name == "redis"    ? &info.redis
                                              : nullptr;
    if (field == nullptr || value.empty()) {
      return Status::InvalidArgument(
          path + ":" + std::to_string(n) + ": expected 'id', " +
          "'endpoint', 'http', 'metrics', 'manage' or 'redis' and a value, got '" + line + "'");
    }
    *field = value;
  }
  if (info.id.empty() || info.endpoint.empty()) {
    return Status::InvalidArgument(path + ": a ready file needs an id and an endpoint");
  }
  return info;
}

core::Result<ReadyInfo> WaitForReadyFile(const std::string& path, const std::string& id,
                                         adapters::Subprocess& proc,
                                         std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(path)) {
    // Waiting for the process is the pause between looks.
    if (auto status = proc.Wait(std::chrono::milliseconds(10))) {
      return Status::Unavailable("node " + id + " " + adapters::DescribeWaitStatus(*status) +
                                 " before it was ready");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Unavailable("node " + id + " was not ready within " +
                                 std::to_string(timeout.count()) + " ms");
    }
  }
  auto info = ReadReadyFile(path);
  if (!info.ok()) return info.status();
  if (info->id != id) {
    return Status::FailedPrecondition(path + " says node '" + info->id + "', not '" + id + "'");
  }
  return info;
}

core::Result<SocketFolder> MakeSocketFolder(const std::string& preferred, size_t longest_id) {
  // sockaddr_un.sun_path, less its final NUL.
  constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;
  std::error_code ec;
  std::string path = std::filesystem::absolute(preferred, ec).string();
  if (!ec && path.size() + 1 + longest_id <= kMaxSocketPath) {
    std::filesystem::create_directories(path, ec);
    if (ec) return Status::IOError("cannot create " + path + ": " + ec.message());
    return SocketFolder{path, false};
  }
  path = (std::filesystem::temp_directory_path(ec) / "enoki-sockets-XXXXXX").string();
  if (::mkdtemp(path.data()) == nullptr) {
    return Status::IOError("cannot create a folder for Unix sockets (" + path +
                           "): " + std::strerror(errno));
  }
  if (path.size() + 1 + longest_id > kMaxSocketPath) {
    std::filesystem::remove(path, ec);
    return Status::InvalidArgument(
        "node ids of " + std::to_string(longest_id) + " characters are too long for Unix " +
        "socket paths (" + std::to_string(kMaxSocketPath) + " characters at most, " + path + ")");
  }
  return SocketFolder{path, true};
}

}  // namespace enoki::adapters
