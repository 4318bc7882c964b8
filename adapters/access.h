// The access file of a node with keys: which clients may connect, each by name and public key.
//
//   # NAME   PUBLIC KEY (40 characters of Z85, or a .pub file, relative to this file's folder)
//   alice    keys/alice.pub
//   loader   rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
//
// Errors name the file and line. docs/security.md has the whole model.
#pragma once

#include <map>
#include <string>

#include "core/status.h"

namespace enoki::adapters {

// Client name -> public key (Z85).
core::Result<std::map<std::string, std::string>> ReadAccessFile(const std::string& path);

}  // namespace enoki::adapters
