// LogRateLimit with given times: the window's quota, the count of lines
// left out, and the next window.
#include "transports/local/internal/log_rate_limit.h"

#include "gtest/gtest.h"

namespace lpc::local::internal {
namespace {

TEST(LogRateLimitTest, QuotaPerWindowThenCountsWhatWasLeftOut) {
  LogRateLimit limit(3, 1000);
  uint64_t left_out = 99;
  EXPECT_TRUE(limit.Admit(5000, &left_out));
  EXPECT_EQ(left_out, 0u);
  EXPECT_TRUE(limit.Admit(5001, &left_out));
  EXPECT_TRUE(limit.Admit(5999, &left_out));
  EXPECT_FALSE(limit.Admit(5999, &left_out));  // 4th in the window.
  EXPECT_FALSE(limit.Admit(5999, &left_out));
  // The next window starts 1000 ns after the first line.
  EXPECT_TRUE(limit.Admit(6000, &left_out));
  EXPECT_EQ(left_out, 2u);
  EXPECT_TRUE(limit.Admit(6001, &left_out));
  EXPECT_EQ(left_out, 0u);
}

TEST(LogRateLimitTest, QuietPeriodStartsAFreshWindow) {
  LogRateLimit limit(1, 1000);
  uint64_t left_out = 0;
  EXPECT_TRUE(limit.Admit(0, &left_out));
  EXPECT_FALSE(limit.Admit(10, &left_out));
  EXPECT_TRUE(limit.Admit(50000, &left_out));
  EXPECT_EQ(left_out, 1u);
  EXPECT_FALSE(limit.Admit(50999, &left_out));
  EXPECT_TRUE(limit.Admit(51000, &left_out));
  EXPECT_EQ(left_out, 1u);
}

}  // namespace
}  // namespace lpc::local::internal
