// EngineMetrics: what the engine reports as it changes tasks, for a
// metrics exporter (services/metrics) to count. No Prometheus in here.
//
//   EngineOptions options;
//   options.metrics = &my_metrics;   // nullptr (the default): no reporting
//
// The engine resolves a queue's handle once per task (ForQueue, cached in
// the task's record) and then calls the handle's methods under the task's
// shard lock, so implementations must be cheap and must not block or call
// back into the engine: atomic increments, no locks, no lookups.
//
// Only events are reported here. What can be read at scrape time (tasks per
// state, oldest pending age, workers, awaits, ...) comes from the engine's
// read APIs instead of hooks on the hot path.
//
// Implementations are thread-safe; handles live as long as the
// EngineMetrics that returned them (which must outlive the engine).
#ifndef TASKD_SCHEDULER_ENGINE_METRICS_H_
#define TASKD_SCHEDULER_ENGINE_METRICS_H_

#include <string>

#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

// How an attempt ended (label `outcome` of taskd_task_attempts_total).
enum class AttemptOutcome {
  kSucceeded,
  kFailed,
  kTimeout,
  kLeaseExpired,
  kCancelled,
};
inline constexpr int kAttemptOutcomes = 5;

// The outcome of an attempt that ends with `error` (not a success):
// cancelled when a cancel was requested, else by the server's error codes.
inline AttemptOutcome FailedAttemptOutcome(bool cancel_requested,
                                           const v1::TaskError& error) {
  if (cancel_requested) return AttemptOutcome::kCancelled;
  if (error.code() == "timeout") return AttemptOutcome::kTimeout;
  if (error.code() == "lease_expired") return AttemptOutcome::kLeaseExpired;
  return AttemptOutcome::kFailed;
}

// One queue's event sink. Called with the task's shard lock held.
class QueueMetrics {
 public:
  virtual ~QueueMetrics() = default;
  // A task was created (not for a deduplicated submit).
  virtual void Submitted() = 0;
  // A submit was answered with an existing task.
  virtual void Deduplicated() = 0;
  // An attempt started, `wait` after the task became PENDING.
  virtual void AttemptStarted(absl::Duration wait) = 0;
  // An attempt ended after running for `run`.
  virtual void AttemptEnded(AttemptOutcome outcome, absl::Duration run) = 0;
  // An ended attempt will be tried again (after its back-off).
  virtual void Retried() = 0;
  // The task became terminal in `state`, `turnaround` after its creation.
  virtual void Finished(v1::TaskState state, absl::Duration turnaround) = 0;
};

class EngineMetrics {
 public:
  virtual ~EngineMetrics() = default;
  // The handle of `queue`, never nullptr. Label sets are bounded by the
  // implementation (queues beyond its limit share one handle). May take a
  // lock; the engine calls it once per task, not per event.
  virtual QueueMetrics* ForQueue(const std::string& queue) = 0;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_ENGINE_METRICS_H_
