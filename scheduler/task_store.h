// TaskStore: every task the engine holds, in memory, with per-queue counts.
//
//   TaskStore store;
//   store.Insert(std::move(record), [&](TaskRecord& r) { ... });
//   bool found = store.MutateTask(id, [&](TaskRecord& r) {
//     store.SetState(r, v1::TASK_STATE_RUNNING);   // keeps counts right
//   });
//
// Tasks live in shards keyed by a hash of the id, each with its own mutex,
// so work on different tasks does not contend. MutateTask is the one way to
// change a task: it finds the record, locks its shard, and runs the change
// with the lock held; the function must not take another shard's lock (no
// MutateTask/Read inside one) and must not block. Locks it may take inside:
// the leaves of the engine's lock order (event log, timers, journal, worker
// sinks, await table, dependency tracker).
//
// Thread-safe.
#ifndef TASKD_SCHEDULER_TASK_STORE_H_
#define TASKD_SCHEDULER_TASK_STORE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/task_id.h"
#include "scheduler/task_record.h"

namespace taskd {

// Tasks of one queue per TaskState (index = state).
using StateCounts = std::array<int64_t, 7>;

class TaskStore {
 public:
  explicit TaskStore(size_t shards = 32);
  TaskStore(const TaskStore&) = delete;
  TaskStore& operator=(const TaskStore&) = delete;

  // Runs `fn(record)` with the record's shard locked. False (and `fn` not
  // run) when no task has that id.
  template <class Fn>
  bool MutateTask(const std::string& id, Fn&& fn) const {
    const std::optional<TaskKey> key = TaskKeyOf(id);
    if (!key) return false;  // not an id any task could have
    return MutateTask(*key, std::forward<Fn>(fn));
  }
  template <class Fn>
  bool MutateTask(const TaskKey& key, Fn&& fn) const {
    Shard& shard = ShardFor(key);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.tasks.find(key);
    if (it == shard.tasks.end()) return false;
    fn(*it->second);
    return true;
  }
  // The same for reading; `fn` gets a const record.
  template <class Fn>
  bool Read(const std::string& id, Fn&& fn) const {
    return MutateTask(id, [&](const TaskRecord& r) { fn(r); });
  }
  bool Contains(const std::string& id) const;

  // Stores `record` (its key must be new), then runs `fn(record)` under the
  // same lock: the record is visible to others only with fn's changes made.
  void Insert(std::unique_ptr<TaskRecord> record,
              const std::function<void(TaskRecord&)>& fn);
  // Removes task `id` if `keep` (run under the lock) says false; returns the
  // removed record, or nullptr.
  std::unique_ptr<TaskRecord> EraseUnless(
      const std::string& id,
      const std::function<bool(const TaskRecord&)>& keep);

  // Changes the state of `r` and its queue's counts. Only inside
  // MutateTask/Insert on that record (its shard lock held).
  void SetState(TaskRecord& r, v1::TaskState to) const;

  size_t size() const;
  // Counts of one queue, of every queue (by name).
  StateCounts CountsOf(const std::string& queue) const;
  std::map<std::string, StateCounts> AllCounts() const;

  // Ids greater than `after`, in id order (= creation order), for which
  // `match` is true; at most `limit_per_shard` from each shard, so the first
  // `limit_per_shard` of the result are exactly the first that many matches.
  std::vector<std::string> IdsAfter(
      const std::string& after, size_t limit_per_shard,
      const std::function<bool(const TaskRecord&)>& match) const;

 private:
  struct Shard {
    mutable absl::Mutex mu;
    // Ordered by id (= creation time) for ListTasks paging; keyed by the
    // id's 16 bytes in a B-tree (about 30 bytes an entry, where a std::map
    // on string ids took about 120).
    absl::btree_map<TaskKey, std::unique_ptr<TaskRecord>> tasks
        ABSL_GUARDED_BY(mu);
    absl::flat_hash_map<std::string, StateCounts> counts ABSL_GUARDED_BY(mu);
    void Count(const TaskRecord& r, int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  };

  Shard& ShardFor(const TaskKey& key) const {
    return *shards_[absl::Hash<TaskKey>{}(key) % shards_.size()];
  }

  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<size_t> size_{0};
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_TASK_STORE_H_
