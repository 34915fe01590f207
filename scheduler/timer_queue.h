// TimerQueue: the one timer structure behind delays, retry back-off, attempt
// timeouts, lease expiry, Await timeouts and retention.
//
//   TimerQueue timers;
//   TimerQueue::TimerId id = timers.Schedule(now + absl::Seconds(30), [] {...});
//   timers.Cancel(id);            // O(1); the callback is destroyed at once
//   timers.RunDue(clock->Now());  // runs whatever is due, in due order
//
// A hierarchical timing wheel of 1 ms ticks: 11 levels of 64 slots, a level-L
// slot covering 64^L ticks, so the levels span every representable time
// (InfinitePast to InfiniteFuture; no overflow list). Schedule and Cancel are
// O(1). A timer sits at the level of how far ahead of the wheel's position it
// is due and moves down at most once per level (10 times, from InfinitePast to
// years ahead; 3 for an hour) before it runs. RunDue jumps from one occupied
// slot to the next (per-level occupancy bitmaps), so a clock jump of days
// costs nothing per empty tick, and a call with nothing due costs a compare.
//
// Order: timers run by due time, then arming order (FIFO among equal times),
// exactly as with the ordered map this replaced: the 1 ms tick is the wheel's
// bucket, not a rounding. A timer never runs before its due time; the timers
// of one tick are sorted when the tick is run.
//
// Memory follows the armed timers: Cancel destroys the callback (and what it
// captures) at once, frees its node for the next Schedule and its slot entry
// (a slot's array shrinks as it thins). Node storage stays at the peak number
// of armed timers until the queue is empty, then is released.
//
// Callbacks re-check the state they were armed for and do nothing when it has
// moved on; a timer whose purpose is gone for good (a withdrawn Await) is
// cancelled, so it holds no memory until its due time.
//
// Thread-safe. Callbacks run in RunDue's caller, outside the queue's lock, so
// they may Schedule and Cancel.
#ifndef TASKD_SCHEDULER_TIMER_QUEUE_H_
#define TASKD_SCHEDULER_TIMER_QUEUE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace taskd {

class TimerQueue {
 public:
  using Callback = std::function<void()>;

  // Names an armed timer, for Cancel: its due time and an opaque handle.
  using TimerId = std::pair<absl::Time, uint64_t>;

  // What the wheel has done so far; for tests and benchmarks.
  struct Stats {
    uint64_t slots_run = 0;        // level-0 slots whose due timers were taken
    uint64_t slots_cascaded = 0;   // higher-level slots spread to lower levels
    uint64_t timers_cascaded = 0;  // timers moved down a level
    size_t nodes = 0;              // timer nodes allocated (armed or free)
    int waiters = 0;               // threads inside WaitForWork
  };

  TimerQueue();
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Arms `fn` to run at or after `when` (any time, InfinitePast through
  // InfiniteFuture). O(1).
  TimerId Schedule(absl::Time when, Callback fn) ABSL_LOCKS_EXCLUDED(mu_);

  // Disarms `id`; false when it already ran (or is running) or was cancelled.
  // O(1). The callback is destroyed before Cancel returns (outside the lock).
  bool Cancel(const TimerId& id) ABSL_LOCKS_EXCLUDED(mu_);

  // Runs every timer due at `now` (including those they arm for <= now), by
  // due time then arming order. Returns how many ran.
  size_t RunDue(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // The earliest due time, or InfiniteFuture when empty. Exact; costs a scan
  // of the earliest occupied slot when its earliest timer was cancelled.
  absl::Time NextDue() const ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);

  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until the earliest timer may be due, `Schedule` arms an earlier
  // one, `Wake` is called, or `limit` passes (real time). For the timer
  // thread. O(1): waits for the earliest slot's bound, which is the earliest
  // due time unless that timer was cancelled; then it returns early once, and
  // the next RunDue makes the bound exact again.
  void WaitForWork(absl::Time limit) ABSL_LOCKS_EXCLUDED(mu_);
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Node;   // an armed (or free) timer: callback and where it sits
  struct Entry;  // a timer in a slot: due time, arming order, node
  struct Slot;   // the entries of one slot and a bound on their due times

  static constexpr int kLevelBits = 6;
  static constexpr int kSlotsPerLevel = 1 << kLevelBits;
  static constexpr int kLevels = 11;  // 11 * 6 bits >= the 64-bit tick
  static constexpr uint32_t kNil = ~uint32_t{0};

  Node& At(uint32_t index) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t AllocateNode() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the callback out (for the caller to destroy after unlocking) and
  // puts the node on the free list.
  Callback FreeNode(uint32_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Releases node storage once nothing is armed (returned for destruction
  // outside the lock).
  std::vector<std::unique_ptr<Node[]>> TrimIfEmpty()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Puts `entry` in the slot its due time maps to, relative to elapsed_.
  void Insert(const Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes node `index`'s entry out of its slot (Cancel).
  void Remove(uint32_t index) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks slot `k` empty and drops a large buffer.
  void SlotEmptied(int k) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The earliest occupied slot as level * kSlotsPerLevel + slot, or -1.
  int EarliestSlot() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t SlotStart(int level, int slot) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the callbacks of level-0 slot `slot` due at `now` into `due`, in
  // run order.
  void TakeDue(int slot, absl::Time now, std::vector<Callback>* due)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Cascade(int level, int slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A lower bound on the earliest due time (InfiniteFuture when empty).
  absl::Time EarliestDueBound() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;

  // The wheel. Every armed timer sits in exactly one slot. Relative to
  // elapsed_ (the current tick), a timer due at tick t is at the level of the
  // highest 6-bit group in which t and elapsed_ differ, in the slot given by
  // t's bits of that group; timers due at or before elapsed_ sit in the level-0
  // slot of elapsed_. So levels are ordered in time, and the lowest set bit of
  // the lowest non-empty level is the earliest slot.
  std::unique_ptr<Slot[]> slots_ ABSL_GUARDED_BY(mu_);
  std::array<uint64_t, kLevels> occupied_ ABSL_GUARDED_BY(mu_) = {};
  uint32_t levels_occupied_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t elapsed_ ABSL_GUARDED_BY(mu_) = 0;

  std::vector<Entry> picked_ ABSL_GUARDED_BY(mu_);  // TakeDue's scratch
  std::vector<Callback> spare_batch_ ABSL_GUARDED_BY(mu_);  // RunDue's, empty

  // Nodes, in chunks so that they never move; free ones chained by `pos`.
  std::vector<std::unique_ptr<Node[]>> chunks_ ABSL_GUARDED_BY(mu_);
  uint32_t free_head_ ABSL_GUARDED_BY(mu_) = kNil;
  uint32_t nodes_used_ ABSL_GUARDED_BY(mu_) = 0;  // never-used tail starts here
  size_t armed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;

  Stats stats_ ABSL_GUARDED_BY(mu_);

  // WaitForWork: a Schedule earlier than wait_deadline_ (the earliest
  // deadline of the current waiters) bumps early_arms_, which ends the waits.
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time wait_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  uint64_t early_arms_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_TIMER_QUEUE_H_
