// What the readers of YAML files (scenarios, cluster files, hosts files) share: errors that name
// the file, the line and column, and the field, and the check that a map holds only known fields.
#pragma once

#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

#include "core/status.h"

namespace enoki::testbed {

// "FILE:LINE:COLUMN: FIELD: MESSAGE" (without LINE:COLUMN when `at` has no mark).
inline core::Status YamlError(const std::string& file, const YAML::Node& at,
                              const std::string& field, const std::string& message) {
  auto mark = at.Mark();
  std::string where = file;
  if (mark.line >= 0) {
    where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  return core::Status::InvalidArgument(where + ": " + field + ": " + message);
}

// Map `n` (at `field`; "" for the top) holds no key but `allowed`: else an error naming the first
// other key and the known ones.
inline core::Status YamlOnlyKeys(const std::string& file, const YAML::Node& n,
                                 const std::string& field, const std::set<std::string>& allowed) {
  if (!n.IsMap())
    return YamlError(file, n, field.empty() ? "(top)" : field, "expected a map of fields");
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string key = it->first.Scalar();
    if (allowed.contains(key)) continue;
    std::string known;
    for (const auto& k : allowed) known += (known.empty() ? "" : ", ") + k;
    return YamlError(file, it->first, (field.empty() ? "" : field + ".") + key,
                     "unknown field (known: " + known + ")");
  }
  return core::Status::Ok();
}

}  // namespace enoki::testbed
