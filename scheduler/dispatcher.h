// Dispatcher: ready queues and connected workers; decides which worker runs
// which PENDING task.
//
// Ready tasks are kept per (queue, type) ordered by priority (9 first), then
// FIFO, and per queue across all types, so a worker serving every type finds
// its task at the same cost however many types a queue has. Each of those
// orders is one FIFO list per priority (an entry is linked into two lists:
// its type's and its queue's), with a bit per non-empty priority: enqueue,
// remove and finding the best entry cost O(1) however many are ready. A worker serves
// a set of queues and either every type or a listed set; it holds at most
// `concurrency` unfinished assignments (its credit), and gets nothing while
// its sink reports itself congested (a worker that does not read). Queues
// with nothing ready, running or configured are forgotten: their names come
// from clients.
// Whenever tasks or credit appear, Pump() repeatedly gives the least loaded
// worker with credit the best task it can serve, so strict priority holds
// within a queue and load spreads across workers.
//
// Per queue, operators may pause dispatching, cap the tasks RUNNING at once
// across all workers (max_concurrency) and rate-limit dispatches with a
// token bucket (max_dispatch_per_second, burst max(1, rate)). When only the
// bucket holds a queue back, the Dispatcher asks for a wake-up (WakeFn) at
// the time the next token is due; the owner then calls Pump().
//
// Starting a task is delegated to the engine's StartFn, called with mu_ held;
// it must not call back into the Dispatcher (lock order: Dispatcher::mu_ ->
// engine shard lock -> event log). It returns false when the entry was stale
// (the task was cancelled meanwhile), and the entry is simply dropped.
//
// Thread-safe.
#ifndef TASKD_SCHEDULER_DISPATCHER_H_
#define TASKD_SCHEDULER_DISPATCHER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "scheduler/clock.h"
#include "scheduler/task_id.h"
#include "scheduler/worker_session.h"

namespace taskd {

// Where a PENDING task sits in the ready queues.
struct ReadyEntry {
  std::string queue;
  std::string type;
  int priority = 0;
  uint64_t seq = 0;  // FIFO order within a priority (below 2^56)
  TaskKey task;
  absl::Time since;  // when it became ready (oldest pending age)
};

struct QueueLimits {
  bool paused = false;
  int max_concurrency = 0;              // 0: no limit
  double max_dispatch_per_second = 0;   // 0: no limit
};

struct QueueStats {
  QueueLimits limits;
  size_t ready = 0;
  int running = 0;  // started here and not yet released
  int workers = 0;  // connected workers serving the queue
  absl::Time oldest_ready = absl::InfiniteFuture();
};

// Assignments the connected workers hold (busy) and may still take (free).
struct WorkerSlots {
  int64_t busy = 0;
  int64_t free = 0;
};

class Dispatcher {
 public:
  using StartFn = std::function<bool(const TaskKey& task,
                                     const std::shared_ptr<WorkerSession>&)>;

  using WakeFn = std::function<void(absl::Time)>;

  // `clock` and `wake` are needed only for rate limits (token buckets).
  explicit Dispatcher(StartFn start, Clock* clock = nullptr,
                      WakeFn wake = nullptr)
      : start_(std::move(start)), clock_(clock), wake_(std::move(wake)) {}

  // Dispatches whatever can go now (after a WakeFn wake-up).
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);

  void SetLimits(const std::string& queue, QueueLimits limits)
      ABSL_LOCKS_EXCLUDED(mu_);
  QueueStats Stats(const std::string& queue) const ABSL_LOCKS_EXCLUDED(mu_);
  // Queues with ready tasks, settings, running tasks or workers.
  std::vector<std::string> KnownQueues() const ABSL_LOCKS_EXCLUDED(mu_);

  void Enqueue(ReadyEntry entry) ABSL_LOCKS_EXCLUDED(mu_);
  // Removes a ready entry (no-op when absent).
  void Remove(const ReadyEntry& entry) ABSL_LOCKS_EXCLUDED(mu_);

  void AddWorker(std::shared_ptr<WorkerSession> worker) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets the worker; returns the tasks it was still holding.
  std::vector<TaskKey> RemoveWorker(const WorkerSession* worker)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The worker no longer holds `task`: its credit comes back.
  void Release(const WorkerSession* worker, const TaskKey& task)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Entries waiting in the ready queues of `queue` (stale ones included).
  size_t ReadyCount(const std::string& queue) const ABSL_LOCKS_EXCLUDED(mu_);
  size_t WorkerCount() const ABSL_LOCKS_EXCLUDED(mu_);
  // Summed concurrency of the connected workers: held and free.
  WorkerSlots Slots() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  static constexpr int kPriorities = 10;  // 0..9 (validation.cc)
  // A ready entry, linked into two FIFO lists: link kAll of its queue (every
  // type) and link kType of its (queue, type). One per queued task: 72
  // bytes (one 80-byte malloc class).
  enum Link { kAll = 0, kType = 1 };
  struct Node {
    TaskKey task;
    const std::string* type = nullptr;  // its key in QueueReady::by_type
    uint64_t seq : 56 = 0;
    uint64_t priority : 8 = 0;
    int64_t since_ns = 0;  // Unix nanoseconds
    Node* prev[2] = {nullptr, nullptr};
    Node* next[2] = {nullptr, nullptr};
    // Dispatch order: priority 9 first, then FIFO (seq).
    bool Before(const Node& o) const {
      if (priority != o.priority) return priority > o.priority;
      return seq < o.seq;
    }
  };
  // One FIFO list per priority; `nonempty` has bit p set when list p is.
  struct Lists {
    Node* head[kPriorities] = {};
    Node* tail[kPriorities] = {};
    uint16_t nonempty = 0;
    bool empty() const { return nonempty == 0; }
    // The first entry of the highest non-empty priority, or nullptr.
    const Node* Front() const;
    // Links `n` by seq order (from the tail: entries arrive almost in order).
    void Insert(Node* n, Link link);
    void Unlink(Node* n, Link link);
  };
  // Finds an owned node by its task.
  struct NodeHash {
    using is_transparent = void;
    size_t operator()(const TaskKey& k) const { return absl::Hash<TaskKey>{}(k); }
    size_t operator()(const std::unique_ptr<Node>& n) const {
      return (*this)(n->task);
    }
  };
  struct NodeEq {
    using is_transparent = void;
    static const TaskKey& KeyOf(const TaskKey& k) { return k; }
    static const TaskKey& KeyOf(const std::unique_ptr<Node>& n) {
      return n->task;
    }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return KeyOf(a) == KeyOf(b);
    }
  };
  struct QueueReady {
    std::string name;
    // A node map: the nodes point at their type's key.
    absl::node_hash_map<std::string, Lists> by_type;
    Lists all;  // every entry of every type
    // Owns the entries, found by task (8 bytes a slot).
    absl::flat_hash_set<std::unique_ptr<Node>, NodeHash, NodeEq> nodes;
    size_t size() const { return nodes.size(); }
    QueueLimits limits;
    int running = 0;
    double tokens = 0;
    absl::Time refilled = absl::InfinitePast();
  };
  struct Slot {
    std::shared_ptr<WorkerSession> worker;
    // Task -> queue of the tasks assigned and unfinished.
    absl::flat_hash_map<TaskKey, std::string> held;
  };

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ready queues of `queue`, made (and named) on first use.
  QueueReady& QueueFor(const std::string& queue)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // True when `q` may dispatch one more task now; refills its bucket.
  bool MayDispatch(QueueReady& q, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `task` from `q` (both lists); false when not there.
  bool EraseReady(QueueReady& q, const TaskKey& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `q` when nothing is ready, running or configured there.
  void MaybeForget(const std::string& queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(Slot& slot, const TaskKey& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The best ready entry `slot` may take, or nullptr.
  const Node* BestFor(const Slot& slot, absl::Time now, QueueReady** queue_out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StartFn start_;
  Clock* const clock_;
  const WakeFn wake_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, QueueReady> ready_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const WorkerSession*, Slot> slots_ ABSL_GUARDED_BY(mu_);
  // The earliest wake-up asked for and not yet past.
  absl::Time wake_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_DISPATCHER_H_
