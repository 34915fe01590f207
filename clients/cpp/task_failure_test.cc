#include "clients/cpp/task_failure.h"

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

TEST(TaskFailureTest, DefaultCodeIsLowercaseAbslName) {
  v1::TaskError e = TaskErrorFromStatus(absl::NotFoundError("no such file"));
  EXPECT_EQ(e.code(), "not_found");
  EXPECT_EQ(e.message(), "no such file");
  EXPECT_TRUE(e.retryable());
  EXPECT_EQ(TaskErrorFromStatus(absl::DeadlineExceededError("x")).code(),
            "deadline_exceeded");
}

TEST(TaskFailureTest, InvalidArgumentAndFailedPreconditionAreFinal) {
  EXPECT_FALSE(TaskErrorFromStatus(absl::InvalidArgumentError("x")).retryable());
  EXPECT_FALSE(
      TaskErrorFromStatus(absl::FailedPreconditionError("x")).retryable());
  EXPECT_TRUE(TaskErrorFromStatus(absl::UnavailableError("x")).retryable());
  EXPECT_TRUE(TaskErrorFromStatus(absl::InternalError("x")).retryable());
}

TEST(TaskFailureTest, CustomFailureRoundTrips) {
  absl::Status s = TaskFailure("bad_image", "not a PNG", false, "offset 12");
  EXPECT_FALSE(s.ok());
  v1::TaskError e = TaskErrorFromStatus(s);
  EXPECT_EQ(e.code(), "bad_image");
  EXPECT_EQ(e.message(), "not a PNG");
  EXPECT_EQ(e.details(), "offset 12");
  EXPECT_FALSE(e.retryable());
}

TEST(TaskFailureTest, CustomFailureSurvivesStatusOr) {
  absl::StatusOr<std::string> r = TaskFailure("quota", "over quota");
  v1::TaskError e = TaskErrorFromStatus(r.status());
  EXPECT_EQ(e.code(), "quota");
  EXPECT_TRUE(e.retryable());
}

TEST(TaskFailureTest, EmptyCodeBecomesUnknown) {
  EXPECT_EQ(TaskErrorFromStatus(TaskFailure("", "m")).code(), "unknown");
}

TEST(TaskFailureTest, CorruptPayloadFallsBackToCanonicalMapping) {
  absl::Status s = absl::AbortedError("m");
  s.SetPayload(kTaskFailurePayloadUrl, absl::Cord("\xff\xff\xff"));
  v1::TaskError e = TaskErrorFromStatus(s);
  EXPECT_EQ(e.code(), "aborted");
  EXPECT_EQ(e.message(), "m");
}

}  // namespace
}  // namespace taskd
