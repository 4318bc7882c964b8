// The access file.
#include "adapters/access.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "adapters/curve.h"
#include "node/validation.h"

namespace enoki::adapters {

core::Result<std::map<std::string, std::string>> ReadAccessFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return core::Status::IOError("cannot read access file " + path + ": " + std::strerror(errno));
  }
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::map<std::string, std::string> clients;
  std::map<std::string, std::string> names_by_key;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream words(line);
    std::string name, key, extra;
    if (!(words >> name) || name[0] == '#') continue;
    std::string where = path + ":" + std::to_string(n) + ": ";
    if (!(words >> key)) {
      return core::Status::InvalidArgument(where + "client '" + name +
                                           "' has no key (expected NAME KEY)");
    }
    if (words >> extra) {
      return core::Status::InvalidArgument(where + "unexpected '" + extra +
                                           "' after the key (expected NAME KEY)");
    }
    if (auto st = node::ValidateName("client name", name); !st.ok()) {
      return core::Status::InvalidArgument(where + st.message());
    }
    // A key's 40 characters, or a file: a relative path is beside the access file.
    std::string key_path =
        IsKeyText(key) || std::filesystem::path(key).is_absolute() ? key : (folder / key).string();
    auto public_key = ReadPublicKey(key_path);
    if (!public_key.ok()) {
      return core::Status::InvalidArgument(where + "client '" + name +
                                           "': " + public_key.status().message());
    }
    if (clients.contains(name)) {
      return core::Status::InvalidArgument(where + "client '" + name + "' is listed twice");
    }
    if (auto other = names_by_key.find(*public_key); other != names_by_key.end()) {
      return core::Status::InvalidArgument(where + "client '" + name + "' has the key of '" +
                                           other->second + "': every client needs its own");
    }
    names_by_key[*public_key] = name;
    clients[name] = *public_key;
  }
  return clients;
}

}  // namespace enoki::adapters
