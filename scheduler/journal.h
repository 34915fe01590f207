// Journal: ordered, non-blocking writes to a Storage with group commit, and
// callbacks once a write is durable.
//
//   uint64_t ticket = journal.Write({Mutation::PutTask(task)});  // under a lock
//   ...release the lock...
//   journal.WhenDurable(ticket, [](absl::Status s) { /* acknowledge */ });
//
// Write never blocks, so the engine calls it under a task's shard lock: the
// order of writes to one task in the journal is the order of its changes.
// One committer thread takes everything queued and appends it as one batch
// (one WAL sync per group in sync mode); a notifier thread then runs the
// callbacks of the tickets it made durable, in ticket order, while the
// committer already writes the next group (answering a group's callers
// does not hold up the next sync). Callbacks must not block; they may call
// Write and WhenDurable.
//
// A failed commit is fatal for the store: every pending and later callback
// gets the error and `on_failure` runs once (the server exits, so a restart
// recovers from the last durable state instead of serving state that the
// disk does not have).
//
// Each commit is reported to an optional JournalObserver (metrics: commits,
// changes per commit, commit latency), timed with an injected Clock.
//
// Thread-safe.
#ifndef TASKD_SCHEDULER_JOURNAL_H_
#define TASKD_SCHEDULER_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "scheduler/clock.h"
#include "scheduler/storage/storage.h"

namespace taskd {

// Told about every commit, on the committer thread after the batch was
// appended (and before its callbacks run). Must not block or call the
// Journal. Implementations are thread-compatible at least.
class JournalObserver {
 public:
  virtual ~JournalObserver() = default;
  // One commit carried `changes` mutations (what one fsync made durable)
  // and its Storage::Append took `elapsed`; `ok` is false when it failed.
  virtual void OnCommit(size_t changes, absl::Duration elapsed, bool ok) = 0;
};

class Journal {
 public:
  using Callback = std::function<void(absl::Status)>;

  // `storage` (and `observer`, if any) must outlive the Journal. `clock`
  // times commits for the observer; nullptr is real time.
  Journal(Storage* storage, std::function<void(const absl::Status&)> on_failure,
          JournalObserver* observer = nullptr, Clock* clock = nullptr);
  ~Journal();  // Stop()s
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Queues `mutations`; returns their ticket (increasing from 1).
  uint64_t Write(std::vector<Mutation> mutations) ABSL_LOCKS_EXCLUDED(mu_);

  // Runs `fn` once every write up to `ticket` is durable (at once, on this
  // thread, when it already is), or with the error if the store failed.
  void WhenDurable(uint64_t ticket, Callback fn) ABSL_LOCKS_EXCLUDED(mu_);

  // Calls `fn(durable)` on the notifier thread after every commit that made
  // tickets up to `durable` durable (before that commit's callbacks). Set
  // once, before the first Write. `fn` must not block.
  void SetDurableListener(std::function<void(uint64_t durable)> fn)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The newest ticket handed out (0 before any write).
  uint64_t last_ticket() const ABSL_LOCKS_EXCLUDED(mu_);

  // Commits what is queued, runs the remaining callbacks and joins the
  // committer and the notifier. Later writes are never committed; their callbacks get
  // UNAVAILABLE. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  struct Stats {
    uint64_t commits = 0;
    uint64_t writes = 0;
  };
  Stats stats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // What one commit made durable (or failed), for the notifier.
  struct Commit {
    uint64_t durable = 0;  // 0: nothing new is durable
    std::function<void(uint64_t)> listener;
    std::vector<std::pair<Callback, absl::Status>> ready;
    absl::Status failed_now;  // this commit failed the store
  };

  void Run();     // the committer
  void Notify();  // the notifier

  Storage* const storage_;
  const std::function<void(const absl::Status&)> on_failure_;
  JournalObserver* const observer_;  // may be nullptr
  Clock* const clock_;

  mutable absl::Mutex mu_;
  std::vector<Mutation> queued_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t durable_ ABSL_GUARDED_BY(mu_) = 0;  // highest durable ticket
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  std::multimap<uint64_t, Callback> waiting_ ABSL_GUARDED_BY(mu_);
  std::function<void(uint64_t)> durable_listener_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Commits whose callbacks have not run yet, oldest first.
  std::vector<Commit> commits_ ABSL_GUARDED_BY(mu_);
  bool committer_done_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);
  std::thread committer_;
  std::thread notifier_;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_JOURNAL_H_
