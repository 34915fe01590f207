// The task state machine: every state change of a task goes through
// CheckTransition, so the rules live in one place.
//
//   PENDING   -> RUNNING | CANCELLED
//   SCHEDULED -> PENDING | CANCELLED
//   RUNNING   -> SUCCEEDED | FAILED | CANCELLED | SCHEDULED (retry back-off)
//               | PENDING (retry without back-off)
//   SUCCEEDED, FAILED, CANCELLED are terminal: nothing leaves them.
//
// Pure functions; thread-safe.
#ifndef TASKD_SCHEDULER_TASK_STATE_H_
#define TASKD_SCHEDULER_TASK_STATE_H_

#include "absl/status/status.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

bool IsTerminal(v1::TaskState state);

// OK when `from -> to` is a legal transition, else an internal error naming
// both states (an engine bug, never a client error).
absl::Status CheckTransition(v1::TaskState from, v1::TaskState to);

// "PENDING", "RUNNING", ... for logs and CLIs.
const char* StateName(v1::TaskState state);

}  // namespace taskd

#endif  // TASKD_SCHEDULER_TASK_STATE_H_
