#include "clients/cpp/client.h"

#include <algorithm>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "clients/cpp/grpc_status.h"

namespace taskd {
namespace {

// Longest single Await RPC made by AwaitUntilDone; long waits are a series of
// these, so a silently dropped connection is noticed within a bounded time.
constexpr absl::Duration kAwaitPollInterval = absl::Seconds(60);
// Extra gRPC deadline beyond the server-side wait of such an RPC.
constexpr absl::Duration kAwaitDeadlineSlack = absl::Seconds(30);

void ApplyOptions(const CallOptions& options, grpc::ClientContext* context) {
  if (options.timeout != absl::InfiniteDuration()) {
    context->set_deadline(
        absl::ToChronoTime(absl::Now() + std::max(options.timeout,
                                                  absl::ZeroDuration())));
  }
  if (options.wait_for_ready) context->set_wait_for_ready(true);
}

// Waits for `future`, which `client` resolves (each RPC is bounded by its
// own deadline, so no timeout here). On the client's own completion-queue
// thread that would never return: refused instead.
template <typename T>
absl::StatusOr<T> Wait(const AsyncTaskClient& client, const Future<T>& future) {
  if (!future.ready() && client.InCompletionThread()) {
    return absl::FailedPreconditionError(
        "blocking TaskClient call on the client's completion-queue thread "
        "(from a continuation) would deadlock; co_await or Then() instead");
  }
  return future.Get();
}

}  // namespace

TaskClient::TaskClient(const std::string& target)
    : TaskClient(grpc::CreateChannel(target,
                                     grpc::InsecureChannelCredentials())) {}

absl::StatusOr<TaskClient> TaskClient::Connect(
    const std::string& target, const ChannelSecurity& security) {
  auto channel = NewChannel(target, security);
  if (!channel.ok()) return channel.status();
  return TaskClient(*std::move(channel));
}

TaskClient::TaskClient(std::shared_ptr<grpc::Channel> channel,
                       AsyncTaskClient::Options options)
    : async_(std::make_shared<AsyncTaskClient>(channel, std::move(options))),
      stub_(std::shared_ptr<v1::TaskService::Stub>(
          v1::TaskService::NewStub(channel))) {}

absl::StatusOr<v1::SubmitTaskResponse> TaskClient::Submit(
    const v1::TaskSpec& spec, const CallOptions& options) const {
  return Wait(*async_, async_->Submit(spec, options));
}

absl::StatusOr<std::vector<v1::Task>> TaskClient::SubmitBatch(
    const std::vector<v1::TaskSpec>& specs, const CallOptions& options) const {
  return Wait(*async_, async_->SubmitBatch(specs, options));
}

absl::StatusOr<v1::Task> TaskClient::Get(absl::string_view id,
                                         const CallOptions& options) const {
  return Wait(*async_, async_->Get(id, options));
}

absl::StatusOr<v1::ListTasksResponse> TaskClient::List(
    const v1::ListTasksRequest& request, const CallOptions& options) const {
  return Wait(*async_, async_->List(request, options));
}

absl::StatusOr<v1::AwaitResponse> TaskClient::Await(
    const std::vector<std::string>& ids, v1::AwaitMode mode,
    absl::Duration timeout, const CallOptions& options) const {
  return Wait(*async_, async_->AwaitOnce(ids, mode, timeout, options));
}

absl::StatusOr<v1::AwaitResponse> TaskClient::AwaitUntilDone(
    const std::vector<std::string>& ids, v1::AwaitMode mode,
    absl::Duration timeout) const {
  const absl::Time end = timeout == absl::InfiniteDuration()
                             ? absl::InfiniteFuture()
                             : absl::Now() + timeout;
  while (true) {
    const absl::Duration wait = std::min(end - absl::Now(), kAwaitPollInterval);
    CallOptions options;
    options.timeout = std::max(wait, absl::ZeroDuration()) + kAwaitDeadlineSlack;
    absl::StatusOr<v1::AwaitResponse> response =
        Await(ids, mode, wait, options);
    if (!response.ok() || response->done() || absl::Now() >= end) {
      return response;
    }
  }
}

absl::StatusOr<v1::Task> TaskClient::Cancel(absl::string_view id,
                                            absl::string_view reason,
                                            const CallOptions& options) const {
  return Wait(*async_, async_->Cancel(id, reason, options));
}

// A blocking loop on the caller's thread by nature; it uses the synchronous
// stub rather than the completion-queue thread.
absl::Status TaskClient::Stream(const v1::StreamRequest& request,
                                const EventCallback& on_event,
                                const CallOptions& options) const {
  grpc::ClientContext context;
  ApplyOptions(options, &context);
  std::unique_ptr<grpc::ClientReader<v1::TaskEvent>> reader =
      stub_->Stream(&context, request);
  v1::TaskEvent event;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      context.TryCancel();
      while (reader->Read(&event)) {
      }
      reader->Finish();  // CANCELLED by us: not an error for the caller.
      return absl::OkStatus();
    }
  }
  return FromGrpcStatus(reader->Finish());
}

absl::StatusOr<TaskFuture> TaskClient::SubmitAsync(
    const v1::TaskSpec& spec, const CallOptions& options) const {
  absl::StatusOr<v1::SubmitTaskResponse> response = Submit(spec, options);
  if (!response.ok()) return response.status();
  return TaskFuture(*this, response->task().id());
}

TaskFuture TaskClient::FutureFor(absl::string_view id) const {
  return TaskFuture(*this, std::string(id));
}

absl::StatusOr<v1::Task> TaskFuture::Get(absl::Duration timeout) const {
  return Wait(client_.async(), AsFuture(timeout));
}

}  // namespace taskd
