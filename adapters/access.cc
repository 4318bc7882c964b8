// The access file.
#include "adapters/access.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "adapters/curve.h"
#include "node/validation.h"

namespace enoki::adapters {

namespace {

// Sets a quota from a word `WHAT=N` (true), or leaves it (false: not a quota word).
core::Result<bool> SetQuota(const std::string& word, net::Quota& q) {
  auto equals = word.find('=');
  if (equals == std::string::npos) return false;
  std::string what = word.substr(0, equals);
  uint32_t* limit = what == "keygroups"     ? &q.keygroups
                    : what == "functions"   ? &q.functions
                    : what == "workers"     ? &q.workers
                    : what == "concurrency" ? &q.concurrency
                                            : nullptr;
  if (limit == nullptr) {
    return core::Status::InvalidArgument(
        "unknown quota '" + what + "' (known: keygroups=N, functions=N, workers=N, concurrency=N)");
  }
  std::string number = word.substr(equals + 1);
  if (number.empty() || number.size() > 9 ||
      number.find_first_not_of("0123456789") != std::string::npos) {
    return core::Status::InvalidArgument("quota '" + word +
                                         "' needs a whole number below 1000000000");
  }
  *limit = static_cast<uint32_t>(std::stoul(number));
  if (limit == &q.concurrency && *limit == 0) {
    return core::Status::InvalidArgument(
        "quota 'concurrency=0' would leave no function room to run");
  }
  return true;
}

// Adds one permission word to `p`; what is wrong with it otherwise.
core::Status AddPermission(const std::string& word, Permissions& p) {
  if (word == "admin") {
    p.admin = true;
  } else if (word == "deploy") {
    p.deploy = true;
  } else if (word == "deploy-process") {
    p.deploy = true;
    p.deploy_process = true;
  } else if (word == "control") {
    p.control = true;
  } else if (word == "join") {
    p.join = true;
  } else {
    auto colon = word.find(':');
    std::string kind = word.substr(0, colon);
    std::set<std::string>* names = kind == "read"     ? &p.read
                                   : kind == "write"  ? &p.write
                                   : kind == "invoke" ? &p.invoke
                                                      : nullptr;
    if (names == nullptr || colon == std::string::npos) {
      return core::Status::InvalidArgument(
          "unknown permission '" + word +
          "' (known: admin, read:KG, write:KG, deploy, deploy-process, invoke:FN, control, join; "
          "'*' for every keygroup or function)");
    }
    std::string name = word.substr(colon + 1);
    if (name != "*") {
      ENOKI_RETURN_IF_ERROR(node::ValidateName(kind == "invoke" ? "function" : "keygroup", name));
    }
    names->insert(name);
  }
  return core::Status::Ok();
}

constexpr const char* kTokenPrefix = "token:";

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 15];
  }
  return out;
}

bool Allows(const std::set<std::string>& names, const std::string& name) {
  return names.contains("*") || names.contains(name);
}

core::Status Denied(const std::string& client, const std::string& what, const std::string& needs) {
  return core::Status::PermissionDenied("client '" + client + "' may not " + what + ": it needs '" +
                                        needs + "' in the node's access file");
}

}  // namespace

core::Result<std::map<std::string, AccessEntry>> ReadAccessFile(const std::string& path,
                                                                const net::Quota& quota) {
  std::ifstream in(path);
  if (!in) {
    return core::Status::IOError("cannot read access file " + path + ": " + std::strerror(errno));
  }
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::map<std::string, AccessEntry> clients;
  std::map<std::string, std::string> names_by_key;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream words(line);
    std::string name, key, word;
    if (!(words >> name) || name[0] == '#') continue;
    std::string where = path + ":" + std::to_string(n) + ": ";
    if (!(words >> key)) {
      return core::Status::InvalidArgument(where + "client '" + name +
                                           "' has no key (expected NAME KEY PERMISSIONS...)");
    }
    AccessEntry entry;
    entry.quota = quota;
    while (words >> word) {
      if (word[0] == '#') break;
      auto is_quota = SetQuota(word, entry.quota);
      core::Status st = !is_quota.ok() ? is_quota.status()
                        : *is_quota    ? core::Status::Ok()
                                       : AddPermission(word, entry.permissions);
      if (!st.ok()) {
        return core::Status::InvalidArgument(where + "client '" + name + "': " + st.message());
      }
    }
    if (auto st = node::ValidateName("client name", name); !st.ok()) {
      return core::Status::InvalidArgument(where + st.message());
    }
    if (key.rfind(kTokenPrefix, 0) == 0) {
      entry.token_digest = key.substr(std::strlen(kTokenPrefix));
      if (entry.token_digest.size() != 2 * SHA256_DIGEST_LENGTH ||
          entry.token_digest.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return core::Status::InvalidArgument(
            where + "client '" + name +
            "': a token is named by the 64 lowercase hex digits of its SHA-256 (the line "
            "`enoki keys token` prints)");
      }
    } else if (key != "-") {
      // A key's 40 characters, or a file: a relative path is beside the access file.
      std::string key_path = IsKeyText(key) || std::filesystem::path(key).is_absolute()
                                 ? key
                                 : (folder / key).string();
      auto public_key = ReadPublicKey(key_path);
      if (!public_key.ok()) {
        return core::Status::InvalidArgument(where + "client '" + name +
                                             "': " + public_key.status().message());
      }
      entry.public_key = *public_key;
    }
    if (clients.contains(name)) {
      return core::Status::InvalidArgument(where + "client '" + name + "' is listed twice");
    }
    // Every credential is its own; one line at most is for callers without one.
    std::string credential = key == "-" ? "-" : entry.public_key + entry.token_digest;
    if (auto other = names_by_key.find(credential); other != names_by_key.end()) {
      return core::Status::InvalidArgument(
          where + "client '" + name +
          (key == "-" ? "' is a second line for callers without a credential (after '"
                      : "' has the key of '") +
          other->second + (key == "-" ? "'): merge them" : "': every client needs its own"));
    }
    names_by_key[credential] = name;
    clients[name] = std::move(entry);
  }
  return clients;
}

std::string TokenDigest(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return Hex(digest, sizeof digest);
}

core::Result<std::string> WriteTokenFile(const std::string& path) {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return core::Status::Internal("cannot draw a random token (OpenSSL RAND_bytes failed)");
  }
  std::string token = Hex(bytes, sizeof bytes);
  ENOKI_RETURN_IF_ERROR(WriteNewFile(path, token + "\n", 0600));
  return token;
}

core::Status Authorize(const std::string& client, const Permissions& p, const proto::Request& r) {
  switch (r.op_case()) {
    case proto::Request::kGet:
    case proto::Request::kScan: {
      const std::string& kg = r.has_get() ? r.get().keygroup() : r.scan().keygroup();
      if (Allows(p.read, kg)) return core::Status::Ok();
      return Denied(client, "read keygroup '" + kg + "'", "read:" + kg);
    }
    case proto::Request::kPut:
    case proto::Request::kDelete:
    case proto::Request::kAppend: {
      const std::string& kg = r.has_put()       ? r.put().keygroup()
                              : r.has_delete_() ? r.delete_().keygroup()
                                                : r.append().keygroup();
      if (Allows(p.write, kg)) return core::Status::Ok();
      return Denied(client, "write to keygroup '" + kg + "'", "write:" + kg);
    }
    case proto::Request::kKeygroupInfo: {
      const std::string& kg = r.keygroup_info().name();
      if (p.admin || Allows(p.read, kg)) return core::Status::Ok();
      return Denied(client, "read keygroup '" + kg + "'", "read:" + kg);
    }
    case proto::Request::kListKeygroups:
      // The list names every keygroup, its replicas and owner: for who may see them all.
      if (p.admin || p.read.contains("*")) return core::Status::Ok();
      return Denied(client, "list keygroups", "admin' or 'read:*");
    case proto::Request::kNodeStatus:
      if (p.admin) return core::Status::Ok();
      return Denied(client, "ask for the node's status", "admin");
    case proto::Request::kCreateKeygroup:
    case proto::Request::kDeleteKeygroup:
    case proto::Request::kAddReplica:
    case proto::Request::kRemoveReplica:
      if (p.admin) return core::Status::Ok();
      return Denied(client, "create, delete or re-replicate keygroups", "admin");
    case proto::Request::kDeployFunction: {
      bool process = r.deploy_function().spec().runtime() == "process";
      if (process ? p.deploy_process : p.deploy) return core::Status::Ok();
      return Denied(client, process ? "deploy a program as a function" : "deploy functions",
                    process ? "deploy-process" : "deploy");
    }
    case proto::Request::kDeleteFunction:
    case proto::Request::kListFunctions:
    case proto::Request::kFunctionLogs:
      if (p.deploy) return core::Status::Ok();
      return Denied(client, "manage functions", "deploy");
    case proto::Request::kInvoke: {
      const std::string& fn = r.invoke().function();
      if (Allows(p.invoke, fn)) return core::Status::Ok();
      return Denied(client, "call function '" + fn + "'", "invoke:" + fn);
    }
    case proto::Request::kSetLink:
      if (p.control) return core::Status::Ok();
      return Denied(client, "change links", "control");
    case proto::Request::kMeasureRtt:
      if (p.control) return core::Status::Ok();
      return Denied(client, "measure round trips", "control");
    case proto::Request::kStartCallers:
    case proto::Request::kCalls:
      if (p.control) return core::Status::Ok();
      return Denied(client, "start a run's callers or read their requests", "control");
    case proto::Request::kLoopStats:
      if (p.control) return core::Status::Ok();
      return Denied(client, "read how the node's loop kept up", "control");
    case proto::Request::kTrace:
    case proto::Request::kClock:
      // The trace names every keygroup's keys, like the list of keygroups and more.
      if (p.control) return core::Status::Ok();
      return Denied(client, "read the node's trace or its clock", "control");
    case proto::Request::kJoin:
      // A node joins as itself: the name it has in this file.
      if (!p.join) return Denied(client, "join the cluster", "join");
      if (r.join().member().id() != client) {
        return core::Status::PermissionDenied("client '" + client + "' may join only as node '" +
                                              client + "', not as '" + r.join().member().id() +
                                              "'");
      }
      return core::Status::Ok();
    case proto::Request::kLeave:
      if (p.admin) return core::Status::Ok();
      return Denied(client, "make a node leave the cluster", "admin");
    case proto::Request::OP_NOT_SET:
      break;
  }
  return core::Status::Ok();  // the node answers what names no operation
}

}  // namespace enoki::adapters
