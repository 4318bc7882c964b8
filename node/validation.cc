// Name, key and value checks.
#include "node/validation.h"

#include <cctype>
#include <string>

namespace enoki::node {

core::Status ValidateName(std::string_view field, std::string_view name) {
  if (name.empty()) return core::Status::InvalidArgument(std::string(field) + " is empty");
  if (name.size() > kMaxNameBytes) {
    return core::Status::InvalidArgument(std::string(field) + " is longer than " +
                                         std::to_string(kMaxNameBytes) + " characters");
  }
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) {
    return core::Status::InvalidArgument(std::string(field) + " '" + std::string(name) +
                                         "' must start with a letter or digit");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return core::Status::InvalidArgument(std::string(field) + " '" + std::string(name) +
                                           "' may only hold letters, digits, '_', '-' and '.'");
    }
  }
  return core::Status::Ok();
}

core::Status ValidateKey(std::string_view key) {
  if (key.empty()) return core::Status::InvalidArgument("key is empty");
  if (key.size() > kMaxKeyBytes) {
    return core::Status::InvalidArgument("key is " + std::to_string(key.size()) +
                                         " bytes, the limit is " + std::to_string(kMaxKeyBytes));
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return core::Status::InvalidArgument("key holds a control character");
    }
  }
  // Keys are protobuf strings on the wire, which a peer refuses to parse unless they are UTF-8:
  // a key that is not would be acknowledged here and never replicated.
  if (!IsUtf8(key)) return core::Status::InvalidArgument("key is not valid UTF-8");
  return core::Status::Ok();
}

bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    // Continuation bytes that follow the lead byte.
    size_t n = b < 0x80 ? 0 : (b >> 5) == 0x6 ? 1 : (b >> 4) == 0xe ? 2 : (b >> 3) == 0x1e ? 3 : 4;
    if (n == 4 || i + n >= s.size()) return false;  // no lead byte, or cut short
    uint32_t cp = n == 0 ? b : b & (0x3f >> n);
    for (size_t k = 1; k <= n; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, surrogates, beyond U+10FFFF.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

core::Status ValidateValue(std::string_view value, size_t max_bytes) {
  if (value.size() > max_bytes) {
    return core::Status::TooLarge("value is " + std::to_string(value.size()) +
                                  " bytes, the limit is " + std::to_string(max_bytes) +
                                  " (raise it with --max-value-size)");
  }
  return core::Status::Ok();
}

}  // namespace enoki::node
