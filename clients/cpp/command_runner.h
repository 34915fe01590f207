// Runs a shell command for taskd-worker: `/bin/sh -c COMMAND` in its own
// process group, with bounded capture of its output, and cancellation that
// takes down the whole group (SIGTERM, then SIGKILL after a grace period).
//
//   auto interrupter = taskd::CommandInterrupter::Create();  // check ok()
//   taskd::CommandOptions options;
//   options.command = "gzip -c";
//   options.input = data;
//   absl::StatusOr<taskd::CommandResult> r =
//       taskd::RunCommand(options, interrupter->get());
//   // another thread: (*interrupter)->Trigger();  -> r->stop_reason == kCancelled
//
// When the shell exits, members of its process group still alive are killed
// (SIGKILL): a task leaves nothing running behind. Processes that moved to
// another process group are not tracked. Call BecomeChildSubreaper() once at
// start-up so orphaned group members are reaped by RunCommand itself (else
// init reaps them, some time after RunCommand returns).
//
// The child gets default signal dispositions and an empty signal mask. The
// calling thread's SIGPIPE is blocked while RunCommand writes the input.
//
// Thread-safety: RunCommand may run concurrently on many threads.
// CommandInterrupter::Trigger() is thread-safe and async-signal-safe.
#ifndef TASKD_CLIENTS_CPP_COMMAND_RUNNER_H_
#define TASKD_CLIENTS_CPP_COMMAND_RUNNER_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace taskd {

// A level-triggered "stop now" signal for RunCommand, backed by an eventfd.
class CommandInterrupter {
 public:
  static absl::StatusOr<std::unique_ptr<CommandInterrupter>> Create();
  ~CommandInterrupter();
  CommandInterrupter(const CommandInterrupter&) = delete;
  CommandInterrupter& operator=(const CommandInterrupter&) = delete;

  // Makes fd() readable, for good.
  void Trigger() const;
  int fd() const { return fd_; }

 private:
  explicit CommandInterrupter(int fd) : fd_(fd) {}
  const int fd_;
};

struct CommandOptions {
  // Passed to /bin/sh -c.
  std::string command;
  // Written to the command's stdin, which is then closed.
  std::string input;
  // Added to (or replacing in) the inherited environment.
  std::vector<std::pair<std::string, std::string>> env;
  // More stdout than this kills the command (stop_reason kOutputLimit).
  size_t max_output_bytes = (4 << 20) - (64 << 10);
  // The last this-many bytes of stderr are kept.
  size_t stderr_tail_bytes = 4096;
  // Time between SIGTERM and SIGKILL to the group.
  absl::Duration grace = absl::Seconds(5);
  // The command is stopped (kDeadline) when this passes.
  absl::Time deadline = absl::InfiniteFuture();
};

struct CommandResult {
  // Why RunCommand stopped the command, if it did.
  enum class StopReason { kNone, kCancelled, kDeadline, kOutputLimit };
  StopReason stop_reason = StopReason::kNone;
  // How the shell ended: exit status, or the signal that killed it.
  bool exited = false;
  int exit_code = 0;
  int term_signal = 0;
  std::string output;       // stdout, at most max_output_bytes
  std::string stderr_tail;  // the end of stderr
  pid_t pgid = 0;           // process group id (= the shell's pid)
};

// Runs the command to completion (or until stopped) and returns how it
// ended. An error status only when the command could not be started (or
// waited for): pipes, fork or exec failed. `interrupter` may be null.
absl::StatusOr<CommandResult> RunCommand(const CommandOptions& options,
                                         const CommandInterrupter* interrupter);

// Makes this process the reaper of its orphaned descendants (Linux
// PR_SET_CHILD_SUBREAPER). Process-wide.
absl::Status BecomeChildSubreaper();

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_COMMAND_RUNNER_H_
