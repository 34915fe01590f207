// The taskd-worker handler that runs a shell command per task, and the
// mapping of how a command ended to the task's outcome:
//   exit 0            -> complete, result = stdout
//   exit N            -> fail "exit_N", message = stderr tail, retryable
//   killed by signal S-> fail "signal_S", retryable
//   cancelled         -> fail "cancelled" (the Worker reports a CancelNotice
//                        as "cancelled" and a stopping worker as
//                        "worker_stopped")
//   local deadline    -> fail "timeout", retryable
//   too much stdout   -> fail "output_too_large", not retryable
// The command sees TASKD_TASK_ID, TASKD_ATTEMPT and TASKD_TASK_TYPE.
//
// Thread-safety: the handler may run concurrently on many pool threads.
#ifndef TASKD_CLIENTS_CPP_SHELL_HANDLER_H_
#define TASKD_CLIENTS_CPP_SHELL_HANDLER_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cpp/command_runner.h"
#include "clients/cpp/worker.h"

namespace taskd {

struct ShellHandlerOptions {
  std::string command;  // for /bin/sh -c
  absl::Duration grace = absl::Seconds(5);  // SIGTERM -> SIGKILL
  size_t max_output_bytes = (4 << 20) - (64 << 10);
};

// A handler running `options.command` with the payload on stdin.
Worker::Handler MakeShellHandler(ShellHandlerOptions options);

// The task outcome for a finished command (see the file comment).
absl::StatusOr<std::string> CommandOutcome(const CommandResult& result);

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_SHELL_HANDLER_H_
