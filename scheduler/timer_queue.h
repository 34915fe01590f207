// TimerQueue: the one timer structure behind delays, retry back-off, attempt
// timeouts, lease expiry, Await timeouts and retention. A binary heap keyed
// by due time: O(log n) to add, O(1) to peek, so the cost stays flat-ish at
// a million timers. Timers cannot be cancelled; a callback re-checks the state
// it was armed for and does nothing when that state has moved on.
//
// Thread-safe. Callbacks run in RunDue's caller, outside the queue's lock.
#ifndef TASKD_SCHEDULER_TIMER_QUEUE_H_
#define TASKD_SCHEDULER_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace taskd {

class TimerQueue {
 public:
  using Callback = std::function<void()>;

  // Arms `fn` to run at or after `when`.
  void Schedule(absl::Time when, Callback fn) ABSL_LOCKS_EXCLUDED(mu_);

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
  struct Entry {
    absl::Time when;
    uint64_t seq;  // FIFO among equal times
    Callback fn;
    bool operator>(const Entry& o) const {
      return when != o.when ? when > o.when : seq > o.seq;
    }
  };

  mutable absl::Mutex mu_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_TIMER_QUEUE_H_
