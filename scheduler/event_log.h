// EventLog: the server-wide, bounded ring of task events behind Stream.
//
// Every event gets the next sequence number (strictly increasing, gap-free
// within a server's life). The ring keeps the newest `capacity` events;
// readers hold only a cursor, so a slow reader costs no memory: once its
// cursor falls out of the ring, Read answers OUT_OF_RANGE and the reader is
// ended (it may resume with a newer `from_sequence`).
//
// Appends do not call subscribers; the engine calls Wake() after it released
// its own locks, so subscriber callbacks may read from the engine (GetTask,
// Read). They run under the log's subscriber lock: they must not change
// tasks (which wakes again) nor Subscribe/Unsubscribe, or they deadlock.
//
// Thread-safe.
#ifndef TASKD_SCHEDULER_EVENT_LOG_H_
#define TASKD_SCHEDULER_EVENT_LOG_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

class EventLog {
 public:
  explicit EventLog(size_t capacity, uint64_t first_sequence = 1);

  // Appends an event for `task` (its payload and result are dropped: the ring
  // stays small; readers that want them fetch them from the engine).
  // Returns the event's sequence number.
  uint64_t Append(v1::EventType type, const v1::Task& task, absl::Time time)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Appends to `out` the events with sequence >= `from`, at most `max`.
  // OUT_OF_RANGE when `from` is older than the oldest retained event.
  absl::Status Read(uint64_t from, size_t max,
                    std::vector<v1::TaskEvent>* out) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Before the first Append only: the next event gets `next` (so sequences
  // continue above those of an earlier run of the server).
  void Restart(uint64_t next) ABSL_LOCKS_EXCLUDED(mu_);

  // The sequence number the next event will get.
  uint64_t next_sequence() const ABSL_LOCKS_EXCLUDED(mu_);
  // The oldest sequence still readable.
  uint64_t first_retained() const ABSL_LOCKS_EXCLUDED(mu_);

  // Subscribers are called by Wake() (from the thread that changed tasks,
  // with no engine lock held) and by Close(). They must not block.
  using Subscriber = std::function<void()>;
  uint64_t Subscribe(Subscriber fn) ABSL_LOCKS_EXCLUDED(mu_);
  void Unsubscribe(uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);
  size_t subscriber_count() ABSL_LOCKS_EXCLUDED(sub_mu_) {
    absl::MutexLock lock(&sub_mu_);
    return subscribers_.size();
  }

  // Marks the log closed (server shutting down) and wakes every subscriber.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);
  bool closed() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t capacity_;

  mutable absl::Mutex mu_;
  std::vector<v1::TaskEvent> ring_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_);
  uint64_t first_seq_ ABSL_GUARDED_BY(mu_);  // oldest retained
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex sub_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<uint64_t, Subscriber> subscribers_
      ABSL_GUARDED_BY(sub_mu_);
  uint64_t next_sub_id_ ABSL_GUARDED_BY(sub_mu_) = 1;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_EVENT_LOG_H_
