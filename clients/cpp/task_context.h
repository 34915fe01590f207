// TaskContext: what a worker handler sees of the one task attempt it runs —
// the Task, its lease, progress reporting and a cancellation token.
//
//   absl::StatusOr<std::string> Resize(taskd::TaskContext& ctx) {
//     for (int i = 0; i < 10; ++i) {
//       if (ctx.cancelled()) return absl::CancelledError("stopped");
//       ... one step ...
//       ctx.ReportProgress(10 * (i + 1), "resizing").IgnoreError();
//     }
//     return std::string("done");
//   }
//
// The Worker creates one TaskContext per assignment and keeps it alive until
// the handler has returned; handlers must not keep references past that.
// Tests of handlers may construct a TaskContext directly and call Cancel().
//
// Thread-safety: all methods are thread-safe; a handler may hand the context
// to helper threads (for as long as the handler runs).
#ifndef TASKD_CLIENTS_CPP_TASK_CONTEXT_H_
#define TASKD_CLIENTS_CPP_TASK_CONTEXT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

class TaskContext {
 public:
  // Why the token was set; the first Cancel() wins.
  enum class CancelCause {
    kNone,
    kCancelNotice,    // the server sent a CancelNotice (cancel or timeout)
    kWorkerStopping,  // Stop()/Abort() or the work stream ended
  };
  // Delivers a progress update; returns why it could not be sent.
  using ProgressSink = std::function<absl::Status(const v1::ProgressUpdate&)>;

  // `deadline` is the attempt's execution deadline (InfiniteFuture = none).
  // `progress_sink` may be empty, in which case progress is dropped.
  // `max_result_bytes` is the server's limit for this task's result (0 =
  // not advertised).
  TaskContext(v1::Task task, uint64_t lease_id, absl::Time deadline,
              ProgressSink progress_sink, uint64_t max_result_bytes = 0);
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;

  const v1::Task& task() const { return task_; }
  const std::string& id() const { return task_.id(); }
  const std::string& type() const { return task_.spec().type(); }
  const std::string& payload() const { return task_.spec().payload(); }
  int attempt() const { return task_.attempt(); }
  uint64_t lease_id() const { return lease_id_; }
  absl::Time deadline() const { return deadline_; }
  uint64_t max_result_bytes() const { return max_result_bytes_; }

  // Sends progress (0..100) for this lease; it also counts as a heartbeat.
  // INVALID_ARGUMENT for a percent out of range; an error when the work
  // stream is closed. Best effort: callers may ignore the status.
  absl::Status ReportProgress(int percent, absl::string_view message);

  // The cancellation token: true once the server asked to stop this attempt
  // or the worker is stopping. Never reset.
  bool cancelled() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until cancelled or `timeout` passed; returns cancelled().
  bool WaitCancelled(absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);
  CancelCause cancel_cause() const ABSL_LOCKS_EXCLUDED(mu_);
  std::string cancel_reason() const ABSL_LOCKS_EXCLUDED(mu_);

  // Registration of a cancellation callback; unregisters on destruction.
  // Destruction waits for a concurrently running callback to return, so the
  // callback may safely use objects that outlive the registration.
  class CancelCallback {
   public:
    CancelCallback() = default;
    CancelCallback(CancelCallback&& other) noexcept;
    CancelCallback& operator=(CancelCallback&& other) noexcept;
    ~CancelCallback();

   private:
    friend class TaskContext;
    CancelCallback(TaskContext* context, uint64_t id)
        : context_(context), id_(id) {}
    TaskContext* context_ = nullptr;
    uint64_t id_ = 0;
  };

  // Runs `fn` once when the context is cancelled — at once, on this thread,
  // if it already is; otherwise on the thread calling Cancel(). `fn` must be
  // quick, must not block, and must not call OnCancel() or destroy its own
  // registration. Keep the returned object alive for as long as `fn` may run.
  [[nodiscard]] CancelCallback OnCancel(std::function<void()> fn)
      ABSL_LOCKS_EXCLUDED(callback_mu_);

  // Sets the token (idempotent; the first cause and reason are kept) and
  // runs the registered callbacks. Called by the Worker.
  void Cancel(CancelCause cause, absl::string_view reason)
      ABSL_LOCKS_EXCLUDED(mu_, callback_mu_);

 private:
  void RemoveCallback(uint64_t id) ABSL_LOCKS_EXCLUDED(callback_mu_);

  // Constant after construction.
  const v1::Task task_;
  const uint64_t lease_id_;
  const absl::Time deadline_;
  const uint64_t max_result_bytes_;
  const ProgressSink progress_sink_;

  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  CancelCause cause_ ABSL_GUARDED_BY(mu_) = CancelCause::kNone;
  std::string reason_ ABSL_GUARDED_BY(mu_);

  // Held while callbacks run, so that unregistering waits for them.
  absl::Mutex callback_mu_;
  bool callbacks_fired_ ABSL_GUARDED_BY(callback_mu_) = false;
  uint64_t next_callback_id_ ABSL_GUARDED_BY(callback_mu_) = 1;
  std::map<uint64_t, std::function<void()>> callbacks_
      ABSL_GUARDED_BY(callback_mu_);
};

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_TASK_CONTEXT_H_
