#include "clients/cpp/client.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/str_cat.h"
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

void ToProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

}  // namespace

bool IsTerminal(v1::TaskState state) {
  return state == v1::TASK_STATE_SUCCEEDED || state == v1::TASK_STATE_FAILED ||
         state == v1::TASK_STATE_CANCELLED;
}

TaskClient::TaskClient(const std::string& target)
    : TaskClient(grpc::CreateChannel(target,
                                     grpc::InsecureChannelCredentials())) {}

absl::StatusOr<TaskClient> TaskClient::Connect(
    const std::string& target, const ChannelSecurity& security) {
  auto channel = NewChannel(target, security);
  if (!channel.ok()) return channel.status();
  return TaskClient(*std::move(channel));
}

TaskClient::TaskClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      stub_(std::shared_ptr<v1::TaskService::Stub>(
          v1::TaskService::NewStub(channel_))) {}

absl::StatusOr<v1::SubmitTaskResponse> TaskClient::Submit(
    const v1::TaskSpec& spec, const CallOptions& options) const {
  grpc::ClientContext context;
  ApplyOptions(options, &context);
  v1::SubmitTaskRequest request;
  *request.mutable_task() = spec;
  v1::SubmitTaskResponse response;
  grpc::Status status = stub_->SubmitTask(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<std::vector<v1::Task>> TaskClient::SubmitBatch(
    const std::vector<v1::TaskSpec>& specs, const CallOptions& options) const {
  grpc::ClientContext context;
  ApplyOptions(options, &context);
  v1::SubmitTasksRequest request;
  for (const v1::TaskSpec& spec : specs) *request.add_tasks() = spec;
  v1::SubmitTasksResponse response;
  grpc::Status status = stub_->SubmitTasks(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return std::vector<v1::Task>(response.tasks().begin(),
                               response.tasks().end());
}

absl::StatusOr<v1::Task> TaskClient::Get(absl::string_view id,
                                         const CallOptions& options) const {
  grpc::ClientContext context;
  ApplyOptions(options, &context);
  v1::GetTaskRequest request;
  request.set_id(std::string(id));
  v1::Task task;
  grpc::Status status = stub_->GetTask(&context, request, &task);
  if (!status.ok()) return FromGrpcStatus(status);
  return task;
}

absl::StatusOr<v1::ListTasksResponse> TaskClient::List(
    const v1::ListTasksRequest& request, const CallOptions& options) const {
  grpc::ClientContext context;
  ApplyOptions(options, &context);
  v1::ListTasksResponse response;
  grpc::Status status = stub_->ListTasks(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::AwaitResponse> TaskClient::Await(
    const std::vector<std::string>& ids, v1::AwaitMode mode,
    absl::Duration timeout, const CallOptions& options) const {
  grpc::ClientContext context;
  ApplyOptions(options, &context);
  v1::AwaitRequest request;
  for (const std::string& id : ids) request.add_ids(id);
  request.set_mode(mode);
  if (timeout != absl::InfiniteDuration()) {
    // 0 would mean "no limit" to the server; the smallest real wait is 1 ms.
    ToProto(std::max(timeout, absl::Milliseconds(1)),
            request.mutable_timeout());
  }
  v1::AwaitResponse response;
  grpc::Status status = stub_->Await(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
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
  grpc::ClientContext context;
  ApplyOptions(options, &context);
  v1::CancelRequest request;
  request.set_id(std::string(id));
  request.set_reason(std::string(reason));
  v1::Task task;
  grpc::Status status = stub_->Cancel(&context, request, &task);
  if (!status.ok()) return FromGrpcStatus(status);
  return task;
}

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
  absl::StatusOr<v1::AwaitResponse> response =
      client_.AwaitUntilDone({id_}, v1::AWAIT_MODE_ALL, timeout);
  if (!response.ok()) return response.status();
  if (!response->done()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "task ", id_, " not finished within ", absl::FormatDuration(timeout)));
  }
  if (response->tasks_size() != 1) {
    return absl::InternalError(absl::StrCat(
        "Await for one task returned ", response->tasks_size(), " tasks"));
  }
  return response->tasks(0);
}

}  // namespace taskd
