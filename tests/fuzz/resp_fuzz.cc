// Fuzzer of the Redis protocol parser (libFuzzer; docs/testing.md): the input is what a client
// sends to the node's Redis front end, parsed command after command as the front end parses it
// (net::resp::ParseCommand, with small limits so that they are reached), and each command's
// arguments written back as a reply in RESP2 and RESP3. Parsing must end in commands, a need for
// more bytes, or a protocol error, always within the input and always making progress; any
// sanitizer finding, assertion or hang is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/resp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  enoki::net::resp::ParseLimits limits;
  limits.max_bulk_bytes = 64;
  limits.max_args = 16;
  limits.max_inline_bytes = 128;
  std::vector<std::string_view> args;
  std::string error;
  std::string out;
  while (!input.empty()) {
    size_t used = 0;
    auto parsed = enoki::net::resp::ParseCommand(input, limits, args, used, error);
    if (parsed != enoki::net::resp::Parsed::kCommand) break;
    if (used == 0 || used > input.size() || args.size() > limits.max_args) std::abort();
    for (std::string_view a : args) {
      if (a.data() < input.data() || a.data() + a.size() > input.data() + used) std::abort();
    }
    for (int protocol : {2, 3}) {
      enoki::net::resp::Writer w(out, protocol);
      w.Array(args.size());
      for (std::string_view a : args) w.Bulk(a);
      w.Error(args.empty() ? "ERR empty" : args[0]);
      w.Simple(args.empty() ? "" : args.back());
    }
    out.clear();
    input.remove_prefix(used);
  }
  return 0;
}
