// TLS for the node's TCP front ends (the HTTP gateway and management API, the Redis front end):
// a server context from the operator's PEM files, and OpenSSL's errors as text. OpenSSL does the
// protocol; each front end drives its connections (blocking on a thread of its own, or
// non-blocking on the event loop).
#pragma once

#include <string>

#include <openssl/ssl.h>

#include "core/status.h"

namespace enoki::adapters {

// OpenSSL's oldest error of this thread, as text, and the thread's error queue cleared.
std::string SslError();

// A TLS 1.2+ server context from a certificate chain and its private key (PEM files), with
// partial writes from a buffer that may move between retries (what a non-blocking writer needs).
// The error names the file and what is wrong with it. The caller frees it (SSL_CTX_free).
core::Result<SSL_CTX*> LoadTls(const std::string& cert_file, const std::string& key_file);

}  // namespace enoki::adapters
