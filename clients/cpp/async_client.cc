#include "clients/cpp/async_client.h"

#include <grpcpp/alarm.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/grpc_status.h"
#include "clients/cpp/internal/await_multiplexer.h"
#include "clients/cpp/internal/completion_core.h"

namespace taskd {
namespace {

void ApplyOptions(const CallOptions& options, grpc::ClientContext* context) {
  if (options.timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(
        absl::Now() + std::max(options.timeout, absl::ZeroDuration())));
  }
  if (options.wait_for_ready) context->set_wait_for_ready(true);
}

absl::Status ShutDownError() {
  return absl::CancelledError("AsyncTaskClient shut down");
}

}  // namespace

bool IsFinalState(v1::TaskState state) {
  return state == v1::TASK_STATE_SUCCEEDED || state == v1::TASK_STATE_FAILED ||
         state == v1::TASK_STATE_CANCELLED;
}

// One unary RPC: owns its context, request and response, and deletes itself
// when its Finish tag comes back (the only operation it has in flight).
template <typename Request, typename Response, typename Result>
class UnaryCall final : public internal::CompletionTag {
 public:
  using Convert = Result (*)(Response&);

  UnaryCall(internal::CompletionCore* core, Request request,
            Promise<Result> promise, Convert convert)
      : core_(core),
        request_(std::move(request)),
        promise_(std::move(promise)),
        convert_(convert) {}

  grpc::ClientContext* context() { return &context_; }
  const Request& request() const { return request_; }
  void Start(
      std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader) {
    reader_ = std::move(reader);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }

  // `ok` is always true for a Finish tag; the status carries any error.
  void Complete(bool /*ok*/) override {
    core_->OpDone(&context_);
    absl::StatusOr<Result> result =
        status_.ok() ? absl::StatusOr<Result>(convert_(response_))
                     : absl::StatusOr<Result>(FromGrpcStatus(status_));
    Promise<Result> promise = std::move(promise_);
    delete this;
    promise.Set(std::move(result));  // continuations may end the client
  }

 private:
  internal::CompletionCore* const core_;
  grpc::ClientContext context_;
  const Request request_;
  Response response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader_;
  Promise<Result> promise_;
  const Convert convert_;
};

// Everything the CQ thread needs. Shared by the AsyncTaskClient and its CQ
// thread; every tag on the CQ refers to it by raw pointer, which is safe
// because the CQ thread keeps its reference until the CQ is drained, i.e.
// until the in-flight count (CompletionCore) has returned to zero.
class AsyncTaskClient::Core final : public internal::CompletionCore {
 public:
  Core(std::shared_ptr<grpc::Channel> channel, Options options)
      : internal::CompletionCore(options.executor),
        options_(std::move(options)),
        stub_(v1::TaskService::NewStub(channel)),
        awaits_(this, stub_.get(),
                internal::AwaitMultiplexer::Options{
                    options_.await_batch_size, options_.await_poll_interval}) {}

  void Shutdown() {
    awaits_.Shutdown();
    internal::CompletionCore::Shutdown();
  }

  template <typename Request, typename Response, typename Result>
  Future<Result> Unary(
      std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> (
          v1::TaskService::Stub::*prepare)(grpc::ClientContext*,
                                           const Request&,
                                           grpc::CompletionQueue*),
      Request request, const CallOptions& options,
      Result (*convert)(Response&)) {
    Promise<Result> promise(executor());
    Future<Result> future = promise.future();
    auto* call = new UnaryCall<Request, Response, Result>(
        this, std::move(request), std::move(promise), convert);
    ApplyOptions(options, call->context());
    const bool started = StartOp(call->context(), [&] {
      call->Start((stub_.get()->*prepare)(call->context(), call->request(),
                                          cq()));
    });
    if (!started) {
      delete call;
      return Future<Result>::Ready(ShutDownError());
    }
    return future;
  }

  internal::AwaitMultiplexer& awaits() { return awaits_; }

 private:
  const Options options_;
  const std::unique_ptr<v1::TaskService::Stub> stub_;
  internal::AwaitMultiplexer awaits_;
};

AsyncTaskClient::AsyncTaskClient(std::shared_ptr<grpc::Channel> channel,
                                 Options options)
    : core_(std::make_shared<Core>(std::move(channel), std::move(options))) {
  // The thread owns a reference: it may outlive this object (see ~).
  thread_ = std::thread([core = core_] { core->Poll(); });
}

absl::StatusOr<std::unique_ptr<AsyncTaskClient>> AsyncTaskClient::Connect(
    const std::string& target, const ChannelSecurity& security,
    Options options) {
  auto channel = NewChannel(target, security);
  if (!channel.ok()) return channel.status();
  return std::make_unique<AsyncTaskClient>(*std::move(channel),
                                           std::move(options));
}

AsyncTaskClient::~AsyncTaskClient() {
  core_->Shutdown();
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // we are a continuation on it: it drains after us
  } else {
    thread_.join();
  }
}

bool AsyncTaskClient::InCompletionThread() const {
  return core_->InCompletionThread();
}

AsyncTaskClient::AwaitStats AsyncTaskClient::await_stats() const {
  return core_->awaits().stats();
}

Future<v1::SubmitTaskResponse> AsyncTaskClient::Submit(
    const v1::TaskSpec& spec, const CallOptions& options) {
  v1::SubmitTaskRequest request;
  *request.mutable_task() = spec;
  return core_->Unary(
      &v1::TaskService::Stub::PrepareAsyncSubmitTask, std::move(request),
      options, +[](v1::SubmitTaskResponse& r) { return std::move(r); });
}

Future<std::vector<v1::Task>> AsyncTaskClient::SubmitBatch(
    const std::vector<v1::TaskSpec>& specs, const CallOptions& options) {
  v1::SubmitTasksRequest request;
  for (const v1::TaskSpec& spec : specs) *request.add_tasks() = spec;
  return core_->Unary(&v1::TaskService::Stub::PrepareAsyncSubmitTasks,
                      std::move(request), options,
                      +[](v1::SubmitTasksResponse& r) {
                        return std::vector<v1::Task>(
                            std::make_move_iterator(r.mutable_tasks()->begin()),
                            std::make_move_iterator(r.mutable_tasks()->end()));
                      });
}

Future<v1::Task> AsyncTaskClient::Get(absl::string_view id,
                                      const CallOptions& options) {
  v1::GetTaskRequest request;
  request.set_id(std::string(id));
  return core_->Unary(&v1::TaskService::Stub::PrepareAsyncGetTask,
                      std::move(request), options,
                      +[](v1::Task& t) { return std::move(t); });
}

Future<v1::ListTasksResponse> AsyncTaskClient::List(
    const v1::ListTasksRequest& request, const CallOptions& options) {
  return core_->Unary(&v1::TaskService::Stub::PrepareAsyncListTasks,
                      v1::ListTasksRequest(request), options,
                      +[](v1::ListTasksResponse& r) { return std::move(r); });
}

Future<v1::Task> AsyncTaskClient::Cancel(absl::string_view id,
                                         absl::string_view reason,
                                         const CallOptions& options) {
  v1::CancelRequest request;
  request.set_id(std::string(id));
  request.set_reason(std::string(reason));
  return core_->Unary(&v1::TaskService::Stub::PrepareAsyncCancel,
                      std::move(request), options,
                      +[](v1::Task& t) { return std::move(t); });
}

Future<v1::AwaitResponse> AsyncTaskClient::AwaitOnce(
    const std::vector<std::string>& ids, v1::AwaitMode mode,
    absl::Duration timeout, const CallOptions& options) {
  v1::AwaitRequest request;
  for (const std::string& id : ids) request.add_ids(id);
  request.set_mode(mode);
  if (timeout != absl::InfiniteDuration()) {
    // 0 would mean "no limit" to the server; the smallest real wait is 1 ms.
    internal::ToProtoDuration(std::max(timeout, absl::Milliseconds(1)),
                    request.mutable_timeout());
  }
  return core_->Unary(&v1::TaskService::Stub::PrepareAsyncAwait,
                      std::move(request), options,
                      +[](v1::AwaitResponse& r) { return std::move(r); });
}

Future<v1::Task> AsyncTaskClient::Await(absl::string_view id,
                                        absl::Duration timeout) {
  return core_->awaits().Await(std::string(id), timeout);
}

Future<v1::Task> AsyncTaskClient::SubmitAndAwait(const v1::TaskSpec& spec,
                                                 const CallOptions& options) {
  // No executor of its own: it is resolved from a continuation that already
  // runs where this client's continuations run.
  Promise<v1::Task> promise;
  Future<v1::Task> future = promise.future();
  // The continuation owns a reference to the core (it may run while the
  // client shuts down; Await then resolves CANCELLED).
  Submit(spec, options)
      .Then([core = core_, promise](
                const absl::StatusOr<v1::SubmitTaskResponse>& submitted) {
        if (!submitted.ok()) {
          promise.Set(submitted.status());
          return;
        }
        if (IsFinalState(submitted->task().state())) {  // e.g. deduplicated
          promise.Set(submitted->task());
          return;
        }
        core->awaits()
            .Await(submitted->task().id(), absl::InfiniteDuration())
            .Then([promise](const absl::StatusOr<v1::Task>& done) {
              promise.Set(done);
            });
      });
  return future;
}

}  // namespace taskd
