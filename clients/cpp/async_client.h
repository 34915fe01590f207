// AsyncTaskClient: an asynchronous C++ client for taskd's TaskService. It
// owns one completion queue and one thread that polls it; every call returns
// a Future (future.h) at once, and that thread resolves it. No call blocks a
// thread and no await costs one.
//
//   taskd::AsyncTaskClient client(grpc::CreateChannel(
//       "127.0.0.1:50051", grpc::InsecureChannelCredentials()));
//   Future<v1::Task> done = client.SubmitAndAwait(spec);
//   ...
//   absl::StatusOr<v1::Task> task = co_await done;  // resumes on the CQ thread
//
// Awaits are multiplexed: Await(id) registers interest in one task; the
// client sends the ids of all outstanding awaits in Await RPCs of up to
// Options::await_batch_size ids each with AWAIT_MODE_ANY, resolves the
// futures of the tasks that became terminal when such an RPC returns, and
// re-arms the rest (merged with newly added ids). 10,000 outstanding awaits
// cost about 10,000 / await_batch_size RPCs, one thread and a few MB.
//
// Every RPC error comes back as an absl::Status with the RPC's code and
// message. A task that FAILED or was CANCELLED is not an error: Await
// resolves OK with that task.
//
// Lifetime: the destructor cancels every RPC in flight, resolves every
// pending future (CANCELLED, "client shut down"), and drains the completion
// queue. Futures outlive the client. A call made while (or after) the client
// shuts down returns a future already resolved with CANCELLED.
//
// Thread-safety: all methods are thread-safe. The destructor may run on any
// thread, including the client's own completion-queue thread (from a
// continuation that dropped the last owner); it then does not wait for the
// drain, which finishes in the background.
#ifndef TASKD_CLIENTS_CPP_ASYNC_CLIENT_H_
#define TASKD_CLIENTS_CPP_ASYNC_CLIENT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "clients/cpp/connection.h"
#include "clients/cpp/future.h"

namespace taskd {

// Per-call settings.
struct CallOptions {
  // gRPC deadline of the call, measured from its start. Infinite = none.
  absl::Duration timeout = absl::InfiniteDuration();
  // Wait for the channel to become ready instead of failing at once with
  // UNAVAILABLE while the server is unreachable (bounded by `timeout`).
  bool wait_for_ready = false;
};

// True for SUCCEEDED, FAILED and CANCELLED.
bool IsFinalState(v1::TaskState state);

class AsyncTaskClient {
 public:
  struct Options {
    // Where continuations and coroutine resumptions run; empty: on the
    // client's completion-queue thread (they must not block there).
    Executor executor;
    // Most ids in one multiplexed Await RPC, 1..1000. A task that finishes
    // makes its RPC return and the rest of its ids be sent again, so larger
    // batches mean fewer RPCs but more ids re-sent per finished task.
    int await_batch_size = 100;
    // Longest wait of one multiplexed Await RPC before it is re-armed, so a
    // silently dropped connection is noticed within a bounded time.
    absl::Duration await_poll_interval = absl::Seconds(60);
  };

  // Observability of the await multiplexer (for tests and debugging).
  struct AwaitStats {
    size_t awaited_ids = 0;       // distinct task ids with a pending await
    size_t ids_in_flight = 0;     // of those, sent in an Await RPC now
    size_t calls_in_flight = 0;   // multiplexed Await RPCs in flight
    size_t calls_started = 0;     // multiplexed Await RPCs ever started
  };

  // Uses `channel`, which must not be null. Starts the CQ thread.
  explicit AsyncTaskClient(std::shared_ptr<grpc::Channel> channel,
                           Options options);
  explicit AsyncTaskClient(std::shared_ptr<grpc::Channel> channel)
      : AsyncTaskClient(std::move(channel), Options()) {}
  // Connects (lazily) with TLS and/or a bearer token (connection.h).
  // INVALID_ARGUMENT as NewChannel says.
  static absl::StatusOr<std::unique_ptr<AsyncTaskClient>> Connect(
      const std::string& target, const ChannelSecurity& security,
      Options options);

  ~AsyncTaskClient();
  AsyncTaskClient(const AsyncTaskClient&) = delete;
  AsyncTaskClient& operator=(const AsyncTaskClient&) = delete;

  // SubmitTask: the created (or, with an idempotency key, the existing) task.
  Future<v1::SubmitTaskResponse> Submit(const v1::TaskSpec& spec,
                                        const CallOptions& options = {});
  // SubmitTasks: all-or-nothing; the tasks in the order of `specs`.
  Future<std::vector<v1::Task>> SubmitBatch(
      const std::vector<v1::TaskSpec>& specs, const CallOptions& options = {});
  // GetTask. NOT_FOUND for an unknown id.
  Future<v1::Task> Get(absl::string_view id, const CallOptions& options = {});
  // ListTasks: one page.
  Future<v1::ListTasksResponse> List(const v1::ListTasksRequest& request,
                                     const CallOptions& options = {});
  // Cancel; idempotent on terminal tasks. The task after the request.
  Future<v1::Task> Cancel(absl::string_view id, absl::string_view reason = "",
                          const CallOptions& options = {});
  // Exactly one Await RPC (not multiplexed). `timeout` is the server-side
  // wait (infinite = no limit of its own); when it passes first the response
  // is OK with done = false.
  Future<v1::AwaitResponse> AwaitOnce(const std::vector<std::string>& ids,
                                      v1::AwaitMode mode,
                                      absl::Duration timeout,
                                      const CallOptions& options = {});

  // Resolves with the task once it is terminal (multiplexed, see above), or
  // DEADLINE_EXCEEDED when `timeout` passes first, or the error of the RPC
  // that awaited it (e.g. NOT_FOUND for an unknown id, UNAVAILABLE).
  Future<v1::Task> Await(absl::string_view id,
                         absl::Duration timeout = absl::InfiniteDuration());

  // Submit, then Await: resolves with the terminal task, or the first error.
  Future<v1::Task> SubmitAndAwait(const v1::TaskSpec& spec,
                                  const CallOptions& options = {});

  // True on the client's completion-queue thread (where a blocking Get() of
  // this client's futures would deadlock).
  bool InCompletionThread() const;

  AwaitStats await_stats() const;

  class Core;  // the implementation; public only for the .cc's helpers

 private:
  std::shared_ptr<Core> core_;  // shared with the CQ thread
  std::thread thread_;
};

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_ASYNC_CLIENT_H_
