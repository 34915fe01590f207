// Worker: the worker SDK. Serves tasks from taskd over one
// WorkerService.Work stream, running at most `concurrency` assignments at
// once, each with the handler registered for its type on one of the
// worker's threads (a handler that has been quick may run on the thread
// that reads the stream; reading moves to another thread if it blocks).
//
//   taskd::Worker::Options options;
//   options.target = "127.0.0.1:50051";
//   options.queues = {"images"};
//   options.concurrency = 4;
//   taskd::Worker worker(options);
//   worker.RegisterHandler("resize", Resize).IgnoreError();
//   absl::Status status = worker.Run();  // until Stop() or stream failure
//
// Outcome of an attempt, reported to the server:
// - handler returns a value: `complete` with it as the result (a result over
//   Options::max_result_bytes fails with code "result_too_large").
// - handler returns an error: `fail` with TaskErrorFromStatus(status) (see
//   task_failure.h: lowercase absl code name unless TaskFailure() was used).
// - the server cancelled the lease (CancelNotice: cancel or timeout): `fail`
//   with code "cancelled", retryable = false, whatever the handler returned.
// - the worker is stopping and the handler returned an error: `fail` with code
//   "worker_stopped", retryable = true, so another worker retries it.
// - the handler throws: `fail` with code "handler_exception".
//
// Thread-safety: all methods are thread-safe, except that handlers must be
// registered before Start(). Stop() must not be called from a handler.
#ifndef TASKD_CLIENTS_CPP_WORKER_H_
#define TASKD_CLIENTS_CPP_WORKER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clients/cpp/connection.h"
#include "clients/cpp/task_context.h"

namespace taskd {

class Worker {
 public:
  // Runs one attempt. Called on one of the worker's threads; may block.
  // Should return soon after ctx.cancelled() becomes true.
  using Handler = std::function<absl::StatusOr<std::string>(TaskContext&)>;

  struct Options {
    // Server address; ignored when `channel` is set.
    std::string target = "127.0.0.1:50051";
    // TLS and bearer token for `target` (connection.h); ignored when
    // `channel` is set.
    ChannelSecurity security;
    std::shared_ptr<grpc::Channel> channel;
    // Empty: "<hostname>-<pid>".
    std::string worker_id;
    // Queues served; empty means the server's `default` queue.
    std::vector<std::string> queues;
    // Most tasks run at once (and most unfinished assignments). At least 1.
    int concurrency = 1;
    // Period of heartbeat messages. Positive.
    absl::Duration heartbeat_interval = absl::Seconds(5);
    // Wait for the server to be reachable instead of failing at once.
    bool wait_for_ready = true;
    // How long Stop() waits for the server to close the stream after the
    // worker's last message, before cancelling the RPC.
    absl::Duration shutdown_timeout = absl::Seconds(10);
    // Largest result sent. The server advertises its own limit with each
    // assignment; the smaller of the two applies, and a bigger result fails
    // its task with code "result_too_large" (not retryable).
    size_t max_result_bytes = (4 << 20) - (64 << 10);
  };

  explicit Worker(Options options);
  // Stop()s the worker.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Registers the handler for task `type` (the `types` of the hello message
  // are exactly the registered types). INVALID_ARGUMENT for an empty type or
  // handler, ALREADY_EXISTS for a duplicate, FAILED_PRECONDITION after Start.
  absl::Status RegisterHandler(absl::string_view type, Handler handler);

  // Opens the work stream and starts the threads; does not wait for the
  // server. FAILED_PRECONDITION when no handler is registered or the worker
  // was already started; INVALID_ARGUMENT for bad options. A worker is
  // started at most once.
  absl::Status Start();

  // True once `hello` went out on the stream, waiting at most `timeout`.
  bool WaitConnected(absl::Duration timeout);

  // Start()s if needed, blocks until Stop() (from another thread) or the end
  // of the stream, then stops. Returns OK after Stop(), else why the stream
  // ended (e.g. UNAVAILABLE).
  absl::Status Run();

  // Graceful stop: takes no new work, sets every running task's cancellation
  // token, waits for the handlers to return and their outcomes to be sent,
  // half-closes the stream, waits (at most shutdown_timeout) for the server
  // to close it, and joins all threads. Idempotent; blocks until done.
  void Stop();

  // Test hook simulating a crashed worker: cancels the RPC at once, so no
  // outcome of a running task reaches the server (its lease will expire),
  // and sets every cancellation token. Call Stop() (or destroy) afterwards.
  void Abort();

  const std::string& worker_id() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_WORKER_H_
