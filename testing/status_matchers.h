// Small gMock matchers for absl::Status and absl::StatusOr, which Debian's
// abseil does not ship. Use them to assert the exact code and message:
//
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("ring")));
//   ASSERT_OK(s);  ASSERT_OK_AND_ASSIGN(auto v, MakeThing());
#ifndef LPC_TESTING_STATUS_MATCHERS_H_
#define LPC_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lpc::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::lpc::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()),
                                       result_listener);
}

MATCHER_P(StatusIs, code, "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::lpc::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::lpc::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.ok();
}

}  // namespace lpc::testing

#define LPC_STATUS_CONCAT_INNER_(a, b) a##b
#define LPC_STATUS_CONCAT_(a, b) LPC_STATUS_CONCAT_INNER_(a, b)

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::lpc::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::lpc::testing::IsOk())

#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                   \
  auto LPC_STATUS_CONCAT_(status_or_, __LINE__) = (expr);                  \
  ASSERT_TRUE(LPC_STATUS_CONCAT_(status_or_, __LINE__).ok())               \
      << LPC_STATUS_CONCAT_(status_or_, __LINE__).status();                \
  lhs = std::move(*LPC_STATUS_CONCAT_(status_or_, __LINE__))

#endif  // LPC_TESTING_STATUS_MATCHERS_H_
