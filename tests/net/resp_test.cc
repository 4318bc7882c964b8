// RESP commands parsed as a Redis server parses them, and replies written in RESP2 and RESP3.
#include "net/resp.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace enoki::net::resp {
namespace {

struct Outcome {
  Parsed parsed;
  std::vector<std::string> args;
  size_t used = 0;
  std::string error;
};

Outcome Parse(std::string_view input, ParseLimits limits = {}) {
  std::vector<std::string_view> args;
  Outcome o;
  o.parsed = ParseCommand(input, limits, args, o.used, o.error);
  for (auto a : args) o.args.emplace_back(a);
  return o;
}

TEST(RespParseTest, AnArrayOfBulkStringsIsOneCommandWithBinaryArguments) {
  std::string input = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n*1\r\n$4\r\nPING\r\n";
  Outcome o = Parse(input);
  ASSERT_EQ(o.parsed, Parsed::kCommand) << o.error;
  EXPECT_EQ(o.args, (std::vector<std::string>{"SET", "k", "a\r\nb"}));
  EXPECT_EQ(o.used, input.find("*1"));
  Outcome next = Parse(std::string_view(input).substr(o.used));
  ASSERT_EQ(next.parsed, Parsed::kCommand);
  EXPECT_EQ(next.args, (std::vector<std::string>{"PING"}));
  EXPECT_EQ(o.used + next.used, input.size());
  // An empty value, and an empty command.
  EXPECT_EQ(Parse("*2\r\n$3\r\nGET\r\n$0\r\n\r\n").args, (std::vector<std::string>{"GET", ""}));
  Outcome empty = Parse("*0\r\n");
  EXPECT_EQ(empty.parsed, Parsed::kCommand);
  EXPECT_TRUE(empty.args.empty());
  EXPECT_EQ(empty.used, 4u);
}

TEST(RespParseTest, EveryCutOfACommandIsIncompleteAndTakesNothing) {
  std::string input = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
  for (size_t cut = 0; cut < input.size(); ++cut) {
    Outcome o = Parse(std::string_view(input).substr(0, cut));
    EXPECT_EQ(o.parsed, Parsed::kIncomplete) << "cut at " << cut;
    EXPECT_EQ(o.used, 0u);
  }
  EXPECT_EQ(Parse(input).parsed, Parsed::kCommand);
  for (size_t cut = 0; cut < 9; ++cut) {
    EXPECT_EQ(Parse(std::string_view("GET key\r\n").substr(0, cut)).parsed, Parsed::kIncomplete);
  }
}

TEST(RespParseTest, InlineCommandsAreWordsOnALine) {
  Outcome o = Parse("  set\tk  v \r\nGET k\n");
  ASSERT_EQ(o.parsed, Parsed::kCommand);
  EXPECT_EQ(o.args, (std::vector<std::string>{"set", "k", "v"}));
  EXPECT_EQ(o.used, 13u);
  Outcome lf = Parse("GET k\n");
  EXPECT_EQ(lf.args, (std::vector<std::string>{"GET", "k"}));
  EXPECT_EQ(lf.used, 6u);
  Outcome blank = Parse("\r\n");
  EXPECT_EQ(blank.parsed, Parsed::kCommand);
  EXPECT_TRUE(blank.args.empty());
}

TEST(RespParseTest, MalformedInputIsAProtocolErrorInRedisWords) {
  EXPECT_EQ(Parse("*x\r\n").error, "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("*1\r\n:3\r\n").error, "Protocol error: expected '$', got ':'");
  EXPECT_EQ(Parse("*1\r\n$-2\r\n").error, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*1\r\n$3\r\nabcde\r\n").error,
            "Protocol error: a bulk string is not followed by CRLF");
  // A header that never ends is refused before it fills memory.
  EXPECT_EQ(Parse("*" + std::string(100, '1')).error, "Protocol error: invalid multibulk length");
  ParseLimits small;
  small.max_bulk_bytes = 10;
  small.max_args = 2;
  small.max_inline_bytes = 8;
  EXPECT_EQ(Parse("*1\r\n$11\r\n", small).error, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*3\r\n", small).error, "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("GET abcdefgh", small).error, "Protocol error: too big inline request");
  EXPECT_EQ(Parse("a b c\r\n", small).error, "Protocol error: too many arguments");
  EXPECT_EQ(Parse("*1\r\n$10\r\n", small).parsed, Parsed::kIncomplete);  // within the limit
}

TEST(RespWriteTest, RepliesInResp2AndResp3) {
  std::string two, three;
  for (auto [out, protocol] : {std::pair<std::string*, int>{&two, 2}, {&three, 3}}) {
    Writer w(*out, protocol);
    w.Simple("OK");
    w.Error("ERR two\r\nlines");
    w.Integer(-42);
    w.Bulk(std::string("a\0b", 3));
    w.Null();
    w.Array(1);
    w.Map(1);
  }
  const std::string head = "+OK\r\n-ERR two  lines\r\n:-42\r\n$3\r\n" + std::string("a\0b", 3);
  EXPECT_EQ(two, head + "\r\n$-1\r\n*1\r\n*2\r\n");
  EXPECT_EQ(three, head + "\r\n_\r\n*1\r\n%1\r\n");
}

}  // namespace
}  // namespace enoki::net::resp
