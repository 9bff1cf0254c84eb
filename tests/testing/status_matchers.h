// GoogleTest helpers for absl::Status and absl::StatusOr, which Abseil
// 20220623 does not ship: ASSERT_OK, EXPECT_OK, ASSERT_OK_AND_ASSIGN, and the
// matchers IsOk(), StatusIs(code) and StatusIs(code, message_matcher).

#ifndef PSTORE_TESTS_TESTING_STATUS_MATCHERS_H_
#define PSTORE_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pstore::testing {

inline const absl::Status& GetStatus(const absl::Status& status) {
  return status;
}
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status;
  return status.ok();
}

MATCHER_P(StatusIs, code, "has status code " + absl::StatusCodeToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + absl::StatusCodeToString(code) +
               " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status;
  return status.code() == code &&
         ::testing::Matches(message_matcher)(std::string(status.message()));
}

}  // namespace pstore::testing

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::pstore::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::pstore::testing::IsOk())

#define PSTORE_TEST_CONCAT_INNER_(a, b) a##b
#define PSTORE_TEST_CONCAT_(a, b) PSTORE_TEST_CONCAT_INNER_(a, b)

// Asserts that `rexpr` (an absl::StatusOr<T>) is OK and moves its value into
// `lhs`, which may be a declaration.
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  PSTORE_ASSERT_OK_AND_ASSIGN_IMPL_(     \
      PSTORE_TEST_CONCAT_(pstore_statusor_, __LINE__), lhs, rexpr)

#define PSTORE_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                      \
  ASSERT_TRUE(statusor.ok()) << statusor.status();              \
  lhs = std::move(statusor).value()

#endif  // PSTORE_TESTS_TESTING_STATUS_MATCHERS_H_
