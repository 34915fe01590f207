// AwaitTable: the registered Awaits, which tasks each waits on, their
// timeouts, and the one answer each gets.
//
// The engine registers an Await, then for each task either (under the
// task's shard lock, so that a completion cannot slip between) parks it on
// the task with WaitOn, or counts the task done at once. A task that ends
// hands its waiters to the engine (TakeWaitersOf, under its shard lock);
// once the end is durable the engine counts each of them done. An Await
// fires once: when its last needed task is done, at its deadline, when
// withdrawn (no callback), or at Shutdown (UNAVAILABLE).
//
// Lock order: a task shard lock -> mu_ (a leaf). Callbacks run with no lock
// held, on the thread that fired them.
//
// Thread-safe.
#ifndef TASKD_SCHEDULER_AWAIT_TABLE_H_
#define TASKD_SCHEDULER_AWAIT_TABLE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/timer_queue.h"

namespace taskd {
namespace internal {

// One registered Await. `remaining` counts terminal notifications still
// needed (ids.size() for ALL, 1 for ANY); `fired` makes the callback run once.
struct Waiter {
  std::vector<std::string> ids;
  bool include_payloads = true;
  size_t max_response_bytes = 0;  // 0: no limit
  std::atomic<int64_t> remaining{0};
  std::atomic<bool> fired{false};
  std::function<void(absl::StatusOr<v1::AwaitResponse>)> done;
  // The timeout's timer, cancelled once the Await is answered or withdrawn
  // (an Await timeout may be years away). Guarded by AwaitTable::mu_.
  std::optional<TimerQueue::TimerId> timer;
};

}  // namespace internal

class AwaitTable {
 public:
  using WaiterPtr = std::shared_ptr<internal::Waiter>;
  using Callback = std::function<void(absl::StatusOr<v1::AwaitResponse>)>;
  // Reads a task for an answer (NOT_FOUND once retired).
  using TaskReader =
      std::function<absl::StatusOr<v1::Task>(const std::string& id)>;

  // `timers` and `read` must outlive the table.
  AwaitTable(TimerQueue* timers, TaskReader read)
      : timers_(timers), read_(std::move(read)) {}

  // A new Await of `ids` (validated by the caller), not yet parked on any
  // task. UNAVAILABLE after Shutdown.
  absl::StatusOr<WaiterPtr> Register(std::vector<std::string> ids, bool any,
                                     bool include_payloads,
                                     size_t max_response_bytes, Callback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Parks `w` on task `id` (its shard lock held; the task is not terminal).
  void WaitOn(const std::string& id, const WaiterPtr& w)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The Awaits parked on task `id`, which just ended (its shard lock held).
  std::vector<WaiterPtr> TakeWaitersOf(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // One task `w` needs is terminal and durable: answers when it was the last.
  void CountDone(const WaiterPtr& w);
  // Answers `w` at `deadline` with done = false, unless answered before.
  void ArmTimeout(const WaiterPtr& w, absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Withdraws `w`: true if its callback had not started and never will.
  bool Withdraw(const WaiterPtr& w) ABSL_LOCKS_EXCLUDED(mu_);
  // Answers `w` once: `status` if not OK, else the tasks (done = `done`).
  void Fire(const WaiterPtr& w, absl::Status status, bool done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Answers every pending Await UNAVAILABLE, refuses new ones, and returns
  // once no callback runs anywhere (they finish gRPC calls, which must
  // happen before the server's queues shut down).
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  size_t pending() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Unparks `w` from its tasks. mu_ held.
  void UnparkLocked(const WaiterPtr& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TimerQueue* const timers_;
  const TaskReader read_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<WaiterPtr> waiters_ ABSL_GUARDED_BY(mu_);
  // Task id -> Awaits parked on it.
  absl::flat_hash_map<std::string, std::vector<WaiterPtr>> by_task_
      ABSL_GUARDED_BY(mu_);
  // Fire calls in progress (see Shutdown).
  int firing_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_AWAIT_TABLE_H_
