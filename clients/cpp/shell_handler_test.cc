#include "clients/cpp/shell_handler.h"

#include <signal.h>

#include <thread>

#include "clients/cpp/task_failure.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

v1::Task MakeTask(const std::string& payload) {
  v1::Task task;
  task.set_id("t-7");
  task.set_attempt(2);
  task.mutable_spec()->set_type("shell");
  task.mutable_spec()->set_payload(payload);
  return task;
}

absl::StatusOr<std::string> RunHandler(const std::string& command,
                                       const std::string& payload) {
  TaskContext ctx(MakeTask(payload), 1, absl::InfiniteFuture(), nullptr);
  return MakeShellHandler({command})(ctx);
}

TEST(ShellHandlerTest, SuccessReturnsStdoutWithTaskEnvironment) {
  absl::StatusOr<std::string> r = RunHandler(
      "printf '%s|%s|%s|' \"$TASKD_TASK_ID\" \"$TASKD_ATTEMPT\" "
      "\"$TASKD_TASK_TYPE\"; cat",
      "in");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "t-7|2|shell|in");
}

TEST(ShellHandlerTest, NonZeroExitFails) {
  absl::StatusOr<std::string> r = RunHandler("echo 'disk full' >&2; exit 4", "");
  v1::TaskError e = TaskErrorFromStatus(r.status());
  EXPECT_EQ(e.code(), "exit_4");
  EXPECT_EQ(e.message(), "disk full");
  EXPECT_TRUE(e.retryable());
}

TEST(ShellHandlerTest, SignalFails) {
  v1::TaskError e =
      TaskErrorFromStatus(RunHandler("kill -TERM $$", "").status());
  EXPECT_EQ(e.code(), absl::StrCat("signal_", SIGTERM));
}

TEST(ShellHandlerTest, CancelKillsCommand) {
  TaskContext ctx(MakeTask(""), 1, absl::InfiniteFuture(), nullptr);
  absl::StatusOr<std::string> r;
  std::thread runner([&] { r = MakeShellHandler({"sleep 1000"})(ctx); });
  ctx.Cancel(TaskContext::CancelCause::kCancelNotice, "stop");
  runner.join();
  v1::TaskError e = TaskErrorFromStatus(r.status());
  EXPECT_EQ(e.code(), "cancelled");
  EXPECT_FALSE(e.retryable());
}

TEST(ShellHandlerTest, OutcomeMapping) {
  CommandResult result;
  result.stop_reason = CommandResult::StopReason::kOutputLimit;
  EXPECT_EQ(TaskErrorFromStatus(CommandOutcome(result).status()).code(),
            "output_too_large");
  result.stop_reason = CommandResult::StopReason::kDeadline;
  EXPECT_EQ(TaskErrorFromStatus(CommandOutcome(result).status()).code(),
            "timeout");
  result.stop_reason = CommandResult::StopReason::kNone;
  result.exited = true;
  result.exit_code = 2;
  v1::TaskError e = TaskErrorFromStatus(CommandOutcome(result).status());
  EXPECT_EQ(e.code(), "exit_2");
  EXPECT_EQ(e.message(), "exit status 2");
}

}  // namespace
}  // namespace taskd
