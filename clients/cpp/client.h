// TaskClient: a blocking C++ client for taskd's TaskService, and TaskFuture,
// a handle on one submitted task's eventual outcome. A thin layer over
// AsyncTaskClient (async_client.h), which each TaskClient owns (copies share
// it): every blocking call starts the asynchronous call and waits for its
// Future; `co_await future` suspends without a thread of its own.
//
//   taskd::TaskClient client("127.0.0.1:50051");
//   taskd::v1::TaskSpec spec;
//   spec.set_type("resize");
//   absl::StatusOr<taskd::TaskFuture> future = client.SubmitAsync(spec);
//   if (!future.ok()) return future.status();
//   absl::StatusOr<taskd::v1::Task> done = future->Get(absl::Minutes(5));
//
// Every call returns the RPC's gRPC status as an absl::Status with the same
// code and message. A task that FAILED is not an error of the call: Get/Await
// return it OK with state TASK_STATE_FAILED and its TaskError.
//
// Thread-safety: TaskClient and TaskFuture are thread-safe and cheap to copy
// (copies share one channel and one AsyncTaskClient, i.e. one completion-queue
// thread). A TaskFuture keeps them alive, so it may outlive the TaskClient
// that made it. Blocking calls must not be made from a continuation running
// on the client's completion-queue thread (they return FAILED_PRECONDITION
// there instead of deadlocking): co_await or Then() instead.
#ifndef TASKD_CLIENTS_CPP_CLIENT_H_
#define TASKD_CLIENTS_CPP_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "api/taskd/v1/taskd.pb.h"
#include "clients/cpp/async_client.h"
#include "clients/cpp/connection.h"
#include "clients/cpp/future.h"

namespace taskd {

class TaskFuture;

class TaskClient {
 public:
  // Called for each event of a Stream; return false to stop the stream.
  using EventCallback = std::function<bool(const v1::TaskEvent&)>;

  // Connects (lazily) to `target`, e.g. "127.0.0.1:50051", without TLS.
  explicit TaskClient(const std::string& target);
  // Uses `channel`, which must not be null; `options` configure the
  // AsyncTaskClient underneath (e.g. an executor for co_await resumptions).
  explicit TaskClient(std::shared_ptr<grpc::Channel> channel,
                      AsyncTaskClient::Options options = {});
  // Connects (lazily) with TLS and/or a bearer token (connection.h).
  // INVALID_ARGUMENT as NewChannel says.
  static absl::StatusOr<TaskClient> Connect(const std::string& target,
                                            const ChannelSecurity& security);

  // SubmitTask: the created (or, with an idempotency key, the existing) task.
  absl::StatusOr<v1::SubmitTaskResponse> Submit(
      const v1::TaskSpec& spec, const CallOptions& options = {}) const;

  // SubmitTasks: all-or-nothing; the tasks in the order of `specs`.
  absl::StatusOr<std::vector<v1::Task>> SubmitBatch(
      const std::vector<v1::TaskSpec>& specs,
      const CallOptions& options = {}) const;

  // GetTask. NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Task> Get(absl::string_view id,
                               const CallOptions& options = {}) const;

  // ListTasks: one page; pass next_page_token back for the next one.
  absl::StatusOr<v1::ListTasksResponse> List(
      const v1::ListTasksRequest& request,
      const CallOptions& options = {}) const;

  // One Await RPC. `timeout` is the server-side wait (infinite = no limit of
  // its own); when it passes first the response is OK with done = false.
  absl::StatusOr<v1::AwaitResponse> Await(
      const std::vector<std::string>& ids, v1::AwaitMode mode,
      absl::Duration timeout, const CallOptions& options = {}) const;

  // Like Await, but keeps waiting (a series of bounded Await RPCs) until the
  // server reports done or `timeout` has passed, whichever is first. Returns
  // the last response: done = false means `timeout` passed first.
  absl::StatusOr<v1::AwaitResponse> AwaitUntilDone(
      const std::vector<std::string>& ids, v1::AwaitMode mode,
      absl::Duration timeout) const;

  // Cancel; idempotent on terminal tasks. Returns the task after the request.
  absl::StatusOr<v1::Task> Cancel(absl::string_view id,
                                  absl::string_view reason = "",
                                  const CallOptions& options = {}) const;

  // Stream: calls `on_event` for each TaskEvent, in order, on the calling
  // thread, until the server ends the stream (returns its status, OK when an
  // id-filtered stream completed) or `on_event` returns false (returns OK).
  absl::Status Stream(const v1::StreamRequest& request,
                      const EventCallback& on_event,
                      const CallOptions& options = {}) const;

  // Submits `spec` (one blocking SubmitTask) and returns a future for it.
  absl::StatusOr<TaskFuture> SubmitAsync(
      const v1::TaskSpec& spec, const CallOptions& options = {}) const;

  // A future for an existing task id. Does not contact the server.
  TaskFuture FutureFor(absl::string_view id) const;

  // The asynchronous client underneath (shared by every copy).
  AsyncTaskClient& async() const { return *async_; }

 private:
  std::shared_ptr<AsyncTaskClient> async_;
  std::shared_ptr<v1::TaskService::Stub> stub_;  // for Stream only
};

// The outcome of one task. Get() blocks; `co_await future` suspends a
// coroutine instead.
class TaskFuture {
 public:
  TaskFuture(TaskClient client, std::string id)
      : client_(std::move(client)), id_(std::move(id)) {}

  const std::string& id() const { return id_; }

  // Waits until the task is terminal and returns it (OK even when the task
  // FAILED or was CANCELLED). DEADLINE_EXCEEDED if `timeout` passes first;
  // other RPC errors (e.g. UNAVAILABLE, NOT_FOUND) are returned as they come.
  absl::StatusOr<v1::Task> Get(
      absl::Duration timeout = absl::InfiniteDuration()) const;

  // The same outcome as a Future (AsyncTaskClient::Await), without blocking.
  Future<v1::Task> AsFuture(
      absl::Duration timeout = absl::InfiniteDuration()) const {
    return client_.async().Await(id_, timeout);
  }

  // `co_await future` / `co_await future.WaitFor(timeout)` yields what
  // Get(timeout) would. The await is one entry in the client's multiplexed
  // Await RPCs; the coroutine resumes on the client's completion-queue
  // thread (or its executor). It must not be destroyed while suspended.
  using Awaiter = Future<v1::Task>::Awaiter;
  Awaiter WaitFor(absl::Duration timeout) const {
    return AsFuture(timeout).operator co_await();
  }
  Awaiter operator co_await() const { return WaitFor(absl::InfiniteDuration()); }

 private:
  TaskClient client_;
  std::string id_;
};

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_CLIENT_H_
