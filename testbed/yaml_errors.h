// What the readers of YAML files (scenarios, cluster files, hosts files) share: reading and
// parsing a file (refusing a key given twice in one map), errors that name the file, the line and
// column, and the field, the check that a map holds only known fields, and whole numbers in a
// range.
#pragma once

#include <charconv>
#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <yaml-cpp/yaml.h>

#include "core/status.h"

namespace enoki::testbed {

// "FILE:LINE:COLUMN: FIELD: MESSAGE" (without LINE:COLUMN when `mark` is the null mark).
inline core::Status YamlError(const std::string& file, const YAML::Mark& mark,
                              const std::string& field, const std::string& message) {
  std::string where = file;
  if (mark.line >= 0) {
    where += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  return core::Status::InvalidArgument(where + ": " + field + ": " + message);
}
// The same, at node `at`.
inline core::Status YamlError(const std::string& file, const YAML::Node& at,
                              const std::string& field, const std::string& message) {
  return YamlError(file, at.Mark(), field, message);
}

// How errors name a place: field `key` of the map at `field` ("" for the top), and item `i` of
// the list at `field`.
inline std::string YamlJoin(const std::string& field, const std::string& key) {
  return field.empty() ? key : field + "." + key;
}
inline std::string YamlItem(const std::string& field, size_t i) {
  return field + "[" + std::to_string(i) + "]";
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
    return YamlError(file, it->first, YamlJoin(field, key), "unknown field (known: " + known + ")");
  }
  return core::Status::Ok();
}

// The whole file at `path` (`what` names it in the error: "scenario file", ...).
inline core::Result<std::string> ReadYamlFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::Status::IOError("cannot read " + what + " " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// `text` parsed (its first document); an error names `file`, the line and the column. A map that
// holds a key twice is refused, at the second ("FIELD: duplicate key (first at line L, column
// C)"): yaml-cpp would keep both, and a reader would take one of them silently.
core::Result<YAML::Node> ParseYaml(const std::string& text, const std::string& file);

// A whole number from `min` to `max` at `n`.
inline core::Result<int64_t> YamlInt(const std::string& file, const YAML::Node& n,
                                     const std::string& field, int64_t min, int64_t max) {
  if (!n.IsScalar()) return YamlError(file, n, field, "expected a single value");
  const std::string& s = n.Scalar();
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < min || v > max) {
    return YamlError(file, n, field,
                     "'" + s + "' is not a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max));
  }
  return v;
}

}  // namespace enoki::testbed
