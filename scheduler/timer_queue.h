// TimerQueue: the one timer structure behind delays, retry back-off, attempt
// timeouts, lease expiry, Await timeouts and retention. An ordered tree keyed
// by due time: O(log n) to add, cancel and run, so the cost stays flat-ish at
// a million timers. Callbacks re-check the state they were armed for and do
// nothing when it has moved on; a timer whose purpose is gone for good (a
// withdrawn Await) is cancelled, so it holds no memory until its due time.
//
// Thread-safe. Callbacks run in RunDue's caller, outside the queue's lock.
#ifndef TASKD_SCHEDULER_TIMER_QUEUE_H_
#define TASKD_SCHEDULER_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace taskd {

class TimerQueue {
 public:
  using Callback = std::function<void()>;

  // Names an armed timer, for Cancel.
  using TimerId = std::pair<absl::Time, uint64_t>;

  // Arms `fn` to run at or after `when`.
  TimerId Schedule(absl::Time when, Callback fn) ABSL_LOCKS_EXCLUDED(mu_);

  // Disarms `id`; false when it already ran (or is running) or was cancelled.
  bool Cancel(const TimerId& id) ABSL_LOCKS_EXCLUDED(mu_);

  // Runs every timer due at `now` (including those they arm for <= now).
  // Returns how many ran.
  size_t RunDue(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // The earliest due time, or InfiniteFuture when empty.
  absl::Time NextDue() const ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until the earliest timer may be due, `Schedule` arms an earlier
  // one, `Wake` is called, or `limit` passes (real time). For the timer thread.
  void WaitForWork(absl::Time limit) ABSL_LOCKS_EXCLUDED(mu_);
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  // By due time, then arming order (FIFO among equal times).
  std::map<TimerId, Callback> timers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_TIMER_QUEUE_H_
