// Zip archives of function code, read with libzip: what `enoki deploy --upload FILE.zip` and the
// tinyFaaS management API's upload (a base64 zip) send to a node as its files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "net/proto/enoki.pb.h"

namespace enoki::adapters {

// The files of the zip archive `bytes`, by their paths in it (folder entries are skipped; a
// file's executable bit is its Unix mode's, when the archive was made on Unix). Refuses, naming
// the limit and the size, an archive whose files would hold more than `max_bytes` once unpacked
// (RESOURCE_EXHAUSTED, checked before anything is unpacked and again while it is), and one that
// is not a zip archive or is damaged (INVALID_ARGUMENT). Paths are not checked here: the node
// does (node::CheckUpload), so a path leaving the folder gets the node's error.
core::Result<std::vector<proto::FunctionFile>> ReadZip(std::string_view bytes, uint64_t max_bytes);

// `text` decoded from base64 (RFC 4648, with or without padding; whitespace ignored);
// INVALID_ARGUMENT at the first character that is not base64.
core::Result<std::string> DecodeBase64(std::string_view text);

}  // namespace enoki::adapters
