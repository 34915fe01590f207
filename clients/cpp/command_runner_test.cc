#include "clients/cpp/command_runner.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

using StopReason = CommandResult::StopReason;

CommandResult RunOk(const CommandOptions& options,
                  const CommandInterrupter* interrupter = nullptr) {
  absl::StatusOr<CommandResult> r = RunCommand(options, interrupter);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : CommandResult();
}

CommandOptions Command(std::string command) {
  CommandOptions options;
  options.command = std::move(command);
  return options;
}

bool GroupGone(pid_t pgid) { return kill(-pgid, 0) == -1 && errno == ESRCH; }

// A pipe whose write end the command inherits as fd `fd()`; the test reads
// lines the command writes to it, with a deadline.
class ReportPipe {
 public:
  ReportPipe() { EXPECT_EQ(pipe(fds_), 0); }  // no O_CLOEXEC: inherited
  ~ReportPipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int fd() const { return fds_[1]; }
  // Reads one line, waiting at most 30 s.
  std::string ReadLine() {
    std::string line;
    char c;
    while (true) {
      pollfd p = {fds_[0], POLLIN, 0};
      if (poll(&p, 1, 30000) != 1) return line;
      if (read(fds_[0], &c, 1) != 1 || c == '\n') return line;
      line += c;
    }
  }

 private:
  int fds_[2] = {-1, -1};
};

class CommandRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(BecomeChildSubreaper().ok()); }
};

TEST_F(CommandRunnerTest, CapturesStdout) {
  CommandResult r = RunOk(Command("echo hi"));
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "hi\n");
  EXPECT_EQ(r.stop_reason, StopReason::kNone);
  EXPECT_TRUE(GroupGone(r.pgid));
}

TEST_F(CommandRunnerTest, PassesStdinThrough) {
  CommandOptions options = Command("cat");
  options.input = std::string(1 << 20, 'x') + "end";  // beyond a pipe buffer
  CommandResult r = RunOk(options);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, options.input);
}

TEST_F(CommandRunnerTest, CommandIgnoringStdinDoesNotBlock) {
  CommandOptions options = Command("exit 3");
  options.input = std::string(1 << 20, 'x');
  CommandResult r = RunOk(options);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 3);
}

TEST_F(CommandRunnerTest, ExitCodeAndStderrTail) {
  CommandOptions options = Command("echo out; echo oops >&2; exit 7");
  options.stderr_tail_bytes = 3;
  CommandResult r = RunOk(options);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.output, "out\n");
  EXPECT_EQ(r.stderr_tail, "ps\n");
}

TEST_F(CommandRunnerTest, KilledBySignal) {
  CommandResult r = RunOk(Command("kill -USR1 $$"));
  EXPECT_FALSE(r.exited);
  EXPECT_EQ(r.term_signal, SIGUSR1);
}

TEST_F(CommandRunnerTest, EnvironmentIsAdded) {
  CommandOptions options = Command("printf '%s %s' \"$TASKD_TASK_ID\" \"$A\"");
  options.env = {{"TASKD_TASK_ID", "t-1"}, {"A", "b c"}};
  EXPECT_EQ(RunOk(options).output, "t-1 b c");
}

TEST_F(CommandRunnerTest, OutputLimitKillsCommand) {
  CommandOptions options = Command("yes");
  options.max_output_bytes = 100000;
  CommandResult r = RunOk(options);
  EXPECT_EQ(r.stop_reason, StopReason::kOutputLimit);
  EXPECT_TRUE(r.output.empty());
  EXPECT_TRUE(GroupGone(r.pgid));
}

TEST_F(CommandRunnerTest, DeadlineStopsCommand) {
  CommandOptions options = Command("sleep 1000");
  options.deadline = absl::Now() + absl::Milliseconds(50);
  CommandResult r = RunOk(options);
  EXPECT_EQ(r.stop_reason, StopReason::kDeadline);
  EXPECT_EQ(r.term_signal, SIGTERM);
}

TEST_F(CommandRunnerTest, CancelKillsWholeProcessGroup) {
  auto interrupter = CommandInterrupter::Create();
  ASSERT_TRUE(interrupter.ok()) << interrupter.status();
  ReportPipe report;
  CommandOptions options = Command(absl::StrCat(
      "sleep 1000 & echo $! >&", report.fd(), "; sleep 1000; wait"));
  absl::StatusOr<CommandResult> result;
  std::thread runner(
      [&] { result = RunCommand(options, interrupter->get()); });
  int background_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(report.ReadLine(), &background_pid));
  ASSERT_EQ(kill(background_pid, 0), 0);  // the grandchild is running
  (*interrupter)->Trigger();
  runner.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stop_reason, StopReason::kCancelled);
  EXPECT_TRUE(GroupGone(result->pgid));
  EXPECT_EQ(kill(background_pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(CommandRunnerTest, SigkillAfterGraceWhenTermIgnored) {
  auto interrupter = CommandInterrupter::Create();
  ASSERT_TRUE(interrupter.ok()) << interrupter.status();
  ReportPipe report;
  CommandOptions options = Command(absl::StrCat(
      "trap '' TERM; echo ready >&", report.fd(), "; sleep 1000"));
  options.grace = absl::Milliseconds(100);
  absl::StatusOr<CommandResult> result;
  std::thread runner(
      [&] { result = RunCommand(options, interrupter->get()); });
  ASSERT_EQ(report.ReadLine(), "ready");
  const absl::Time cancelled_at = absl::Now();
  (*interrupter)->Trigger();
  runner.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stop_reason, StopReason::kCancelled);
  EXPECT_EQ(result->term_signal, SIGKILL);
  EXPECT_GE(absl::Now() - cancelled_at, absl::Milliseconds(100));
  EXPECT_TRUE(GroupGone(result->pgid));
}

TEST_F(CommandRunnerTest, AlreadyTriggeredInterrupterStopsAtOnce) {
  auto interrupter = CommandInterrupter::Create();
  ASSERT_TRUE(interrupter.ok());
  (*interrupter)->Trigger();
  CommandResult r = RunOk(Command("sleep 1000"), interrupter->get());
  EXPECT_EQ(r.stop_reason, StopReason::kCancelled);
}

TEST_F(CommandRunnerTest, RejectsBadOptions) {
  EXPECT_EQ(RunCommand(Command(""), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  CommandOptions options = Command("true");
  options.env = {{"A=B", "c"}};
  EXPECT_EQ(RunCommand(options, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace taskd
