// Status and Result: codes, messages, and the error macro.
#include "core/status.h"

#include <gtest/gtest.h>

namespace enoki::core {
namespace {

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, CarriesCodeAndMessage) {
  Status s = Status::NotFound("key 'a' not found");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.ToString(), "not found: key 'a' not found");
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  Result<int> bad = Status::TooLarge("value is 2 bytes");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kTooLarge);
}

Status FailsThenNeverReached(bool* reached) {
  ENOKI_RETURN_IF_ERROR(Status::Unavailable("down"));
  *reached = true;
  return Status::Ok();
}

TEST(StatusTest, ReturnIfErrorReturnsEarly) {
  bool reached = false;
  Status s = FailsThenNeverReached(&reached);
  EXPECT_EQ(s.code(), Code::kUnavailable);
  EXPECT_FALSE(reached);
}

}  // namespace
}  // namespace enoki::core
