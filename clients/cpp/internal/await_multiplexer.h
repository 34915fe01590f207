// AwaitMultiplexer: many outstanding awaits of single tasks carried by few
// Await RPCs. Private to AsyncTaskClient (see async_client.h for the
// contract its Await() offers).
//
// How: every awaited id has an Entry (its waiters, and the RPC that carries
// it, if any). New ids are queued and flushed from the completion-queue
// thread, so a burst of awaits shares RPCs: full batches of `batch_size` ids
// go out at once, a partial one as the single "open" call. Each RPC is
// AWAIT_MODE_ANY with a server-side wait of `poll_interval`. When it returns,
// the futures of its terminal tasks are resolved and its other ids are
// queued again. Queued ids never start a second partial call: the open call
// is cancelled and its ids re-sent together with the new ones, so the RPC
// count stays about awaited ids / batch_size + 1.
//
// Errors: an RPC error that may come from a single id (NOT_FOUND,
// INVALID_ARGUMENT, PERMISSION_DENIED, RESOURCE_EXHAUSTED) sends each of the
// batch's ids again in an RPC of its own, so one bad id fails only its own
// futures; any other error (UNAVAILABLE, ...) fails the whole batch's.
//
// Thread-safety: thread-safe. Lock order: AwaitMultiplexer::mu_ before
// CompletionCore's. Futures are resolved with no lock held.
#ifndef TASKD_CLIENTS_CPP_INTERNAL_AWAIT_MULTIPLEXER_H_
#define TASKD_CLIENTS_CPP_INTERNAL_AWAIT_MULTIPLEXER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/async_client.h"
#include "clients/cpp/future.h"
#include "clients/cpp/internal/completion_core.h"

namespace taskd::internal {

class AwaitMultiplexer {
 public:
  struct Options {
    int batch_size = 100;                            // clamped to 1..1000
    absl::Duration poll_interval = absl::Seconds(60);  // at least 1 ms
  };

  // `core` and `stub` must outlive this object.
  AwaitMultiplexer(CompletionCore* core, v1::TaskService::Stub* stub,
                   Options options);
  AwaitMultiplexer(const AwaitMultiplexer&) = delete;
  AwaitMultiplexer& operator=(const AwaitMultiplexer&) = delete;

  // See AsyncTaskClient::Await.
  Future<v1::Task> Await(std::string id, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Resolves every pending future with CANCELLED and starts nothing more.
  // RPCs in flight are left for the core's shutdown to cancel.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  AsyncTaskClient::AwaitStats stats() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class BatchCall;
  struct Waiter {
    explicit Waiter(Executor executor) : promise(std::move(executor)) {}
    Promise<v1::Task> promise;
    uint64_t alarm = 0;  // the timeout's alarm; 0: none
  };
  struct Entry {
    std::vector<std::shared_ptr<Waiter>> waiters;
    BatchCall* call = nullptr;  // the RPC carrying the id, if any
    bool queued = false;        // in queued_, to be sent
    bool solo = false;          // sent alone (its batch failed)
  };
  using Resolution = std::pair<std::shared_ptr<Waiter>, absl::StatusOr<v1::Task>>;

  void OnBatchDone(BatchCall* call) ABSL_LOCKS_EXCLUDED(mu_);
  void OnTimeout(const std::string& id, const std::weak_ptr<Waiter>& waiter,
                 absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  void Resolve(std::vector<Resolution> resolutions) ABSL_LOCKS_EXCLUDED(mu_);

  void QueueLocked(const std::string& id, Entry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleFlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends queued ids: only full batches when `full_only`.
  void FlushLocked(bool full_only) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartCallLocked(const std::vector<std::string>& ids, bool open)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the next id of queued_ that is still to be sent; false when none.
  bool PopQueuedLocked(std::string* id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  CompletionCore* const core_;
  v1::TaskService::Stub* const stub_;
  const size_t batch_size_;
  const absl::Duration poll_interval_;

  // State below is protected by mu_.
  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Ids to send; may hold stale ids (no entry, or not `queued`): skipped.
  std::deque<std::string> queued_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<BatchCall*> calls_ ABSL_GUARDED_BY(mu_);
  BatchCall* open_call_ ABSL_GUARDED_BY(mu_) = nullptr;  // the partial one
  bool flush_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  size_t ids_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  size_t calls_started_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace taskd::internal

#endif  // TASKD_CLIENTS_CPP_INTERNAL_AWAIT_MULTIPLEXER_H_
