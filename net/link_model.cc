// The link model and the text form of link specs.
#include "net/link_model.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace enoki::net {
namespace {

using core::Duration;
using core::Status;

// The longest a message takes to serialize, in seconds (about 31 years; a link set to 1 bit/s
// sends a 4 GiB message in about 1,100 years): beyond it nanoseconds would overflow.
constexpr double kMaxSerializationS = 1e9;

// A number (exponents allowed) and a unit suffix from `units` (name, factor); the number times
// the factor. Negative, infinite and NaN numbers are refused.
std::optional<double> Number(std::string_view text,
                             std::initializer_list<std::pair<const char*, double>> units,
                             bool unit_required) {
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p == text.data() || !std::isfinite(value) || value < 0) {
    return std::nullopt;
  }
  std::string_view unit = text.substr(static_cast<size_t>(p - text.data()));
  if (unit.empty()) return unit_required ? std::nullopt : std::optional<double>(value);
  for (const auto& [name, factor] : units) {
    if (unit == name) return value * factor;
  }
  return std::nullopt;
}

// Exactly, in the largest of ms, us and ns that keeps it whole.
std::string FormatDuration(Duration d) {
  auto ns = d.count();
  if (ns % 1000000 == 0) return std::to_string(ns / 1000000) + "ms";
  if (ns % 1000 == 0) return std::to_string(ns / 1000) + "us";
  return std::to_string(ns) + "ns";
}

}  // namespace

core::Result<LinkSpec> LinkSpec::Parse(std::string_view text) {
  LinkSpec spec;
  std::vector<std::string_view> items;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find_first_of(", ", pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) items.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  for (auto item : items) {
    auto eq = item.find('=');
    std::string_view key = item.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    auto bad = [&](const std::string& expected) {
      return Status::InvalidArgument("link '" + std::string(text) + "': " + std::string(key) +
                                     " '" + std::string(value) + "' is not " + expected);
    };
    if (key == "delay" || key == "jitter") {
      auto us = value == "0"
                    ? std::optional<double>(0)
                    : Number(value, {{"ns", 1e-3}, {"us", 1}, {"ms", 1e3}, {"s", 1e6}}, true);
      if (!us || *us > 1e12) return bad("a duration such as 25ms, 500us or 1s");
      auto d = Duration(static_cast<Duration::rep>(std::llround(*us * 1e3)));
      (key == "delay" ? spec.delay : spec.jitter) = d;
    } else if (key == "dist") {
      if (value == "uniform") {
        spec.distribution = Jitter::kUniform;
      } else if (value == "normal") {
        spec.distribution = Jitter::kNormal;
      } else {
        return bad("uniform or normal");
      }
    } else if (key == "loss" || key == "drop") {
      auto f = Number(value, {{"%", 0.01}}, false);
      if (!f || *f > 1) return bad("a fraction (0.01) or a percentage (1%) up to 100%");
      (key == "loss" ? spec.loss : spec.drop) = *f;
    } else if (key == "rate") {
      auto bps = Number(value, {{"bit", 1}, {"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}}, true);
      if (!bps || (*bps > 0 && *bps < 1)) {
        return bad("a rate such as 100mbit, 10mbit or 500kbit, at least 1bit");
      }
      spec.rate_bps = *bps;
    } else if (key == "cut") {
      if (value != "true" && value != "false") return bad("true or false");
      spec.cut = value == "true";
    } else {
      return Status::InvalidArgument("link '" + std::string(text) + "': unknown key '" +
                                     std::string(key) +
                                     "' (known: delay, jitter, dist, loss, drop, rate, cut)");
    }
  }
  return spec;
}

std::string LinkSpec::ToString() const {
  std::string s = "delay=" + FormatDuration(delay);
  if (jitter > Duration(0)) {
    s += ",jitter=" + FormatDuration(jitter);
    s += distribution == Jitter::kNormal ? ",dist=normal" : ",dist=uniform";
  }
  char buf[48];
  if (loss > 0) {
    std::snprintf(buf, sizeof buf, ",loss=%.17g", loss);
    s += buf;
  }
  if (drop > 0) {
    std::snprintf(buf, sizeof buf, ",drop=%.17g", drop);
    s += buf;
  }
  if (rate_bps > 0) {
    // The largest unit that keeps the number whole, as people write rates.
    const char* unit = "bit";  // %.17g: exact, if not pretty
    double value = rate_bps;
    for (auto [name, factor] : {std::pair{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}}) {
      if (std::fmod(rate_bps, factor) == 0) {
        unit = name;
        value = rate_bps / factor;
        break;
      }
    }
    std::snprintf(buf, sizeof buf, ",rate=%.17g%s", value, unit);
    s += buf;
  }
  if (cut) s += ",cut=true";
  return s;
}

Duration RetransmissionTimeout(const LinkSpec& spec) {
  return 2 * spec.delay + std::max(kMinRetransmissionTimeout, 4 * spec.jitter);
}

Duration DrawAround(Duration base, Duration jitter, LinkSpec::Jitter distribution,
                    core::StreamRng& rng) {
  if (jitter <= Duration(0)) return base;
  double j = static_cast<double>(jitter.count());
  double draw = distribution == LinkSpec::Jitter::kUniform
                    ? std::uniform_real_distribution<double>(-j, j)(rng)
                    : std::normal_distribution<double>(0, j)(rng);
  return std::max(Duration(0), base + Duration(static_cast<Duration::rep>(std::llround(draw))));
}

std::optional<Duration> LinkModel::Recovery(size_t bytes) {
  std::uniform_real_distribution<double> uniform(0, 1);
  const Duration rto = RetransmissionTimeout(spec_);
  const size_t segments = std::max<size_t>(1, (bytes + kSegmentBytes - 1) / kSegmentBytes);
  Duration longest{0};
  for (size_t i = 0; i < segments; ++i) {
    if (uniform(rng_) >= spec_.loss) continue;
    // Three segments after it bring three duplicate acknowledgements a round trip later: a fast
    // retransmit, with the timer restarted at the same timeout. Else the timer fires, doubled
    // for the next time.
    bool fast = segments - 1 - i >= 3;
    Duration recovered = fast ? 2 * spec_.delay : rto;
    Duration next = fast ? rto : std::min(2 * rto, kMaxRetransmissionTimeout);
    for (int again = 0; uniform(rng_) < spec_.loss; ++again) {
      if (again == kMaxRetransmissions) return std::nullopt;
      recovered += next;
      next = std::min(2 * next, kMaxRetransmissionTimeout);
    }
    longest = std::max(longest, recovered);
  }
  return longest;
}

std::optional<core::TimePoint> LinkModel::Arrival(core::TimePoint now, size_t bytes) {
  if (spec_.cut) return std::nullopt;
  std::uniform_real_distribution<double> uniform(0, 1);
  if (spec_.drop > 0 && uniform(rng_) < spec_.drop) return std::nullopt;
  Duration recovery{0};
  if (spec_.loss > 0) {
    auto r = Recovery(bytes);
    if (!r) return std::nullopt;
    recovery = *r;
  }
  core::TimePoint sent = now;
  if (spec_.rate_bps > 0) {
    // At most kMaxSerializationS, so that no message and rate overflow the nanoseconds.
    double seconds = std::min(static_cast<double>(bytes) * 8 / spec_.rate_bps, kMaxSerializationS);
    auto serialization =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
    sent = std::max(now, free_at_) + serialization;
    free_at_ = sent;
  }
  Duration delay = DrawAround(spec_.delay, spec_.jitter, spec_.distribution, rng_);
  last_arrival_ = std::max(sent + delay + recovery, last_arrival_);
  return last_arrival_;
}

}  // namespace enoki::net
