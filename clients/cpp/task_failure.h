// How a worker handler describes a failed task: the mapping from the
// absl::Status a handler returns to the TaskError the server records.
//
// A handler fails its task by returning any non-OK status. By default the
// TaskError code is the lowercase name of the absl code ("not_found",
// "deadline_exceeded", ...), the message is the status message, and the
// failure is retryable except for kInvalidArgument and kFailedPrecondition.
// To choose the code, the retryability or the details explicitly, return
// TaskFailure(...):
//
//   if (!valid) return taskd::TaskFailure("bad_image", "not a PNG", false);
//
// TaskFailure stores a serialized taskd.v1.TaskError (code, details,
// retryable) as the payload kTaskFailurePayloadUrl of a kUnknown status; the
// status message is the TaskError message. Such statuses survive copying and
// StatusOr wrapping unchanged. Stateless; safe from any thread.
#ifndef TASKD_CLIENTS_CPP_TASK_FAILURE_H_
#define TASKD_CLIENTS_CPP_TASK_FAILURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

// Payload type URL under which TaskFailure stores its TaskError.
inline constexpr char kTaskFailurePayloadUrl[] =
    "type.googleapis.com/taskd.v1.TaskError";

// Returns a non-OK status that a handler can return to fail its task with
// exactly this TaskError code/message/retryability/details. An empty `code`
// becomes "unknown".
absl::Status TaskFailure(absl::string_view code, absl::string_view message,
                         bool retryable = true,
                         absl::string_view details = "");

// Returns the TaskError to report for a handler's non-OK `status` (see the
// file comment). Must not be called with an OK status; if it is, the result
// has code "unknown".
v1::TaskError TaskErrorFromStatus(const absl::Status& status);

// "INVALID_ARGUMENT" style name of `code` in lower case, e.g.
// "invalid_argument".
std::string LowercaseCodeName(absl::StatusCode code);

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_TASK_FAILURE_H_
