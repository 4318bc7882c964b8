// RESP commands and replies.
#include "net/resp.h"

#include <charconv>

namespace enoki::net::resp {

namespace {

// The line at `pos` (up to "\r\n"): its text and where the next one starts; npos when the line
// is not complete within `max` bytes (then `too_long` tells whether it never will be).
size_t LineEnd(std::string_view input, size_t pos, size_t max, bool& too_long) {
  size_t end = input.find("\r\n", pos);
  too_long = end == std::string_view::npos ? input.size() - pos > max : end - pos > max;
  return too_long ? std::string_view::npos : end;
}

bool ParseInt(std::string_view text, int64_t& n) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  return ec == std::errc() && end == text.data() + text.size();
}

Parsed Fail(std::string& error, std::string why) {
  error = "Protocol error: " + std::move(why);
  return Parsed::kError;
}

Parsed ParseInline(std::string_view input, const ParseLimits& limits,
                   std::vector<std::string_view>& args, size_t& used, std::string& error) {
  size_t nl = input.find('\n');
  if (nl == std::string_view::npos) {
    if (input.size() > limits.max_inline_bytes) return Fail(error, "too big inline request");
    return Parsed::kIncomplete;
  }
  if (nl > limits.max_inline_bytes) return Fail(error, "too big inline request");
  std::string_view line = input.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  for (size_t i = 0; i < line.size();) {
    if (line[i] == ' ' || line[i] == '\t') {
      ++i;
      continue;
    }
    size_t j = line.find_first_of(" \t", i);
    if (j == std::string_view::npos) j = line.size();
    if (args.size() == limits.max_args) return Fail(error, "too many arguments");
    args.push_back(line.substr(i, j - i));
    i = j;
  }
  used = nl + 1;
  return Parsed::kCommand;
}

}  // namespace

Parsed ParseCommand(std::string_view input, const ParseLimits& limits,
                    std::vector<std::string_view>& args, size_t& used, std::string& error) {
  args.clear();
  if (input.empty()) return Parsed::kIncomplete;
  if (input[0] != '*') return ParseInline(input, limits, args, used, error);
  constexpr size_t kMaxHeader = 24;  // "*" or "$", a 64-bit number
  bool too_long = false;
  size_t end = LineEnd(input, 1, kMaxHeader, too_long);
  if (too_long) return Fail(error, "invalid multibulk length");
  if (end == std::string_view::npos) return Parsed::kIncomplete;
  int64_t n = 0;
  if (!ParseInt(input.substr(1, end - 1), n) || n > static_cast<int64_t>(limits.max_args)) {
    return Fail(error, "invalid multibulk length");
  }
  size_t pos = end + 2;
  for (int64_t i = 0; i < n; ++i) {
    if (pos >= input.size()) return Parsed::kIncomplete;
    if (input[pos] != '$') {
      return Fail(error, std::string("expected '$', got '") + input[pos] + "'");
    }
    end = LineEnd(input, pos + 1, kMaxHeader, too_long);
    if (too_long) return Fail(error, "invalid bulk length");
    if (end == std::string_view::npos) return Parsed::kIncomplete;
    int64_t len = 0;
    if (!ParseInt(input.substr(pos + 1, end - pos - 1), len) || len < 0 ||
        static_cast<uint64_t>(len) > limits.max_bulk_bytes) {
      return Fail(error, "invalid bulk length");
    }
    pos = end + 2;
    size_t size = static_cast<size_t>(len);
    if (input.size() - pos < size + 2) return Parsed::kIncomplete;
    if (input[pos + size] != '\r' || input[pos + size + 1] != '\n') {
      return Fail(error, "a bulk string is not followed by CRLF");
    }
    args.push_back(input.substr(pos, size));
    pos += size + 2;
  }
  used = pos;
  return Parsed::kCommand;
}

void Writer::Line(char type, std::string_view text) {
  out_ += type;
  size_t start = out_.size();
  out_ += text;
  for (size_t i = start; i < out_.size(); ++i) {
    if (out_[i] == '\r' || out_[i] == '\n') out_[i] = ' ';
  }
  out_ += "\r\n";
}

void Writer::Simple(std::string_view text) { Line('+', text); }

void Writer::Error(std::string_view error) { Line('-', error); }

void Writer::Integer(int64_t n) {
  out_ += ':';
  out_ += std::to_string(n);
  out_ += "\r\n";
}

void Writer::Bulk(std::string_view bytes) {
  out_ += '$';
  out_ += std::to_string(bytes.size());
  out_ += "\r\n";
  out_ += bytes;
  out_ += "\r\n";
}

void Writer::Null() { out_ += protocol_ >= 3 ? "_\r\n" : "$-1\r\n"; }

void Writer::Array(size_t n) {
  out_ += '*';
  out_ += std::to_string(n);
  out_ += "\r\n";
}

void Writer::Map(size_t n) {
  out_ += protocol_ >= 3 ? '%' : '*';
  out_ += std::to_string(protocol_ >= 3 ? n : 2 * n);
  out_ += "\r\n";
}

}  // namespace enoki::net::resp
