// EngineImpl: the engine's implementation behind engine.h (as LevelDB keeps
// DBImpl behind db.h). Not part of the API: only scheduler/engine*.cc and
// the engine's own tests include it.
//
// State is split by concern, each with its own small interface and lock:
//   TaskStore          the tasks (sharded; MutateTask is the one way to
//                      change one) and per-queue counts   task_store.h
//   TaskRecord         one task, compact: fixed fields, the spec in one
//                      allocation, a run part once started; v1::Task is
//                      built from it for answers      task_record.h
//   Lease              who may report on a RUNNING attempt    lease.h
//   AwaitTable         registered Awaits, per-task waiters  await_table.h
//   DependencyTracker  who waits on whom (depends_on)  dependency_tracker.h
//   Dispatcher         ready queues by task key, workers, credit
//                                                       dispatcher.h
//   EventLog           recent events as TaskSnapshots, made into messages
//                      when a Stream reads them        event_log.h
//   Journal            writes (encoded here) grouped by a committer thread;
//                      a notifier thread answers each group   journal.h
//   TimerQueue, TaskIdGenerator.
// This class holds what spans them: the state machine (Transition, Finish,
// EndAttempt), the Effects collected under a task's lock and applied after
// it (Apply), idempotency keys and queue settings.
//
// Lock order (never the reverse, never two shard locks at once):
//   idempotency_mu_ -> shard ; Dispatcher::mu_ -> shard ;
//   queue_settings_mu_ -> Dispatcher::mu_ -> shard ;
//   shard -> EventLog / TimerQueue / Journal / WorkerSink /
//   DependencyTracker (leaves) ; shard -> AwaitTable -> TimerQueue.
// AwaitTable reads tasks (to answer) with no lock of its own held.
#ifndef TASKD_SCHEDULER_ENGINE_IMPL_H_
#define TASKD_SCHEDULER_ENGINE_IMPL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/await_table.h"
#include "scheduler/clock.h"
#include "scheduler/dependency_tracker.h"
#include "scheduler/dispatcher.h"
#include "scheduler/engine.h"
#include "scheduler/event_log.h"
#include "scheduler/journal.h"
#include "scheduler/storage/storage.h"
#include "scheduler/task_id.h"
#include "scheduler/task_store.h"
#include "scheduler/timer_queue.h"
#include "scheduler/worker_session.h"

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

// The key of an idempotency entry ("queue\0key"), or "" without a key.
inline std::string IdempotencySlot(absl::string_view queue,
                                   absl::string_view key) {
  if (key.empty()) return "";
  return absl::StrCat(queue, absl::string_view("\0", 1), key);
}
inline std::string IdempotencySlot(absl::string_view queue,
                                   const v1::TaskSpec& spec) {
  return IdempotencySlot(queue, spec.idempotency_key());
}

class EngineImpl {
 public:
  using SubmitCallback = Engine::SubmitCallback;
  using BatchCallback = Engine::BatchCallback;
  using TaskCallback = Engine::TaskCallback;
  using AwaitCallback = Engine::AwaitCallback;
  using AwaitOptions = Engine::AwaitOptions;
  using QueueCallback = Engine::QueueCallback;

  EngineImpl(EngineOptions options, Clock* clock);
  ~EngineImpl();

  // The operations of Engine (see engine.h).
  void SubmitAsync(const v1::TaskSpec& spec, SubmitCallback done);
  void SubmitBatchAsync(
      const google::protobuf::RepeatedPtrField<v1::TaskSpec>& specs,
      BatchCallback done);
  absl::StatusOr<v1::Task> Get(const std::string& id) const;
  void GetAsync(const std::string& id, TaskCallback done) const;
  absl::StatusOr<v1::ListTasksResponse> List(
      const v1::ListTasksRequest& request) const;
  void CancelAsync(const std::string& id, const std::string& reason,
                   TaskCallback done);
  absl::StatusOr<AwaitHandle> Await(const std::vector<std::string>& ids,
                                    const AwaitOptions& options,
                                    AwaitCallback done);
  bool CancelAwait(const AwaitHandle& handle) {
    return awaits_.Withdraw(handle);
  }

  absl::StatusOr<v1::Queue> GetQueue(const std::string& queue) const;
  std::vector<v1::Queue> ListQueues() const;
  void PauseQueueAsync(const std::string& queue, bool paused,
                       QueueCallback done);
  void UpdateQueueAsync(const std::string& queue,
                        std::optional<int> max_concurrency,
                        std::optional<double> max_dispatch_per_second,
                        QueueCallback done);
  void PurgeQueueAsync(const std::string& queue, const std::string& reason,
                       std::function<void(absl::StatusOr<int64_t>)> done);

  absl::StatusOr<std::shared_ptr<WorkerSession>> ConnectWorker(
      const v1::Hello& hello, WorkerSink* sink);
  void DisconnectWorker(const std::shared_ptr<WorkerSession>& worker);
  absl::Status Heartbeat(WorkerSession& worker);
  absl::Status Progress(WorkerSession& worker, const v1::ProgressUpdate& msg);
  absl::Status Complete(WorkerSession& worker, const v1::Complete& msg);
  absl::Status Fail(WorkerSession& worker, const v1::Fail& msg);

  absl::StatusOr<RecoveryStats> Recover(Storage& storage);
  void ProcessTimers() { timers_.RunDue(clock_->Now()); }
  void StartTimerThread();
  void StopTimerThread();
  void Shutdown();

  // Constant after construction.
  const EngineOptions options_;
  Clock* const clock_;

  TaskStore store_;
  TaskIdGenerator ids_;
  EventLog events_;
  TimerQueue timers_;
  AwaitTable awaits_;
  DependencyTracker dependencies_;
  Dispatcher dispatcher_;
  std::atomic<uint64_t> next_lease_{1};
  std::atomic<uint64_t> next_ready_seq_{1};
  std::atomic<bool> shutting_down_{false};
  std::atomic<uint64_t> illegal_transitions_{0};

 private:
  // Work collected under a task's shard lock, done after it is released.
  struct Effects {
    std::vector<AwaitTable::WaiterPtr> waiters;  // a task finished
    std::vector<ReadyEntry> ready;               // became PENDING
    std::vector<ReadyEntry> unready;             // left PENDING
    std::vector<std::pair<std::shared_ptr<WorkerSession>, TaskKey>> released;
    uint64_t ticket = 0;  // journal ticket of the last write, 0 for none
    struct Finished {
      std::string dependent;
      std::string dependency;
      v1::TaskState state;  // how the dependency ended; UNSPECIFIED: link
    };
    std::vector<Finished> dependencies_done;
  };

  // Where a PENDING record sits in the dispatcher's ready queues (`seq`:
  // its place in FIFO order; removal needs none).
  static ReadyEntry ReadyOf(const TaskRecord& r, uint64_t seq = 0) {
    return ReadyEntry{std::string(r.spec.queue()), std::string(r.spec.type()),
                      r.spec.priority(), seq, r.key, r.ready_since()};
  }
  absl::Status CheckSpec(const v1::TaskSpec& spec,
                         absl::string_view path) const;
  // INVALID_ARGUMENT naming the entry when a dependency is unknown.
  absl::Status CheckDependenciesExist(const v1::TaskSpec& spec,
                                      absl::string_view path) const;
  // Builds a new record for a validated spec (not yet stored).
  absl::StatusOr<std::unique_ptr<TaskRecord>> NewRecord(
      const v1::TaskSpec& spec, absl::Time now);
  // Stores `record` and collects its initial effects. Caller holds no lock
  // but idempotency_mu_ when the spec has a key.
  v1::Task Insert(std::unique_ptr<TaskRecord> record, Effects& fx);
  // The task of a retained idempotency key (deduplicated submit).
  std::optional<v1::Task> Deduplicate(const v1::TaskSpec& spec,
                                      const std::string& slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(idempotency_mu_);

  // ---- the state machine; the record's shard lock is held (MutateTask) ----
  void Transition(TaskRecord& r, v1::TaskState to);
  void Emit(TaskRecord& r, v1::EventType type, Effects& fx);
  void MakeReady(TaskRecord& r, Effects& fx);
  void Finish(TaskRecord& r, v1::TaskState to, Effects& fx);
  // Ends the running attempt with `error`: retry (back-off) or final failure;
  // CANCELLED instead when a cancel was requested.
  void EndAttempt(TaskRecord& r, v1::TaskError error, Effects& fx);
  void ReleaseWorker(TaskRecord& r, Effects& fx);
  // Journals the record's current state.
  void Persist(TaskRecord& r, Effects& fx);
  // Tells the lease holder (if any) to stop the attempt.
  static void SendCancelNotice(const TaskRecord& r, const std::string& reason);
  // The delay before retry `attempt` + 1 under policy `p`.
  absl::Duration Backoff(const v1::RetryPolicy& p, int attempt);
  absl::Duration HeartbeatTimeout(const TaskRecord& r) const;
  // How long a finished task is kept.
  absl::Duration ResultTtl(const TaskRecord& r) const;
  // Runs `change` on task `id` if it is RUNNING under `lease_id` (and, with
  // `worker`, claimable by it), then applies its effects; a stale lease
  // changes nothing.
  void MutateLeased(const std::string& id, uint64_t lease_id,
                    const WorkerSession* worker,
                    const std::function<void(TaskRecord&, Effects&)>& change);

  // Applies effects collected under a shard lock; no lock held. Await
  // releases and `done` wait until fx's journal writes are durable.
  void Apply(Effects& fx, Journal::Callback done = nullptr);
  // Works through dependency outcomes, and the outcomes they cause in turn,
  // with a worklist: a cancelled chain of any length uses constant stack.
  void RunDependencyWork(Effects& fx);
  // Registers `dependent` with `dependency`, or collects the outcome in `fx`
  // at once when the dependency already finished. No lock held.
  void LinkDependency(const std::string& dependent,
                      const std::string& dependency, Effects& fx);
  // `dependency` of task `dependent` ended in `state`. No lock held.
  void OnDependencyDone(const std::string& dependent,
                        const std::string& dependency, v1::TaskState state,
                        Effects& fx);

  // Called by the Dispatcher with its lock held.
  bool StartTask(const TaskKey& task,
                 const std::shared_ptr<WorkerSession>& worker);
  // Timer callbacks.
  void OnScheduleDue(const std::string& id);
  void OnLeaseCheck(const std::string& id, uint64_t lease_id);
  void OnAttemptTimeout(const std::string& id, uint64_t lease_id);
  void OnRetentionDue(const std::string& id);

  // Applies `edit` to the queue's limits, journals them, answers `done`.
  void ChangeQueueLimits(const std::string& queue,
                         const std::function<void(QueueLimits&)>& edit,
                         QueueCallback done);

  // Idempotency keys: "queue\0key" -> task id.
  mutable absl::Mutex idempotency_mu_;
  absl::flat_hash_map<std::string, std::string> idempotency_
      ABSL_GUARDED_BY(idempotency_mu_);

  // Serializes queue-setting changes so their journal writes keep order.
  absl::Mutex queue_settings_mu_;

  absl::Mutex rng_mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(rng_mu_);

  std::atomic<bool> timer_thread_stop_{false};
  std::thread timer_thread_;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_ENGINE_IMPL_H_
