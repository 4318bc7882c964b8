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
  return core::Status::Ok();
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
