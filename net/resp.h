// RESP, the Redis serialization protocol (RESP2 and RESP3), as a server speaks it: commands parsed
// from what a client sent, replies written into an output buffer. Pure code (no sockets); the
// node's Redis front end (adapters/resp_server.h) drives it. docs/redis.md says what the front end
// serves.
//
// A command arrives as an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), as every client
// library sends it, or as an inline command (`GET k\r\n`: words separated by spaces or tabs,
// without quoting), as typed into a terminal. Errors are worded as Redis words them ("Protocol
// error: ..."), after which a server closes the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace enoki::net::resp {

struct ParseLimits {
  size_t max_bulk_bytes = 512 << 20;   // one argument
  size_t max_args = 1 << 20;           // arguments of one command
  size_t max_inline_bytes = 64 << 10;  // an inline command's line
};

enum class Parsed {
  kCommand,     // one command: `args` (none for an empty line or `*0`), `used` bytes taken
  kIncomplete,  // more bytes are needed; nothing taken
  kError,       // a protocol error: `error` says what; the connection is to be closed
};

// Parses the command at the start of `input`. On kCommand, `args` views `input` (valid while it
// is) and `used` is how many bytes the command took.
Parsed ParseCommand(std::string_view input, const ParseLimits& limits,
                    std::vector<std::string_view>& args, size_t& used, std::string& error);

// Appends replies to `out` in protocol version `protocol` (2 or 3): what differs between the two
// (nulls, maps) is written as each version has it.
class Writer {
 public:
  Writer(std::string& out, int protocol) : out_(out), protocol_(protocol) {}

  void Simple(std::string_view text);  // +text (line breaks in it become spaces)
  // -CODE message: `error` starts with its code in capitals ("ERR ...", "NOPERM ..."); line
  // breaks become spaces.
  void Error(std::string_view error);
  void Integer(int64_t n);
  void Bulk(std::string_view bytes);
  void Null();           // RESP2's null bulk string, RESP3's null
  void Array(size_t n);  // then n replies
  void Map(size_t n);    // then n key-value pairs (RESP2: an array of 2n replies)

 private:
  void Line(char type, std::string_view text);
  std::string& out_;
  int protocol_;
};

}  // namespace enoki::net::resp
