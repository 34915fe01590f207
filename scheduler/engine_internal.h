// Private structures of Engine shared by its .cc files. Not part of the API.
#ifndef TASKD_SCHEDULER_ENGINE_INTERNAL_H_
#define TASKD_SCHEDULER_ENGINE_INTERNAL_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "scheduler/engine.h"

namespace taskd {

// Meta key prefix of durable queue settings ("queue/<name>").
extern const char kQueueKeyPrefix[];

inline v1::TaskError MakeError(std::string code, std::string message,
                               bool retryable) {
  v1::TaskError e;
  e.set_code(std::move(code));
  e.set_message(std::move(message));
  e.set_retryable(retryable);
  return e;
}

namespace internal {

// One registered Await. `remaining` counts terminal notifications still
// needed (ids.size() for ALL, 1 for ANY); `fired` makes the callback run once.
struct Waiter {
  std::vector<std::string> ids;
  bool include_payloads = true;
  size_t max_response_bytes = 0;  // 0: no limit
  std::atomic<int64_t> remaining{0};
  std::atomic<bool> fired{false};
  Engine::AwaitCallback done;
  // The timeout's timer, cancelled once the Await is answered or withdrawn
  // (an Await timeout may be years away). Guarded by the engine's
  // waiters_mu_.
  std::optional<TimerQueue::TimerId> timer;
};

}  // namespace internal

struct Engine::Record {
  v1::Task task;
  std::string cancel_reason;
  uint64_t lease_id = 0;                 // current lease while RUNNING
  std::shared_ptr<WorkerSession> worker;  // holder of the lease
  uint64_t ready_seq = 0;                // position in the ready queue
  uint64_t ticket = 0;                   // journal ticket of the last write
  absl::Time ready_since;                // when it last became PENDING
  std::string idempotency_slot;          // key in idempotency_, or empty
  std::vector<std::shared_ptr<internal::Waiter>> waiters;
  // RUNNING after a restart with its holder not reconnected yet: the lease
  // lasts until orphaned_since + heartbeat timeout unless the worker reports.
  bool orphaned = false;
  absl::Time orphaned_since;
  // depends_on entries not SUCCEEDED yet; the task waits SCHEDULED for 0.
  int unmet_deps = 0;
  // Tasks waiting for this one to finish (told by OnDependencyDone).
  std::vector<std::string> dependents;
  // Its queue's metric handles, resolved on first use (shard lock held).
  QueueMetrics* metrics = nullptr;
  QueueMetrics* Metrics(EngineMetrics* m) {
    if (metrics == nullptr && m) metrics = m->ForQueue(task.spec().queue());
    return metrics;
  }

  ReadyEntry Ready() const {
    return ReadyEntry{task.spec().queue(), task.spec().type(),
                      task.spec().priority(), ready_seq, task.id(),
                      ready_since};
  }
};

struct Engine::Shard {
  mutable absl::Mutex mu;
  // Ordered by id (= creation time) for ListTasks paging.
  std::map<std::string, std::unique_ptr<Record>> tasks ABSL_GUARDED_BY(mu);
  // Tasks of this shard per queue and state (index = TaskState), kept by
  // Insert, Transition and removal.
  absl::flat_hash_map<std::string, std::array<int64_t, 7>> counts
      ABSL_GUARDED_BY(mu);

  void Count(const v1::Task& t, int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto& per_state = counts[t.spec().queue()];
    per_state[t.state()] += delta;
    // Queue names come from clients: a queue with no task here is forgotten.
    if (delta < 0 && std::all_of(per_state.begin(), per_state.end(),
                                 [](int64_t n) { return n == 0; })) {
      counts.erase(t.spec().queue());
    }
  }
};

// Work collected under a shard lock, done after it is released.
struct Engine::Effects {
  std::vector<std::shared_ptr<internal::Waiter>> waiters;  // a task finished
  std::vector<ReadyEntry> ready;                           // became PENDING
  std::vector<ReadyEntry> unready;                         // left PENDING
  std::vector<std::pair<std::shared_ptr<WorkerSession>, std::string>> released;
  uint64_t ticket = 0;  // journal ticket of the last write, 0 for none
  struct Finished {
    std::string dependent;
    std::string dependency;
    v1::TaskState state;  // how the dependency ended
  };
  std::vector<Finished> dependencies_done;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_ENGINE_INTERNAL_H_
