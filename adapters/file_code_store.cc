// Uploaded code in files: atomic generations under the node's data directory.
#include "adapters/file_code_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace enoki::adapters {
namespace {

namespace fs = std::filesystem;

core::Status Errno(const std::string& what, const fs::path& path) {
  return core::Status::IOError(what + " " + path.string() + ": " + std::strerror(errno));
}

// Makes what `path` (a file or a folder) holds durable.
core::Status Sync(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  errno = e;
  return rc == 0 ? core::Status::Ok() : Errno("cannot sync", path);
}

// Makes folder `path` and the missing folders above it up to `top` (which exists), each 0755;
// records each one made in `made`.
core::Status MakeFolders(const fs::path& top, const fs::path& path, std::vector<fs::path>& made) {
  if (path == top || path.empty()) return core::Status::Ok();
  std::error_code ec;
  if (fs::is_directory(path, ec)) return core::Status::Ok();
  ENOKI_RETURN_IF_ERROR(MakeFolders(top, path.parent_path(), made));
  if (::mkdir(path.c_str(), 0755) != 0) return Errno("cannot make folder", path);
  if (::chmod(path.c_str(), 0755) != 0) return Errno("cannot set the mode of", path);
  made.push_back(path);
  return core::Status::Ok();
}

core::Status WriteFile(const fs::path& path, const std::string& data, bool executable) {
  mode_t mode = executable ? 0755 : 0644;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot create", path);
  auto fail = [&](const std::string& what) {
    int e = errno;
    ::close(fd);
    errno = e;
    return Errno(what, path);
  };
  if (::fchmod(fd, mode) != 0) return fail("cannot set the mode of");  // whatever the umask
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write");
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  if (::close(fd) != 0) return Errno("cannot close", path);
  return core::Status::Ok();
}

bool AllDigits(const std::string& s) {
  return !s.empty() && s.size() < 20 && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

core::Result<std::unique_ptr<FileCodeStore>> FileCodeStore::Open(const std::string& root) {
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return core::Status::IOError("cannot make folder " + root + ": " + ec.message());
  // It becomes a process directory: a symlink put in its place (by anyone who may write the
  // data directory) must not make another folder runnable.
  if (fs::is_symlink(fs::symlink_status(root, ec))) {
    return core::Status::FailedPrecondition(root +
                                            " is a symbolic link: the folder of uploaded "
                                            "code must be a folder of the node's own");
  }
  fs::path real = fs::canonical(root, ec);
  if (ec) return core::Status::IOError("cannot open folder " + root + ": " + ec.message());
  if (::chmod(real.c_str(), 0755) != 0) return Errno("cannot set the mode of", real);
  for (const auto& entry : fs::directory_iterator(real, ec)) {
    if (entry.path().filename().string().starts_with(".tmp-")) {
      fs::remove_all(entry.path(), ec);
      if (ec)
        return core::Status::IOError("cannot remove " + entry.path().string() + ": " +
                                     ec.message());
    }
  }
  if (ec) return core::Status::IOError("cannot read folder " + real.string() + ": " + ec.message());
  return std::unique_ptr<FileCodeStore>(new FileCodeStore(real.string()));
}

core::Result<std::string> FileCodeStore::Write(const std::string& name, uint64_t generation,
                                               const Files& files) {
  const fs::path root(root_);
  const fs::path function = root / name;
  const fs::path final = function / std::to_string(generation);
  std::vector<fs::path> made;
  ENOKI_RETURN_IF_ERROR(MakeFolders(root, function, made));
  std::string pattern =
      (root / (".tmp-" + name + "-" + std::to_string(generation) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) return Errno("cannot make folder", pattern);
  const fs::path tmp(pattern);
  auto written = [&]() -> core::Status {
    if (::chmod(tmp.c_str(), 0755) != 0) return Errno("cannot set the mode of", tmp);
    std::vector<fs::path> folders;
    for (const auto& f : files) {
      // CheckUpload refused every path that leaves the folder; this is a second look at it.
      fs::path path = (tmp / f.path()).lexically_normal();
      auto [end, rest] = std::mismatch(tmp.begin(), tmp.end(), path.begin(), path.end());
      if (end != tmp.end() || rest == path.end()) {
        return core::Status::InvalidArgument("uploaded file '" + f.path() +
                                             "' lies outside its folder");
      }
      ENOKI_RETURN_IF_ERROR(MakeFolders(tmp, path.parent_path(), folders));
      ENOKI_RETURN_IF_ERROR(WriteFile(path, f.data(), f.executable()));
    }
    for (auto it = folders.rbegin(); it != folders.rend(); ++it) ENOKI_RETURN_IF_ERROR(Sync(*it));
    ENOKI_RETURN_IF_ERROR(Sync(tmp));
    std::error_code ec;
    if (fs::exists(final, ec)) {
      fs::remove_all(final, ec);  // left by a deployment that never became durable
      if (ec) return core::Status::IOError("cannot remove " + final.string() + ": " + ec.message());
    }
    if (::rename(tmp.c_str(), final.c_str()) != 0) return Errno("cannot rename into", final);
    ENOKI_RETURN_IF_ERROR(Sync(function));
    if (!made.empty()) ENOKI_RETURN_IF_ERROR(Sync(root));
    return core::Status::Ok();
  }();
  if (!written.ok()) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    return core::Status(written.code(), "cannot store the uploaded code of function '" + name +
                                            "': " + written.message());
  }
  return final.string();
}

core::Result<std::string> FileCodeStore::Folder(const std::string& name,
                                                uint64_t generation) const {
  fs::path folder = fs::path(root_) / name / std::to_string(generation);
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    return core::Status::NotFound("the uploaded code of function '" + name + "' (generation " +
                                  std::to_string(generation) + ") is missing: no folder " +
                                  folder.string());
  }
  return folder.string();
}

std::map<std::string, std::set<uint64_t>> FileCodeStore::List() const {
  std::map<std::string, std::set<uint64_t>> out;
  std::error_code ec;
  for (const auto& fn : fs::directory_iterator(root_, ec)) {
    std::string name = fn.path().filename().string();
    if (name.starts_with(".") || !fn.is_directory(ec)) continue;
    auto& generations = out[name];
    for (const auto& g : fs::directory_iterator(fn.path(), ec)) {
      std::string gen = g.path().filename().string();
      if (AllDigits(gen) && g.is_directory(ec)) generations.insert(std::stoull(gen));
    }
  }
  return out;
}

core::Status FileCodeStore::Discard(const std::string& name, uint64_t generation) {
  fs::path function = fs::path(root_) / name;
  std::error_code ec;
  fs::remove_all(function / std::to_string(generation), ec);
  if (ec) {
    return core::Status::IOError("cannot remove the uploaded code of function '" + name +
                                 "' (generation " + std::to_string(generation) +
                                 "): " + ec.message());
  }
  if (fs::is_directory(function, ec) && fs::is_empty(function, ec)) fs::remove(function, ec);
  return core::Status::Ok();
}

}  // namespace enoki::adapters
