// The access file of a node with keys: which clients may connect, each by name and public key, and
// what each may do (its permissions, FReD-like roles).
//
//   # NAME   PUBLIC KEY                     PERMISSIONS
//   ops      keys/ops.pub                   admin read:* write:* deploy deploy-process invoke:*
//   sensor   keys/sensor.pub                write:readings
//   viewer   rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7   read:readings invoke:average
//
// The key is its 40 characters of Z85, or a .pub file (relative to this file's folder). For the
// HTTP gateway, a line may instead name a bearer token, as `token:` and the hex SHA-256 of the
// token (`enoki keys token NAME` makes one; the file holds no secret), or `-`: what callers
// without a credential may do over HTTP (public functions, e.g. `public - invoke:hello`; one such
// line). The permissions (none: the client may connect and do nothing):
//   admin            create and delete keygroups, add and remove replicas, make a node leave
//   read:KG          get and scan in keygroup KG, and its info ('*': every keygroup)
//   write:KG         put, delete and append in KG ('*': every keygroup)
//   deploy           deploy, delete and list native functions, read function logs
//   deploy-process   also deploy programs as functions (they run on the node's host)
//   invoke:FN        call function FN ('*': every function)
//   control          test-bed controls: set_link, measure_rtt; the trace and its clock
//                    (trace, clock)
//   join             join the cluster as node NAME (with this key); the members then admit it
// Words `keygroups=N`, `functions=N`, `workers=N` and `concurrency=N` change the client's quota
// (net::Quota) from the node's defaults.
// Errors name the file and line. docs/security.md has the whole model.
#pragma once

#include <map>
#include <set>
#include <string>

#include "core/status.h"
#include "net/proto/enoki.pb.h"
#include "net/transport.h"

namespace enoki::adapters {

struct Permissions {
  bool admin = false;
  bool deploy = false;
  bool deploy_process = false;
  bool control = false;
  bool join = false;  // may join the cluster as a node of its own name (docs/membership.md)
  std::set<std::string> read;    // keygroups, or "*"
  std::set<std::string> write;   // keygroups, or "*"
  std::set<std::string> invoke;  // functions, or "*"
};

// One line of the file: exactly one of `public_key` and `token_digest` is set, or neither for the
// line of callers without a credential.
struct AccessEntry {
  std::string public_key;    // Z85: a ZeroMQ client's CURVE key
  std::string token_digest;  // lowercase hex SHA-256 of an HTTP bearer token
  Permissions permissions;
  net::Quota quota;
};

// Client name -> its credential, permissions and quota (`quota` where its line changes none).
core::Result<std::map<std::string, AccessEntry>> ReadAccessFile(const std::string& path,
                                                                const net::Quota& quota);

// The lowercase hex SHA-256 of `token`, as an access file names it.
std::string TokenDigest(const std::string& token);
// Writes a new random bearer token (32 bytes, as 64 hex digits) to `path` (mode 0600; refuses to
// overwrite) and returns it.
core::Result<std::string> WriteTokenFile(const std::string& path);

// OK when `permissions` allow `request`, else PERMISSION_DENIED naming the client, what it asked
// and the permission that it lacks.
core::Status Authorize(const std::string& client, const Permissions& permissions,
                       const proto::Request& request);

}  // namespace enoki::adapters
