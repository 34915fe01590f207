#include "clients/cpp/shell_handler.h"

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/task_failure.h"

namespace taskd {

absl::StatusOr<std::string> CommandOutcome(const CommandResult& result) {
  const std::string tail(absl::StripAsciiWhitespace(result.stderr_tail));
  switch (result.stop_reason) {
    case CommandResult::StopReason::kCancelled:
      return TaskFailure("cancelled", "command killed: task cancelled", false,
                         tail);
    case CommandResult::StopReason::kDeadline:
      return TaskFailure("timeout", "command killed: deadline passed", true,
                         tail);
    case CommandResult::StopReason::kOutputLimit:
      return TaskFailure("output_too_large",
                         "command killed: stdout exceeded the limit", false,
                         tail);
    case CommandResult::StopReason::kNone:
      break;
  }
  if (result.exited && result.exit_code == 0) return result.output;
  if (result.exited) {
    return TaskFailure(
        absl::StrCat("exit_", result.exit_code),
        tail.empty() ? absl::StrCat("exit status ", result.exit_code) : tail,
        true);
  }
  return TaskFailure(
      absl::StrCat("signal_", result.term_signal),
      tail.empty() ? absl::StrCat("killed by signal ", result.term_signal)
                   : tail,
      true);
}

Worker::Handler MakeShellHandler(ShellHandlerOptions options) {
  return [options = std::move(options)](
             TaskContext& ctx) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::unique_ptr<CommandInterrupter>> interrupter =
        CommandInterrupter::Create();
    if (!interrupter.ok()) {
      return TaskFailure("spawn_failed", interrupter.status().ToString());
    }
    // Declared after the interrupter, so unregistered before it is freed.
    TaskContext::CancelCallback on_cancel =
        ctx.OnCancel([i = interrupter->get()] { i->Trigger(); });
    CommandOptions command;
    command.command = options.command;
    command.input = ctx.payload();
    command.env = {{"TASKD_TASK_ID", ctx.id()},
                   {"TASKD_ATTEMPT", absl::StrCat(ctx.attempt())},
                   {"TASKD_TASK_TYPE", ctx.type()}};
    command.grace = options.grace;
    command.max_output_bytes = options.max_output_bytes;
    command.deadline = ctx.deadline();
    absl::StatusOr<CommandResult> result =
        RunCommand(command, interrupter->get());
    if (!result.ok()) {
      return TaskFailure("spawn_failed", result.status().ToString());
    }
    return CommandOutcome(*result);
  };
}

}  // namespace taskd
