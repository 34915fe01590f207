// The in-process C++ SDK worker (clients/cpp/worker.h) of taskd_bench's end
// to end runs: a no-op handler for kTaskType on kQueue that counts what it
// ran, so the benchmark can wait for a number of tasks without polling.
//
//   TaskCounter counter;
//   absl::StatusOr<std::unique_ptr<Worker>> worker =
//       StartNoopWorker(server.target(), 50, &counter);
//   ... submit n tasks ...
//   counter.WaitFor(n, deadline);
//   AwaitTerminal(*stub, counter.Recent(), deadline);  // the server agrees
//
// TaskCounter is thread-safe.
#ifndef TASKD_TESTS_BENCH_BENCH_WORKER_H_
#define TASKD_TESTS_BENCH_BENCH_WORKER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/worker.h"

namespace taskd::bench {

// Counts the tasks a worker's handler ran and remembers the latest ids.
class TaskCounter {
 public:
  // Ids kept by Recent(): more than a worker's concurrency, so that every
  // outcome sent before the last ones is among them or earlier on the
  // stream (a worker sends its outcomes in about the order they finish).
  static constexpr size_t kRecent = 128;

  void Record(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits until at least `n` were recorded or `deadline` passes; returns
  // the count then.
  int64_t WaitFor(int64_t n, absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t count() const ABSL_LOCKS_EXCLUDED(mu_);
  // The latest kRecent ids (fewer at first), oldest first.
  std::vector<std::string> Recent() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::string> recent_ ABSL_GUARDED_BY(mu_);
};

// A started SDK Worker serving kQueue with `concurrency`, whose handler for
// kTaskType returns an empty result at once after counting the task in
// `counter` (which must outlive the worker). Waits (at most 10 s) until its
// hello went out.
absl::StatusOr<std::unique_ptr<Worker>> StartNoopWorker(
    const std::string& target, int concurrency, TaskCounter* counter);

// Waits until every task of `ids` is terminal on the server (one Await,
// mode ALL), at most until `deadline`. An error when the call fails or a
// task did not succeed.
absl::Status AwaitSucceeded(v1::TaskService::Stub& stub,
                            const std::vector<std::string>& ids,
                            absl::Time deadline);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_BENCH_WORKER_H_
