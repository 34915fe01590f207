// Caller: the identity behind one call, for the queue-scope checks that only
// a handler can make (it knows the task, the worker's queues, the schedule's
// template).
//
//   auth::Caller caller = auth::Caller::FromContext(ctx);
//   if (caller.scoped()) {
//     if (auto s = caller.CheckQueue(spec.queue()); !s.ok()) return reply(s);
//   }
//
// A call that reached a handler passed the TokenAuthProcessor (role checked
// already). The processor cannot hand the identity over: in gRPC 1.51 the
// AuthContext it is given belongs to the connection, not the call (calls on
// one connection would see, and race on, each other's properties). So the
// handler identifies the caller again, from the call's own `authorization`
// header (or the connection's client certificate), through the
// CallerSource the server registered. Without one (auth off, or mTLS
// without a token file) the caller is unrestricted. A call whose token
// vanished from the file in between may use no queue. Scope is about queues
// only; roles are never rechecked here.
//
// One CallerSource per process (the taskd server); a Caller is a value,
// thread-compatible; SetCallerSource is thread-safe.
#ifndef TASKD_SERVICES_AUTH_CALLER_H_
#define TASKD_SERVICES_AUTH_CALLER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace taskd {
namespace auth {

class Caller;

// Who the token (the value after "Bearer ") or, without a header, a client
// certificate common name is.
class CallerSource {
 public:
  virtual ~CallerSource() = default;
  // `authorization`: the header's value, null when absent. False when
  // nobody is known by these credentials.
  virtual bool Identify(const absl::string_view* authorization,
                        const std::vector<absl::string_view>& common_names,
                        Caller* caller) const = 0;
};

// Registers the process's source (the server at Start); null unregisters.
void SetCallerSource(std::shared_ptr<const CallerSource> source);

class Caller {
 public:
  // Unrestricted.
  Caller() = default;
  Caller(std::string name, std::vector<std::string> queue_patterns)
      : name_(std::move(name)), queues_(std::move(queue_patterns)) {}
  // Known to the processor but no longer to the source: no queue at all.
  static Caller Nobody();

  static Caller FromContext(const grpc::ServerContextBase& context);

  // False: every queue is allowed and the checks below always pass.
  bool scoped() const { return nobody_ || !queues_.empty(); }
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
  bool nobody_ = false;
};

}  // namespace auth
}  // namespace taskd

#endif  // TASKD_SERVICES_AUTH_CALLER_H_
