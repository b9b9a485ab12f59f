// Tests for the byte budgets' accounting and rules (budget.h).
#include "transports/local/internal/budget.h"

#include <utility>

#include "gtest/gtest.h"

namespace lpc::local::internal {
namespace {

TEST(BudgetTest, ChargesAreGivenBackOnceWhateverTheirPath) {
  Budget conn{100}, server{1000};
  {
    ByteCharge a(&conn, &server, 60);
    EXPECT_EQ(conn.used.load(), 60u);
    EXPECT_EQ(server.used.load(), 60u);
    ByteCharge b = std::move(a);  // Moved: still one charge.
    EXPECT_EQ(conn.used.load(), 60u);
    ByteCharge c(nullptr, &server, 5);
    EXPECT_EQ(server.used.load(), 65u);
    c = std::move(b);  // c's own 5 go back; b's 60 move in.
    EXPECT_EQ(server.used.load(), 60u);
    c.Release();
    c.Release();  // Twice is once.
    EXPECT_EQ(conn.used.load(), 0u);
  }
  EXPECT_EQ(server.used.load(), 0u);
}

TEST(BudgetTest, ReachedAndWouldExceed) {
  Budget none;  // 0 = no limit.
  none.used = 1u << 30;
  EXPECT_FALSE(none.Reached());
  EXPECT_FALSE(none.WouldExceed(1u << 30));
  Budget b{100};
  b.used = 99;
  EXPECT_FALSE(b.Reached());
  EXPECT_TRUE(b.WouldExceed(2));
  EXPECT_FALSE(b.WouldExceed(1));
  b.used = 100;
  EXPECT_TRUE(b.Reached());
}

TEST(BudgetTest, PastTheServerBudgetOnlyAnIdleConnectionReads) {
  Budget server{1000};
  Budget busy{500}, idle{500};
  busy.used = 10;
  EXPECT_TRUE(MayRead(busy, server));
  server.used = 1000;
  EXPECT_FALSE(MayRead(busy, server));
  EXPECT_TRUE(MayRead(idle, server));
  idle.used = 500;  // Its own budget always counts.
  server.used = 0;
  EXPECT_FALSE(MayRead(idle, server));
}

TEST(BudgetTest, SmallRequestsAreAlwaysAdmitted) {
  Budget server{1 << 20};
  server.used = 1 << 20;
  EXPECT_TRUE(AdmitRequest(server, kAlwaysAdmittedRequest));
  EXPECT_FALSE(AdmitRequest(server, kAlwaysAdmittedRequest + 1));
  server.used = 0;
  EXPECT_TRUE(AdmitRequest(server, 1 << 20));
  EXPECT_FALSE(AdmitRequest(server, (1 << 20) + 1));
}

}  // namespace
}  // namespace lpc::local::internal
