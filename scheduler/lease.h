// Lease: who may report on a RUNNING task's attempt, and until when.
//
// A lease is granted with the attempt (a fresh id from the engine's
// counter) to one worker session. Reports (progress, complete, fail) that
// name another lease id or come from another worker are stale and ignored:
// that is what fences off a worker that lost its task. After a server
// restart the holder's session is gone: the lease is "orphaned" and may be
// claimed by whichever worker names its id, for one heartbeat timeout from
// the restart or from the last report.
//
// A value type kept in the task's record, under its shard lock.
#ifndef TASKD_SCHEDULER_LEASE_H_
#define TASKD_SCHEDULER_LEASE_H_

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "scheduler/worker_session.h"

namespace taskd {

struct Lease {
  uint64_t id = 0;  // 0: none
  std::shared_ptr<WorkerSession> holder;
  bool orphaned = false;
  absl::Time orphaned_since;

  void Grant(uint64_t lease_id, std::shared_ptr<WorkerSession> worker) {
    id = lease_id;
    holder = std::move(worker);
    orphaned = false;
  }
  // Recovered from storage: no holder until its worker reports.
  void Orphan(uint64_t lease_id, absl::Time now) {
    id = lease_id;
    holder.reset();
    orphaned = true;
    orphaned_since = now;
  }
  // Ends the lease; returns the holder (whose credit comes back), if any.
  std::shared_ptr<WorkerSession> Release() {
    id = 0;
    orphaned = false;
    return std::move(holder);
  }
  // True when `worker` may report under this lease: its holder, or anyone
  // naming an orphaned lease (the holder, reconnected after a restart).
  bool ClaimableBy(const WorkerSession& worker) const {
    return holder.get() == &worker || (orphaned && holder == nullptr);
  }
  // A report arrived: an orphaned lease's window starts again.
  void Touch(absl::Time now) {
    if (orphaned) orphaned_since = now;
  }
  // True while someone may still report (a holder, or an orphan window).
  bool Live() const { return holder != nullptr || orphaned; }
  // When the lease ends without a report, for a heartbeat timeout `hb`.
  absl::Time Expiry(absl::Duration hb) const {
    return (holder ? holder->last_seen() : orphaned_since) + hb;
  }
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_LEASE_H_
