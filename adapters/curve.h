// CURVE keys (ZeroMQ's CurveZMQ: authenticated, encrypted links). A key pair file
// (`enoki keys generate NAME` writes NAME.key, readable by its owner only, and NAME.pub) holds
// lines `public Z85` and `secret Z85`; a public key file only the first. Comments start with '#'.
// Keys travel as Z85 text (40 characters). docs/security.md has how to make and hand them out.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include <zmq.hpp>

#include "core/status.h"

namespace enoki::adapters {

struct KeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85; empty in a public key file
};

// A fresh key pair from libzmq (libsodium's random source).
core::Result<KeyPair> GenerateKeyPair();
// Writes `base`.key (mode 0600) and `base`.pub; refuses to overwrite either. `name` goes into
// the files' comment.
core::Status WriteKeyFiles(const std::string& base, const std::string& name, const KeyPair& keys);
// Writes `text` to a new file `path` with `mode` (whatever the umask says); refuses to overwrite.
core::Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode);
// Whether only this host can reach `host` (of an endpoint): a numeric loopback address, or
// "localhost" (which a name server cannot point elsewhere: it is resolved from /etc/hosts). What
// listens anywhere else needs keys (docs/security.md).
bool IsLoopbackHost(std::string host);
// Whether a ZeroMQ endpoint is reachable from this host only (a Unix socket, or loopback).
bool IsLocalEndpoint(const std::string& endpoint);
// Whether `text` is a key itself: 40 characters of Z85.
bool IsKeyText(const std::string& text);
// A key pair file. Errors name the file and line. A file that holds a secret key and that others
// may read is refused (chmod 600).
core::Result<KeyPair> ReadKeyPair(const std::string& path);
// A public key given as its 40 Z85 characters or as a file (a .pub file, or a key pair file, of
// which only the public key is taken).
core::Result<std::string> ReadPublicKey(const std::string& text_or_path);

// A client's side of CURVE: its own key pair and the public key of the node it talks to. Empty:
// plain (no CURVE), which only a node without keys accepts.
struct ClientKeys {
  KeyPair own;
  std::string server_public_key;
  bool enabled() const { return !server_public_key.empty(); }
};
// ENOKI_IDENTITY (a key pair file) and ENOKI_SERVER_KEY (the node's public key), overridden by the
// given paths when not empty. Both or neither: one without the other is an error.
core::Result<ClientKeys> LoadClientKeys(const std::string& key_file, const std::string& server_key);
// Sets CURVE on a socket that connects (before connect()).
void UseClientKeys(zmq::socket_t& socket, const ClientKeys& keys);

}  // namespace enoki::adapters
