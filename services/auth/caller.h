// Caller: the identity the auth processor attached to one call, for the
// queue-scope checks that only a handler can make (it knows the task, the
// worker's queues, the schedule's template).
//
//   auth::Caller caller = auth::Caller::FromContext(ctx);
//   if (caller.scoped()) {
//     if (auto s = caller.CheckQueue(spec.queue()); !s.ok()) return reply(s);
//   }
//
// A call that reached a handler passed the TokenAuthProcessor (role checked
// already). Without one (auth off, or mTLS without a token file) the caller
// is unrestricted. Scope is about queues only; roles are never rechecked here.
//
// A Caller is a value; thread-compatible.
#ifndef TASKD_SERVICES_AUTH_CALLER_H_
#define TASKD_SERVICES_AUTH_CALLER_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace taskd {
namespace auth {

// AuthContext properties the processor sets (never client-controlled).
inline constexpr char kIdentityProperty[] = "taskd_identity";
inline constexpr char kQueueProperty[] = "taskd_queue";  // one per pattern

class Caller {
 public:
  // Unrestricted.
  Caller() = default;
  Caller(std::string name, std::vector<std::string> queue_patterns)
      : name_(std::move(name)), queues_(std::move(queue_patterns)) {}

  static Caller FromContext(const grpc::ServerContextBase& context);

  // False: every queue is allowed and the checks below always pass.
  bool scoped() const { return !queues_.empty(); }
  const std::string& name() const { return name_; }

  // Whether the caller may touch `queue` (empty means "default").
  bool MayUseQueue(absl::string_view queue) const;

  // PERMISSION_DENIED naming the queue unless MayUseQueue(queue): for a
  // queue the caller names itself (submit, hello, queue operations).
  absl::Status CheckQueue(absl::string_view queue,
                          absl::string_view field = "queue") const;

  // NOT_FOUND ("task <id> not found", as for an unknown id) unless the task's
  // queue is allowed: ids of other queues do not leak.
  absl::Status CheckTaskQueue(absl::string_view task_queue,
                              absl::string_view task_id) const;

  // PERMISSION_DENIED for calls that span every queue (ListQueues, a Stream
  // or ListTasks without a queue) when the caller is scoped.
  absl::Status CheckUnscoped(absl::string_view what) const;

 private:
  std::string name_;
  std::vector<std::string> queues_;
};

}  // namespace auth
}  // namespace taskd

#endif  // TASKD_SERVICES_AUTH_CALLER_H_
