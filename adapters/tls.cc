// TLS server contexts from PEM files (adapters/tls.h).
#include "adapters/tls.h"

#include <openssl/err.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

namespace enoki::adapters {

std::string SslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown TLS error";
  char text[256];
  ERR_error_string_n(e, text, sizeof text);
  return text;
}

core::Result<SSL_CTX*> LoadTls(const std::string& cert_file, const std::string& key_file) {
  for (const auto& [what, path] : {std::pair{"certificate", cert_file}, {"key", key_file}}) {
    if (!std::ifstream(path)) {
      return core::Status::InvalidArgument(std::string("cannot read the TLS ") + what + " file " +
                                           path + ": " + std::strerror(errno));
    }
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return core::Status::Internal("cannot make a TLS context: " + SslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  std::string error;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
    error = "the TLS certificate file " + cert_file + " holds no PEM certificate: " + SslError();
  } else if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "the TLS key file " + key_file + " holds no PEM private key: " + SslError();
  } else if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "the TLS key file " + key_file + " is not the key of the certificate in " + cert_file;
  }
  if (!error.empty()) {
    SSL_CTX_free(ctx);
    return core::Status::InvalidArgument(error);
  }
  return ctx;
}

}  // namespace enoki::adapters
