// CompletionCore: one gRPC completion queue, the loop that drains it, and
// the bookkeeping that makes shutting it down safe: every operation started
// on the queue is registered (its ClientContext, or its alarm) and counted
// until its tag comes back, so Shutdown() can cancel what is in flight and
// the queue is only abandoned once the count is zero (Envoy-style in-flight
// tag counting). Private to AsyncTaskClient.
//
// Tags are CompletionTag objects that own themselves: Complete(ok) runs once
// on the polling thread and ends with `delete this`. ok == false is normal
// (a cancelled alarm, a queue shutting down), never an assert.
//
// Thread-safety: thread-safe. Poll() runs on exactly one thread.
#ifndef TASKD_CLIENTS_CPP_INTERNAL_COMPLETION_CORE_H_
#define TASKD_CLIENTS_CPP_INTERNAL_COMPLETION_CORE_H_

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "clients/cpp/future.h"
#include "google/protobuf/duration.pb.h"

namespace taskd::internal {

class CompletionTag {
 public:
  virtual ~CompletionTag() = default;
  // Runs once, on the polling thread; deletes the tag.
  virtual void Complete(bool ok) = 0;
};

class CompletionCore {
 public:
  // `executor` is where the owner's continuations run (may be empty).
  explicit CompletionCore(Executor executor) : executor_(std::move(executor)) {}
  virtual ~CompletionCore();
  CompletionCore(const CompletionCore&) = delete;
  CompletionCore& operator=(const CompletionCore&) = delete;

  // The polling thread's body: runs tags until the queue is shut down and
  // drained.
  void Poll();

  // Refuses new operations, cancels every RPC and alarm in flight, and
  // shuts the queue down (Poll() then drains it and returns). Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Registers an operation on `context` (null for none), then runs `start`,
  // which must put exactly one tag on cq() that calls OpDone(context).
  // False, without running `start`, once Shutdown() began.
  bool StartOp(grpc::ClientContext* context, absl::FunctionRef<void()> start)
      ABSL_LOCKS_EXCLUDED(mu_);
  void OpDone(grpc::ClientContext* context) ABSL_LOCKS_EXCLUDED(mu_);

  // Calls `fn(true)` on the polling thread at `deadline`, or `fn(false)` if
  // the alarm is cancelled first (CancelAlarm or Shutdown). Returns its id,
  // or 0 (and `fn` is never called) once Shutdown() began.
  uint64_t SetAlarm(absl::Time deadline, std::function<void(bool)> fn)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Cancels the alarm if it has not run yet; no effect otherwise (or for 0).
  void CancelAlarm(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

  bool InCompletionThread() const {
    return thread_id_.load() == std::this_thread::get_id();
  }
  grpc::CompletionQueue* cq() { return &cq_; }
  const Executor& executor() const { return executor_; }

 private:
  class AlarmTag;
  void AlarmDone(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const Executor executor_;
  grpc::CompletionQueue cq_;
  std::atomic<std::thread::id> thread_id_{};

  // State below is protected by mu_.
  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // tags not yet returned
  absl::flat_hash_set<grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, AlarmTag*> alarms_ ABSL_GUARDED_BY(mu_);
  uint64_t next_alarm_id_ ABSL_GUARDED_BY(mu_) = 1;
};

// absl::Duration -> google.protobuf.Duration (finite durations only).
void ToProtoDuration(absl::Duration d, google::protobuf::Duration* out);

}  // namespace taskd::internal

#endif  // TASKD_CLIENTS_CPP_INTERNAL_COMPLETION_CORE_H_
