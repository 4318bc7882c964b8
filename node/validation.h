// Limits on names, keys and values, checked before a request touches the store. Each check returns
// an INVALID_ARGUMENT (or TOO_LARGE) Status whose message names the field and the rule.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/status.h"

namespace enoki::node {

inline constexpr size_t kMaxNameBytes = 128;
inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr size_t kDefaultMaxValueBytes = 1 << 20;

// Keygroup and node names: 1 to 128 characters of [A-Za-z0-9_.-], starting with a letter or digit.
core::Status ValidateName(std::string_view field, std::string_view name);
// Keys: 1 to 1024 bytes of UTF-8, no NUL or other control characters.
core::Status ValidateKey(std::string_view key);
// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool IsUtf8(std::string_view s);
// Values: at most max_bytes (TOO_LARGE otherwise).
core::Status ValidateValue(std::string_view value, size_t max_bytes);

}  // namespace enoki::node
