// Internal to taskctl: the operator commands (QueueService: queues, pause,
// resume, purge, queue-limit), the `schedule` commands (ScheduleService), and
// the output helpers taskctl.cc shares with them. Not a public API.
//
// Stateless functions; thread-compatible.
#ifndef TASKD_CLIENTS_CPP_TASKCTL_ADMIN_H_
#define TASKD_CLIENTS_CPP_TASKCTL_ADMIN_H_

#include <ostream>
#include <string>
#include <vector>

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clients/cpp/cli_args.h"
#include "clients/cpp/taskctl.h"

namespace taskd::taskctl_internal {

// One JSON object on one line, proto field names as in the .proto.
std::string ToJson(const google::protobuf::Message& message);
// Prints "taskctl: CODE: message" and returns exit status 1.
int Fail(std::ostream& err, const absl::Status& status);
// A usage error (INVALID_ARGUMENT) with `message`.
absl::Status Usage(absl::string_view message);
// The non-negative duration of flag `name`, or `fallback` when absent.
absl::StatusOr<absl::Duration> ParseDurationFlag(const ParsedArgs& args,
                                                 const std::string& name,
                                                 absl::Duration fallback);
// Writes a finite, non-negative `d` into `out`.
void SetDuration(absl::Duration d, google::protobuf::Duration* out);

// The command a `schedule` verb names; INVALID_ARGUMENT for an unknown one.
absl::StatusOr<TaskctlInvocation::Command> ScheduleCommand(
    absl::string_view verb);
// Flags of a queue or schedule command, beyond the global ones.
std::vector<FlagSpec> AdminFlags(TaskctlInvocation::Command command);
// Fills `inv` from the arguments of a queue or schedule command.
absl::Status ParseAdminArgs(const ParsedArgs& args, TaskctlInvocation* inv);
// Runs a queue or schedule command; returns the exit status.
int ExecuteAdmin(const TaskctlInvocation& inv, std::ostream& out,
                 std::ostream& err);

}  // namespace taskd::taskctl_internal

#endif  // TASKD_CLIENTS_CPP_TASKCTL_ADMIN_H_
