// Client load for taskd_bench: one client keeping a fixed number of unary
// calls in flight from one completion-queue thread (the caller's), bounded
// in both calls and time, with per-call latencies.
//
//   v1::SubmitTaskRequest request = ...;
//   CallStarter start = UnaryStarter<v1::SubmitTaskResponse>(
//       [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
//         return stub->PrepareAsyncSubmitTask(context, request, cq);
//       },
//       /*items=*/1);
//   LoadResult r = RunLoad({.calls = 20000, .in_flight = 64}, start);
//   std::printf("%.0f tasks/s\n", r.ItemsPerSecond());
//
// The same code drives the null-RPC baseline and taskd, so their figures
// differ only by the server. Thread-compatible: one RunLoad per thread.
#ifndef TASKD_TESTS_BENCH_LOAD_H_
#define TASKD_TESTS_BENCH_LOAD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/status.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace taskd::bench {

// One unary call in flight. RunLoad owns it from start to completion.
struct PendingCall {
  virtual ~PendingCall() = default;

  grpc::ClientContext context;
  grpc::Status status;
  absl::Time start;
  int items = 1;  // tasks the call carries (a batch carries many)
};

// Makes and starts one call on `cq` with the given deadline; its completion
// tag must be the returned object.
using CallStarter = std::function<std::unique_ptr<PendingCall>(
    grpc::CompletionQueue* cq, absl::Time deadline)>;

// A starter for calls made by `prepare(context, cq)`, a generated stub's
// PrepareAsync<Method>, each carrying `items` tasks.
template <typename Response, typename Prepare>
CallStarter UnaryStarter(Prepare prepare, int items) {
  struct Call final : PendingCall {
    Response response;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
  };
  return [prepare, items](grpc::CompletionQueue* cq,
                          absl::Time deadline) -> std::unique_ptr<PendingCall> {
    auto call = std::make_unique<Call>();
    call->items = items;
    call->context.set_deadline(absl::ToChronoTime(deadline));
    call->start = absl::Now();
    call->reader = prepare(&call->context, cq);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call.get());
    return call;
  };
}

// Runs one call made by `prepare(context, cq)` on `cq` (the caller's, used
// by no one else meanwhile) and waits for it: the same client path as
// RunLoad's, for calls that depend on the previous answer.
template <typename Response, typename Prepare>
grpc::Status CallOnce(grpc::CompletionQueue& cq, Prepare prepare,
                      absl::Time deadline, Response* response) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  auto reader = prepare(&context, &cq);
  reader->StartCall();
  grpc::Status status;
  reader->Finish(response, &status, &context);
  void* tag = nullptr;
  bool ok = false;
  // The call has a deadline, so Next() returns; its tag is the only one.
  if (!cq.Next(&tag, &ok) || !ok) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        "completion queue returned not ok");
  }
  return status;
}

struct LoadShape {
  int64_t calls = 1;  // calls started at most
  int in_flight = 1;  // calls outstanding at once
  // No call starts after this much time has passed since the first one.
  absl::Duration time_limit = absl::Seconds(60);
  // Each call's deadline, from its start.
  absl::Duration call_timeout = absl::Seconds(30);
};

struct LoadResult {
  int64_t calls_ok = 0;
  int64_t calls_failed = 0;
  int64_t items_ok = 0;              // tasks carried by successful calls
  std::string first_error;           // of the first failed call
  bool time_limited = false;         // stopped by time_limit before `calls`
  absl::Duration elapsed;            // first start to last completion
  std::vector<double> latencies_us;  // of the successful calls, in order

  double ItemsPerSecond() const;
};

// Runs `shape` with calls from `start`; returns when every call started has
// completed.
LoadResult RunLoad(const LoadShape& shape, const CallStarter& start);

// Shuts `cq` down and takes whatever is left (nothing, after CallOnce), so
// it may be destroyed.
void ShutdownAndDrain(grpc::CompletionQueue& cq);

// The q-quantile (0..1) of `values` (sorted in place); 0 when empty.
double Quantile(std::vector<double>& values, double q);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_LOAD_H_
