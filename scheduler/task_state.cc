#include "scheduler/task_state.h"

#include "absl/strings/str_cat.h"

namespace taskd {

bool IsTerminal(v1::TaskState state) {
  return state == v1::TASK_STATE_SUCCEEDED || state == v1::TASK_STATE_FAILED ||
         state == v1::TASK_STATE_CANCELLED;
}

absl::Status CheckTransition(v1::TaskState from, v1::TaskState to) {
  bool ok = false;
  switch (from) {
    case v1::TASK_STATE_PENDING:
      ok = to == v1::TASK_STATE_RUNNING || to == v1::TASK_STATE_CANCELLED;
      break;
    case v1::TASK_STATE_SCHEDULED:
      ok = to == v1::TASK_STATE_PENDING || to == v1::TASK_STATE_CANCELLED;
      break;
    case v1::TASK_STATE_RUNNING:
      ok = to == v1::TASK_STATE_SUCCEEDED || to == v1::TASK_STATE_FAILED ||
           to == v1::TASK_STATE_CANCELLED || to == v1::TASK_STATE_SCHEDULED ||
           to == v1::TASK_STATE_PENDING;
      break;
    default:
      ok = false;
  }
  if (ok) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("illegal task transition ",
                                          StateName(from), " -> ",
                                          StateName(to)));
}

const char* StateName(v1::TaskState state) {
  switch (state) {
    case v1::TASK_STATE_PENDING:
      return "PENDING";
    case v1::TASK_STATE_SCHEDULED:
      return "SCHEDULED";
    case v1::TASK_STATE_RUNNING:
      return "RUNNING";
    case v1::TASK_STATE_SUCCEEDED:
      return "SUCCEEDED";
    case v1::TASK_STATE_FAILED:
      return "FAILED";
    case v1::TASK_STATE_CANCELLED:
      return "CANCELLED";
    default:
      return "UNSPECIFIED";
  }
}

}  // namespace taskd
