// Request-body templates: parsing and expansion.
#include "testbed/body_template.h"

#include <algorithm>
#include <charconv>

namespace enoki::testbed {

using core::Status;

core::Result<std::vector<BodyPart>> ParseBody(const std::string& t) {
  std::vector<BodyPart> parts;
  auto text = [&](char c) {
    if (parts.empty() || parts.back().kind != BodyPart::Kind::kText) parts.push_back({});
    parts.back().text += c;
  };
  for (size_t i = 0; i < t.size(); ++i) {
    if ((t[i] == '{' || t[i] == '}') && i + 1 < t.size() && t[i + 1] == t[i]) {
      text(t[i++]);
      continue;
    }
    if (t[i] != '{') {
      text(t[i]);
      continue;
    }
    auto end = t.find('}', i);
    if (end == std::string::npos) return Status::InvalidArgument("a '{' without its '}'");
    std::string field = t.substr(i + 1, end - i - 1);
    BodyPart p;
    long long a = 0, b = 0;
    char tail = 0;
    bool ok = true;
    if (field == "caller") {
      p.kind = BodyPart::Kind::kCaller;
    } else if (field == "seq") {
      p.kind = BodyPart::Kind::kSeq;
    } else if (std::sscanf(field.c_str(), "int:%lld:%lld%c", &a, &b, &tail) == 2 && a <= b) {
      p = {BodyPart::Kind::kInt, "", a, b};
    } else if (std::sscanf(field.c_str(), "random:%lld%c", &a, &tail) == 1 && a >= 0 &&
               a <= (64 << 20)) {
      p = {BodyPart::Kind::kRandom, "", a, 0};
    } else {
      ok = false;
    }
    if (!ok) {
      return Status::InvalidArgument("'{" + field +
                                     "}' is not one of {caller}, {seq}, {int:A:B} (A <= B), "
                                     "{random:N}");
    }
    parts.push_back(p);
    i = end;
  }
  return parts;
}

uint64_t MaxBodyBytes(const std::vector<BodyPart>& parts, int callers, int64_t max_seq) {
  auto digits = [](int64_t v) { return std::to_string(v).size(); };
  uint64_t bytes = 0;
  for (const auto& p : parts) {
    switch (p.kind) {
      case BodyPart::Kind::kText:
        bytes += p.text.size();
        break;
      case BodyPart::Kind::kCaller:
        bytes += digits(callers - 1);
        break;
      case BodyPart::Kind::kSeq:
        bytes += digits(max_seq);
        break;
      case BodyPart::Kind::kInt:  // the widest number of a range is one of its ends
        bytes += std::max(digits(p.a), digits(p.b));
        break;
      case BodyPart::Kind::kRandom:
        bytes += static_cast<uint64_t>(p.a);
        break;
    }
  }
  return bytes;
}

std::string ExpandBody(const std::vector<BodyPart>& parts, int caller, int64_t seq,
                       core::StreamRng& rng) {
  static constexpr char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string out;
  for (const auto& p : parts) {
    switch (p.kind) {
      case BodyPart::Kind::kText:
        out += p.text;
        break;
      case BodyPart::Kind::kCaller:
        out += std::to_string(caller);
        break;
      case BodyPart::Kind::kSeq:
        out += std::to_string(seq);
        break;
      case BodyPart::Kind::kInt:
        out += std::to_string(std::uniform_int_distribution<int64_t>(p.a, p.b)(rng));
        break;
      case BodyPart::Kind::kRandom: {
        std::uniform_int_distribution<size_t> pick(0, sizeof kAlphabet - 2);
        for (int64_t i = 0; i < p.a; ++i) out += kAlphabet[pick(rng)];
        break;
      }
    }
  }
  return out;
}

}  // namespace enoki::testbed
