// EventLog: the server-wide, bounded ring of task events behind Stream.
//
// Every event gets the next sequence number (strictly increasing, gap-free
// within a server's life). The ring keeps the newest events within both a
// count (`capacity`) and a byte budget (`max_bytes`, each event counted at
// its encoded size plus bookkeeping), so progress spam or large error texts
// cannot grow it past its budget. Readers hold only a cursor, so a slow
// reader costs no memory: once its cursor falls out of the ring, Read
// answers OUT_OF_RANGE and the reader is ended (it may resume with a newer
// `from_sequence`).
//
// Durability: an event appended with a journal ticket is readable only once
// MarkDurable covers that ticket, and every event after it waits too (the
// readable events are always a prefix of the sequence), so Stream never
// shows a state a crash could take back. Events with ticket 0 need nothing.
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
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

// The task an event shows, kept in whatever form its producer chose and
// made into a v1::Task only when a reader reads the event (most events are
// never read: building and freeing a message per event was most of the
// log's cost).
class EventTask {
 public:
  virtual ~EventTask() = default;
  // The task as the event shows it: no payload, no result.
  virtual void Fill(v1::Task* out) const = 0;
  // What it costs to keep, counted against the byte budget.
  virtual size_t bytes() const = 0;
};

class EventLog {
 public:
  explicit EventLog(size_t capacity, uint64_t first_sequence = 1,
                    size_t max_bytes = std::numeric_limits<size_t>::max());

  // Appends an event for `task` (its payload and result are dropped: the ring
  // stays small; readers that want them fetch them from the engine). The
  // event is readable once `ticket` is durable (0: at once). Returns its
  // sequence number.
  uint64_t Append(v1::EventType type, const v1::Task& task, absl::Time time,
                  uint64_t ticket = 0) ABSL_LOCKS_EXCLUDED(mu_);
  // The same for a task made only when the event is read.
  uint64_t Append(v1::EventType type, std::unique_ptr<const EventTask> task,
                  absl::Time time, uint64_t ticket = 0)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every journal ticket up to `ticket` is durable.
  void MarkDurable(uint64_t ticket) ABSL_LOCKS_EXCLUDED(mu_);

  // Appends to `out` the readable events with sequence >= `from`, at most
  // `max`. OUT_OF_RANGE when `from` is older than the oldest retained event.
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
  // Bytes the retained events take (as counted against `max_bytes`).
  size_t bytes() const ABSL_LOCKS_EXCLUDED(mu_);

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
  struct Entry {
    std::unique_ptr<const EventTask> task;
    absl::Time time;
    uint64_t ticket;  // journal ticket that must be durable first; 0: none
    size_t bytes;
    v1::EventType type;
  };
  // Drops the oldest events beyond the count or byte budget, and moves the
  // readable end over events whose tickets are durable.
  void TrimLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceReadableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  const size_t max_bytes_;

  mutable absl::Mutex mu_;
  std::deque<Entry> ring_ ABSL_GUARDED_BY(mu_);  // front: first_seq_
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_);
  uint64_t first_seq_ ABSL_GUARDED_BY(mu_);  // oldest retained
  uint64_t readable_end_ ABSL_GUARDED_BY(mu_);  // events below are readable
  uint64_t durable_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex sub_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<uint64_t, Subscriber> subscribers_
      ABSL_GUARDED_BY(sub_mu_);
  uint64_t next_sub_id_ ABSL_GUARDED_BY(sub_mu_) = 1;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_EVENT_LOG_H_
