// Versions and the hybrid logical clock.
#include "node/version.h"

#include <algorithm>
#include <charconv>
#include <limits>

namespace enoki::node {

std::string Version::ToString() const {
  return std::to_string(wall_us) + "." + std::to_string(logical) + "@" + node;
}

std::optional<Version> Version::Parse(std::string_view text) {
  if (text.empty()) return Version{};
  Version v;
  auto dot = text.find('.');
  auto at = text.find('@');
  if (dot == std::string_view::npos || at == std::string_view::npos || at < dot)
    return std::nullopt;
  auto number = [](std::string_view s, auto& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && end == s.data() + s.size();
  };
  if (!number(text.substr(0, dot), v.wall_us) ||
      !number(text.substr(dot + 1, at - dot - 1), v.logical)) {
    return std::nullopt;
  }
  v.node = std::string(text.substr(at + 1));
  return v;
}

Version Version::FromProto(const proto::Version& v) {
  return Version{v.wall_us(), v.logical(), v.node()};
}

void Version::ToProto(proto::Version* out) const {
  out->set_wall_us(wall_us);
  out->set_logical(logical);
  out->set_node(node);
}

Version HybridClock::Now() {
  int64_t wall = env_.WallMicros();
  if (wall > last_wall_) {
    last_wall_ = wall;
    last_logical_ = 0;
  } else if (last_logical_ == std::numeric_limits<uint32_t>::max()) {
    // The logical part is full: it carries into the physical part, which then runs a microsecond
    // ahead of the wall clock (as far as the logical part had counted), so that the new version
    // is still greater than every earlier one.
    ++last_wall_;
    last_logical_ = 0;
  } else {
    ++last_logical_;
  }
  return Version{last_wall_, last_logical_, node_};
}

void HybridClock::Observe(const Version& v) {
  if (v.wall_us > last_wall_) {
    last_wall_ = v.wall_us;
    last_logical_ = v.logical;
  } else if (v.wall_us == last_wall_) {
    last_logical_ = std::max(last_logical_, v.logical);
  }
}

}  // namespace enoki::node
