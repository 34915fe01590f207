// Engine: owns every task and all scheduling state; no gRPC in here.
//
//   FakeClock clock;
//   Engine engine(EngineOptions{}, &clock);
//   auto submitted = engine.Submit(spec);            // PENDING, id assigned
//   auto worker = engine.ConnectWorker(hello, &sink); // sink gets assignments
//   engine.Complete(*worker, complete);               // SUCCEEDED, awaits fire
//
// Concurrency. Tasks live in shards keyed by a hash of the id, each with
// its own mutex, so work on different tasks does not contend (the lock
// order is in engine_impl.h, beside the implementation). Await callbacks
// and stream wake-ups run on the thread that caused them, with no engine
// lock held; they must not block.
//
// Thread-safe.
#ifndef TASKD_SCHEDULER_ENGINE_H_
#define TASKD_SCHEDULER_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/clock.h"
#include "scheduler/dispatcher.h"
#include "scheduler/engine_metrics.h"
#include "scheduler/event_log.h"
#include "scheduler/journal.h"
#include "scheduler/storage/storage.h"
#include "scheduler/validation.h"
#include "scheduler/worker_session.h"

namespace taskd {

struct EngineOptions {
  ValidationLimits limits;
  absl::Duration default_result_ttl = absl::Hours(24);
  absl::Duration default_heartbeat_timeout = absl::Seconds(30);
  int default_max_attempts = 3;
  absl::Duration default_initial_backoff = absl::Seconds(1);
  absl::Duration default_max_backoff = absl::Seconds(60);
  double default_backoff_multiplier = 2.0;
  // Tasks held in memory at once (any state, retained ones included).
  size_t max_tasks = 2'000'000;
  size_t event_log_capacity = 1 << 16;
  // Bytes the event log may hold; the oldest events go first.
  size_t event_log_bytes = 64 << 20;
  int max_batch_size = 1000;
  int max_await_ids = 1000;
  int max_worker_concurrency = 10'000;
  uint64_t id_seed = 0;  // 0: random; tests may fix it
  // Where changes are made durable; nullptr keeps tasks in memory only.
  // With a journal, client acknowledgements and Await releases wait until
  // the change is durable. Not owned. Its callbacks call into the engine:
  // Stop() the journal before destroying the engine.
  Journal* journal = nullptr;
  // Where task events are counted (engine_metrics.h); nullptr: nowhere.
  // Not owned; must outlive the engine.
  EngineMetrics* metrics = nullptr;
};

struct RecoveryStats {
  size_t tasks = 0;
  size_t pending = 0;
  size_t scheduled = 0;
  size_t running = 0;
  size_t terminal = 0;
  uint64_t epoch = 0;  // this run's boot epoch
  // Records set aside as unreadable (see Storage::Recover); the server
  // started without them.
  uint64_t quarantined = 0;
};

struct SubmitResult {
  v1::Task task;
  bool deduplicated = false;
};

namespace internal {
struct Waiter;
}  // namespace internal
class EngineImpl;

// Handle of a registered Await; pass it to CancelAwait.
using AwaitHandle = std::shared_ptr<internal::Waiter>;

class Engine {
 public:
  Engine(EngineOptions options, Clock* clock);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // ---- clients --------------------------------------------------------------

  // Validates and stores a task; PENDING (or SCHEDULED when it must wait).
  // With an idempotency key already used in the same queue by a retained
  // task, returns that task with deduplicated = true and creates nothing.
  absl::StatusOr<SubmitResult> Submit(const v1::TaskSpec& spec);
  // The same, answering `done` once the task is durable (at once, on this
  // thread, without a journal). `done` must not block.
  using SubmitCallback = std::function<void(absl::StatusOr<SubmitResult>)>;
  void SubmitAsync(const v1::TaskSpec& spec, SubmitCallback done);

  // All-or-nothing: one invalid spec rejects the batch, naming its index.
  absl::StatusOr<std::vector<v1::Task>> SubmitBatch(
      const google::protobuf::RepeatedPtrField<v1::TaskSpec>& specs);
  using BatchCallback =
      std::function<void(absl::StatusOr<std::vector<v1::Task>>)>;
  void SubmitBatchAsync(
      const google::protobuf::RepeatedPtrField<v1::TaskSpec>& specs,
      BatchCallback done);

  using TaskCallback = std::function<void(absl::StatusOr<v1::Task>)>;
  // The task as it stands now, terminal states included before they are
  // durable: for the engine's own use and tests. Clients get GetAsync.
  absl::StatusOr<v1::Task> Get(const std::string& id) const;
  // The task, answered once its last change is durable, so a client never
  // sees a terminal state a crash could take back. `done` must not block.
  void GetAsync(const std::string& id, TaskCallback done) const;
  absl::StatusOr<v1::ListTasksResponse> List(
      const v1::ListTasksRequest& request) const;

  // PENDING/SCHEDULED -> CANCELLED at once. RUNNING: cancel_requested is set
  // and the worker told; the task ends CANCELLED when the worker stops or its
  // lease ends. Terminal: returned unchanged.
  absl::StatusOr<v1::Task> Cancel(const std::string& id,
                                  const std::string& reason);
  void CancelAsync(const std::string& id, const std::string& reason,
                   TaskCallback done);

  // Calls `done` once, when all (or, with `any`, one) of `ids` are terminal
  // and durable, or at `deadline` with done = false, or with UNAVAILABLE at
  // Shutdown. It may run before Await returns, on the calling thread.
  // NOT_FOUND when an id is unknown, INVALID_ARGUMENT when one repeats (then
  // `done` is never called). Tasks carry their results, and their payloads
  // only with `include_payloads`; an answer that would pass
  // `max_response_bytes` (0: no limit) is RESOURCE_EXHAUSTED instead.
  using AwaitCallback = std::function<void(absl::StatusOr<v1::AwaitResponse>)>;
  struct AwaitOptions {
    bool any = false;
    absl::Time deadline = absl::InfiniteFuture();
    bool include_payloads = true;
    size_t max_response_bytes = 0;
  };
  absl::StatusOr<AwaitHandle> Await(const std::vector<std::string>& ids,
                                    const AwaitOptions& options,
                                    AwaitCallback done);
  absl::StatusOr<AwaitHandle> Await(const std::vector<std::string>& ids,
                                    bool any, absl::Time deadline,
                                    AwaitCallback done) {
    return Await(ids, AwaitOptions{any, deadline}, std::move(done));
  }
  // Withdraws an Await. True if its callback had not started and never will.
  bool CancelAwait(const AwaitHandle& handle);

  EventLog& events();

  // ---- operators (QueueService) -------------------------------------------

  // Counts per state, running, oldest pending age, pause and limits.
  // NOT_FOUND for a queue with no tasks, workers or settings.
  absl::StatusOr<v1::Queue> GetQueue(const std::string& queue) const;
  std::vector<v1::Queue> ListQueues() const;
  using QueueCallback = std::function<void(absl::StatusOr<v1::Queue>)>;
  // Durable pause/resume: a paused queue accepts submits, dispatches nothing.
  void PauseQueueAsync(const std::string& queue, bool paused,
                       QueueCallback done);
  // Changes the given limits (unset ones stay); 0 removes a limit.
  void UpdateQueueAsync(const std::string& queue,
                        std::optional<int> max_concurrency,
                        std::optional<double> max_dispatch_per_second,
                        QueueCallback done);
  // Cancels every PENDING and SCHEDULED task of the queue; answers how many.
  void PurgeQueueAsync(const std::string& queue, const std::string& reason,
                       std::function<void(absl::StatusOr<int64_t>)> done);

  // ---- workers --------------------------------------------------------------

  // Registers a worker (from its hello). Assignments and cancel notices go to
  // `sink` until DisconnectWorker.
  absl::StatusOr<std::shared_ptr<WorkerSession>> ConnectWorker(
      const v1::Hello& hello, WorkerSink* sink);
  // Ends every lease the worker holds (retried or failed, `lease_expired`).
  // After it returns the engine never touches the worker's sink again.
  void DisconnectWorker(const std::shared_ptr<WorkerSession>& worker);

  // Messages from a worker. Stale leases are ignored (OK); malformed
  // messages are INVALID_ARGUMENT naming the field.
  absl::Status Heartbeat(WorkerSession& worker);
  // A worker's sink stopped being congested: dispatch again.
  void WorkerDrained();
  absl::Status Progress(WorkerSession& worker, const v1::ProgressUpdate& msg);
  absl::Status Complete(WorkerSession& worker, const v1::Complete& msg);
  absl::Status Fail(WorkerSession& worker, const v1::Fail& msg);

  // ---- time and life cycle --------------------------------------------------

  // Rebuilds the engine from `storage` before it serves anything: tasks and
  // their queues, timers and idempotency keys. RUNNING tasks get a fresh
  // lease window (a reconnecting worker may still finish them by lease id),
  // after which they are retried per policy. Starts a new boot epoch so
  // event sequences and lease ids continue above the previous run's.
  absl::StatusOr<RecoveryStats> Recover(Storage& storage);

  // Runs every timer due now (tests call it after advancing a FakeClock).
  void ProcessTimers();
  // Arms `fn` on the engine's one timer structure (for components built on
  // the engine, e.g. periodic schedules). `fn` runs with no engine lock held.
  void ScheduleTimer(absl::Time when, std::function<void()> fn);
  // The journal changes go through, or nullptr in memory mode.
  Journal* journal() const;
  // Starts / stops a thread that runs timers as they fall due (real clock).
  void StartTimerThread();
  void StopTimerThread();

  // Answers pending Awaits UNAVAILABLE, closes the event log, refuses new
  // work. Worker disconnects after this no longer end leases.
  void Shutdown();
  bool shutting_down() const;

  size_t task_count() const;
  // Timers armed now (delays, leases, timeouts, Await timeouts, retention).
  size_t timer_count() const;
  // Summed concurrency of the connected workers: held (busy) and free.
  WorkerSlots worker_slots() const;
  // Awaits registered and not yet answered.
  size_t pending_awaits() const;
  // State changes the state machine refused (engine bugs); tests assert 0.
  uint64_t illegal_transitions() const;
  const EngineOptions& options() const;
  Clock* clock() const;

 private:
  std::unique_ptr<EngineImpl> impl_;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_ENGINE_H_
