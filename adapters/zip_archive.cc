// Reading zip archives with libzip, from memory.
#include "adapters/zip_archive.h"

#include <sys/stat.h>
#include <zip.h>

#include <memory>

#include <openssl/evp.h>

#include "node/function_host.h"

namespace enoki::adapters {
namespace {

struct ZipCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct FileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

std::string ZipError(zip_error_t* error) {
  std::string text = zip_error_strerror(error);
  zip_error_fini(error);
  return text;
}

}  // namespace

core::Result<std::vector<proto::FunctionFile>> ReadZip(std::string_view bytes, uint64_t max_bytes) {
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) return core::Status::Internal("zip: " + ZipError(&error));
  std::unique_ptr<zip_t, ZipCloser> archive(zip_open_from_source(source, ZIP_RDONLY, &error));
  if (!archive) {
    zip_source_free(source);
    return core::Status::InvalidArgument("not a readable zip archive: " + ZipError(&error));
  }
  zip_error_fini(&error);
  zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  if (entries > static_cast<zip_int64_t>(node::kMaxUploadFiles)) {
    return core::Status::ResourceExhausted("the zip archive holds " + std::to_string(entries) +
                                           " entries; a node takes at most " +
                                           std::to_string(node::kMaxUploadFiles) + " files");
  }
  // What the archive says its files unpack to, before a byte is unpacked (a zip bomb says so or
  // lies, and then the reads below stop at the limit).
  uint64_t declared = 0;
  for (zip_int64_t i = 0; i < entries; ++i) {
    zip_stat_t st;
    if (zip_stat_index(archive.get(), i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
      return core::Status::InvalidArgument("zip archive with a damaged entry " + std::to_string(i));
    }
    declared += st.size;
  }
  auto over = [&](uint64_t size) {
    return core::Status::ResourceExhausted("the zip archive unpacks to " + std::to_string(size) +
                                           " bytes or more, over the limit of " +
                                           std::to_string(max_bytes) + " bytes");
  };
  if (declared > max_bytes) return over(declared);
  std::vector<proto::FunctionFile> files;
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < entries; ++i) {
    const char* entry = zip_get_name(archive.get(), i, ZIP_FL_ENC_GUESS);
    if (entry == nullptr) {
      return core::Status::InvalidArgument("zip archive with a damaged entry " + std::to_string(i));
    }
    std::string name = entry;
    if (name.empty() || name.back() == '/') continue;  // a folder
    zip_uint8_t os = 0;
    zip_uint32_t attributes = 0;
    zip_file_get_external_attributes(archive.get(), i, 0, &os, &attributes);
    proto::FunctionFile f;
    f.set_path(name);
    if (os == ZIP_OPSYS_UNIX) {
      mode_t mode = attributes >> 16;
      if (S_ISDIR(mode)) continue;
      if (S_ISLNK(mode)) {
        return core::Status::InvalidArgument("zip archive: '" + name +
                                             "' is a symbolic link; an upload holds files only");
      }
      f.set_executable((mode & S_IXUSR) != 0);
    }
    std::unique_ptr<zip_file_t, FileCloser> file(zip_fopen_index(archive.get(), i, 0));
    if (!file) {
      return core::Status::InvalidArgument("zip archive: cannot unpack '" + name +
                                           "': " + zip_strerror(archive.get()));
    }
    std::string& data = *f.mutable_data();
    char buf[65536];
    while (true) {
      zip_int64_t n = zip_fread(file.get(), buf, sizeof buf);
      if (n < 0) {
        return core::Status::InvalidArgument("zip archive: cannot unpack '" + name +
                                             "': " + zip_file_strerror(file.get()));
      }
      if (n == 0) break;
      total += static_cast<uint64_t>(n);
      if (total > max_bytes) return over(total);
      data.append(buf, static_cast<size_t>(n));
    }
    files.push_back(std::move(f));
  }
  return files;
}

core::Result<std::string> DecodeBase64(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=';
    if (!ok) {
      return core::Status::InvalidArgument("not base64: a '" + std::string(1, c) + "' at byte " +
                                           std::to_string(clean.size()));
    }
    clean += c;
  }
  while (clean.size() % 4 != 0) clean += '=';
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return core::Status::InvalidArgument("not base64");
  size_t pad = 0;
  for (size_t i = clean.size(); i > 0 && clean[i - 1] == '=' && pad < 2; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace enoki::adapters
