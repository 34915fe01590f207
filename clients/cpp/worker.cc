#include "clients/cpp/worker.h"

#include <unistd.h>

#include <deque>
#include <exception>
#include <map>
#include <thread>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/grpc_status.h"
#include "api/strings/text_limits.h"
#include "api/strings/utf8.h"
#include "clients/cpp/task_failure.h"

namespace taskd {
namespace {

std::string DefaultWorkerId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return absl::StrCat("worker-", getpid());
  }
  return absl::StrCat(host, "-", getpid());
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

}  // namespace

// Threads: one session thread (writes hello, then reads the stream), one
// writer thread (heartbeats, then the final WritesDone), `concurrency` pool
// threads. A sync gRPC stream allows one reader and one writer at a time, so
// every write goes through Send() under write_mu_, and Finish() is called
// only once no write can start (writes_closed_).
class Worker::Impl {
 public:
  explicit Impl(Options options) : options_(std::move(options)) {
    if (options_.worker_id.empty()) options_.worker_id = DefaultWorkerId();
  }

  absl::Status RegisterHandler(absl::string_view type, Handler handler);
  absl::Status Start();
  bool WaitConnected(absl::Duration timeout);
  absl::Status Run();
  void Stop();
  void Abort();
  const std::string& worker_id() const { return options_.worker_id; }

 private:
  void SessionLoop();
  void WriterLoop();
  void PoolLoop();
  void HandleResponse(const v1::WorkResponse& response);
  void Execute(TaskContext& context);
  v1::WorkRequest Outcome(const TaskContext& context,
                          const absl::StatusOr<std::string>& result) const;
  absl::Status Send(const v1::WorkRequest& request)
      ABSL_LOCKS_EXCLUDED(write_mu_);
  std::vector<std::shared_ptr<TaskContext>> AllLeases()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool WorkOrExit() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || pool_exit_;
  }
  bool ConnectedOrDone() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return connected_ || session_done_;
  }
  bool DoneOrStopRequested() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return session_done_ || stop_requested_;
  }
  bool WriterShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return close_writes_ || session_done_;
  }

  // Constant after construction.
  Options options_;

  // Serializes Start() and Stop(); held for their whole duration.
  absl::Mutex lifecycle_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool stopped_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  std::thread session_thread_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::thread writer_thread_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::vector<std::thread> pool_threads_ ABSL_GUARDED_BY(lifecycle_mu_);
  // Written under lifecycle_mu_ before `started_`; constant after Start().
  std::map<std::string, Handler> handlers_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkRequest, v1::WorkResponse>>
      stream_;

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool session_done_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  bool pool_exit_ ABSL_GUARDED_BY(mu_) = false;
  bool close_writes_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  // Assignments not yet picked up by a pool thread.
  std::deque<std::shared_ptr<TaskContext>> queue_ ABSL_GUARDED_BY(mu_);
  // Every unfinished assignment (queued or running), by lease id.
  absl::flat_hash_map<uint64_t, std::shared_ptr<TaskContext>> leases_
      ABSL_GUARDED_BY(mu_);

  // Only one write may be in flight on the stream at any time.
  absl::Mutex write_mu_ ABSL_ACQUIRED_AFTER(mu_);
  bool writes_closed_ ABSL_GUARDED_BY(write_mu_) = false;
};

absl::Status Worker::Impl::RegisterHandler(absl::string_view type,
                                           Handler handler) {
  absl::MutexLock lock(&lifecycle_mu_);
  {
    absl::MutexLock state_lock(&mu_);
    if (started_) {
      return absl::FailedPreconditionError(
          "RegisterHandler must be called before Start");
    }
  }
  if (type.empty()) return absl::InvalidArgumentError("empty task type");
  if (!handler) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty handler for type ", type));
  }
  if (!handlers_.emplace(std::string(type), std::move(handler)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("a handler for type ", type, " is already registered"));
  }
  return absl::OkStatus();
}

absl::Status Worker::Impl::Start() {
  absl::MutexLock lock(&lifecycle_mu_);
  {
    absl::MutexLock state_lock(&mu_);
    if (started_) return absl::FailedPreconditionError("worker already started");
  }
  if (stopped_) return absl::FailedPreconditionError("worker was stopped");
  if (handlers_.empty()) {
    return absl::FailedPreconditionError("no handler registered");
  }
  if (options_.concurrency < 1) {
    return absl::InvalidArgumentError("concurrency must be at least 1");
  }
  if (options_.heartbeat_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("heartbeat_interval must be positive");
  }
  std::shared_ptr<grpc::Channel> channel = options_.channel;
  if (channel == nullptr) {
    if (options_.target.empty()) {
      return absl::InvalidArgumentError("no server target or channel");
    }
    auto made = NewChannel(options_.target, options_.security);
    if (!made.ok()) return made.status();
    channel = *std::move(made);
  }
  stub_ = v1::WorkerService::NewStub(channel);
  context_ = std::make_unique<grpc::ClientContext>();
  if (options_.wait_for_ready) context_->set_wait_for_ready(true);
  // Otherwise creating the stream blocks until the server is reachable;
  // corked, the metadata leaves with `hello` on the session thread.
  context_->set_initial_metadata_corked(true);
  stream_ = stub_->Work(context_.get());
  {
    absl::MutexLock state_lock(&mu_);
    started_ = true;
  }
  session_thread_ = std::thread([this] { SessionLoop(); });
  writer_thread_ = std::thread([this] { WriterLoop(); });
  for (int i = 0; i < options_.concurrency; ++i) {
    pool_threads_.emplace_back([this] { PoolLoop(); });
  }
  return absl::OkStatus();
}

bool Worker::Impl::WaitConnected(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(this, &Impl::ConnectedOrDone), timeout);
  return connected_;
}

absl::Status Worker::Impl::Run() {
  bool started;
  {
    absl::MutexLock lock(&mu_);
    started = started_;
  }
  if (!started) {
    absl::Status status = Start();
    if (!status.ok()) return status;
  }
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Impl::DoneOrStopRequested));
  }
  Stop();
  absl::MutexLock lock(&mu_);
  return final_status_;
}

void Worker::Impl::Stop() {
  absl::MutexLock lock(&lifecycle_mu_);
  std::vector<std::shared_ptr<TaskContext>> leases;
  bool connected;
  {
    absl::MutexLock state_lock(&mu_);
    if (!started_ || stopped_) {
      stopped_ = true;
      return;
    }
    stop_requested_ = true;
    pool_exit_ = true;
    connected = connected_;
    leases = AllLeases();
  }
  for (const auto& context : leases) {
    context->Cancel(TaskContext::CancelCause::kWorkerStopping,
                    "worker stopping");
  }
  // Handlers finish and send their outcomes before the stream is closed.
  for (std::thread& thread : pool_threads_) thread.join();
  pool_threads_.clear();
  // Before `hello` went out the writer may wait for the server indefinitely.
  if (!connected) context_->TryCancel();
  bool closed;
  {
    absl::MutexLock state_lock(&mu_);
    close_writes_ = true;
    closed = mu_.AwaitWithTimeout(absl::Condition(&session_done_),
                                  options_.shutdown_timeout);
  }
  if (!closed) context_->TryCancel();
  writer_thread_.join();
  session_thread_.join();
  stopped_ = true;
}

void Worker::Impl::Abort() {
  std::vector<std::shared_ptr<TaskContext>> leases;
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || session_done_) return;
    aborted_ = true;
    leases = AllLeases();
  }
  context_->TryCancel();
  {
    absl::MutexLock lock(&write_mu_);
    writes_closed_ = true;
  }
  for (const auto& context : leases) {
    context->Cancel(TaskContext::CancelCause::kWorkerStopping,
                    "worker aborted");
  }
}

std::vector<std::shared_ptr<TaskContext>> Worker::Impl::AllLeases() {
  std::vector<std::shared_ptr<TaskContext>> leases;
  leases.reserve(leases_.size());
  for (const auto& [lease_id, context] : leases_) leases.push_back(context);
  return leases;
}

absl::Status Worker::Impl::Send(const v1::WorkRequest& request) {
  absl::MutexLock lock(&write_mu_);
  if (writes_closed_) return absl::FailedPreconditionError("work stream closed");
  if (!stream_->Write(request)) {
    return absl::UnavailableError("work stream broken");
  }
  return absl::OkStatus();
}

void Worker::Impl::SessionLoop() {
  v1::WorkRequest hello;
  v1::Hello* h = hello.mutable_hello();
  h->set_worker_id(options_.worker_id);
  for (const std::string& queue : options_.queues) h->add_queues(queue);
  for (const auto& [type, handler] : handlers_) h->add_types(type);
  h->set_concurrency(options_.concurrency);
  if (Send(hello).ok()) {
    {
      absl::MutexLock lock(&mu_);
      connected_ = true;
    }
    v1::WorkResponse response;
    while (stream_->Read(&response)) HandleResponse(response);
  }
  {
    absl::MutexLock lock(&write_mu_);
    writes_closed_ = true;
  }
  const grpc::Status status = stream_->Finish();
  std::vector<std::shared_ptr<TaskContext>> leases;
  {
    absl::MutexLock lock(&mu_);
    session_done_ = true;
    if (aborted_) {
      final_status_ = absl::CancelledError("worker aborted");
    } else if (stop_requested_) {
      final_status_ = absl::OkStatus();
    } else if (status.ok()) {
      final_status_ = absl::UnavailableError("server closed the work stream");
    } else {
      final_status_ = FromGrpcStatus(status);
    }
    leases = AllLeases();
  }
  // Outcomes can no longer be delivered: let the handlers stop early.
  for (const auto& context : leases) {
    context->Cancel(TaskContext::CancelCause::kWorkerStopping,
                    "work stream closed");
  }
}

void Worker::Impl::HandleResponse(const v1::WorkResponse& response) {
  if (response.has_assignment()) {
    const v1::Assignment& assignment = response.assignment();
    const absl::Time deadline = assignment.has_deadline()
                                    ? FromProto(assignment.deadline())
                                    : absl::InfiniteFuture();
    auto context = std::make_shared<TaskContext>(
        assignment.task(), assignment.lease_id(), deadline,
        [this](const v1::ProgressUpdate& update) {
          v1::WorkRequest request;
          *request.mutable_progress() = update;
          return Send(request);
        },
        assignment.max_result_bytes());
    {
      absl::MutexLock lock(&mu_);
      if (!pool_exit_) {
        if (leases_.emplace(assignment.lease_id(), context).second) {
          queue_.push_back(context);
        }
        return;
      }
    }
    // Stopping: the pool is gone; hand the task back for a retry elsewhere.
    context->Cancel(TaskContext::CancelCause::kWorkerStopping,
                    "worker stopping");
    Send(Outcome(*context, absl::CancelledError("worker stopping")))
        .IgnoreError();
  } else if (response.has_cancel()) {
    const v1::CancelNotice& notice = response.cancel();
    std::shared_ptr<TaskContext> context;
    {
      absl::MutexLock lock(&mu_);
      if (notice.lease_id() != 0) {
        auto it = leases_.find(notice.lease_id());
        if (it != leases_.end()) context = it->second;
      } else {
        for (const auto& [lease_id, c] : leases_) {
          if (c->id() == notice.task_id()) context = c;
        }
      }
    }
    if (context != nullptr) {
      context->Cancel(TaskContext::CancelCause::kCancelNotice,
                      notice.reason().empty() ? "cancelled by the server"
                                              : notice.reason());
    }
  }
  // Messages of kinds this SDK does not know are ignored.
}

void Worker::Impl::WriterLoop() {
  {
    // No heartbeat may precede hello.
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &Impl::ConnectedOrDone));
  }
  v1::WorkRequest heartbeat;
  heartbeat.mutable_heartbeat();
  while (true) {
    bool close;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &Impl::WriterShouldWake),
                           options_.heartbeat_interval);
      if (session_done_) return;
      close = close_writes_;
    }
    if (close) {
      absl::MutexLock lock(&write_mu_);
      if (!writes_closed_) {
        stream_->WritesDone();
        writes_closed_ = true;
      }
      return;
    }
    Send(heartbeat).IgnoreError();
  }
}

void Worker::Impl::PoolLoop() {
  while (true) {
    std::shared_ptr<TaskContext> context;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Impl::WorkOrExit));
      if (queue_.empty()) return;
      context = std::move(queue_.front());
      queue_.pop_front();
    }
    Execute(*context);
    absl::MutexLock lock(&mu_);
    leases_.erase(context->lease_id());
  }
}

void Worker::Impl::Execute(TaskContext& context) {
  absl::StatusOr<std::string> result;
  auto it = handlers_.find(context.type());
  if (context.cancelled()) {
    result = absl::CancelledError("cancelled before start");
  } else if (it == handlers_.end()) {
    result = TaskFailure("unknown_type",
                         absl::StrCat("worker ", options_.worker_id,
                                      " has no handler for type ",
                                      context.type()));
  } else {
    try {
      result = it->second(context);
    } catch (const std::exception& e) {
      result = TaskFailure("handler_exception", e.what());
    } catch (...) {
      result = TaskFailure("handler_exception", "unknown exception");
    }
  }
  Send(Outcome(context, result)).IgnoreError();
}

v1::WorkRequest Worker::Impl::Outcome(
    const TaskContext& context,
    const absl::StatusOr<std::string>& result) const {
  v1::WorkRequest request;
  v1::TaskError error;
  switch (context.cancel_cause()) {
    case TaskContext::CancelCause::kCancelNotice:
      error.set_code("cancelled");
      error.set_message(context.cancel_reason());
      error.set_retryable(false);
      break;
    case TaskContext::CancelCause::kWorkerStopping:
      if (result.ok()) break;
      error.set_code("worker_stopped");
      error.set_message(
          absl::StrCat(context.cancel_reason(), ": ", result.status().message()));
      error.set_retryable(true);
      break;
    case TaskContext::CancelCause::kNone:
      if (!result.ok()) error = TaskErrorFromStatus(result.status());
      break;
  }
  // The server's advertised limit, else this worker's own.
  size_t max_result = options_.max_result_bytes;
  if (context.max_result_bytes() > 0 &&
      context.max_result_bytes() < max_result) {
    max_result = static_cast<size_t>(context.max_result_bytes());
  }
  if (error.code().empty() && result.ok() && result->size() > max_result) {
    error.set_code("result_too_large");
    error.set_message(absl::StrCat("result of ", result->size(),
                                   " bytes exceeds the limit of ", max_result,
                                   " bytes"));
    error.set_retryable(false);
  }
  // Only text the server can parse: one invalid byte in a proto3 string
  // would end the whole Work stream and every lease on it.
  error.set_code(ToValidUtf8(error.code(), kMaxErrorCodeBytes));
  error.set_message(ToValidUtf8(error.message(), kMaxErrorMessageBytes));
  error.set_details(ToValidUtf8(error.details(), kMaxErrorDetailsBytes));
  if (error.code().empty()) {
    v1::Complete* complete = request.mutable_complete();
    complete->set_task_id(context.id());
    complete->set_lease_id(context.lease_id());
    complete->set_result(*result);
  } else {
    v1::Fail* fail = request.mutable_fail();
    fail->set_task_id(context.id());
    fail->set_lease_id(context.lease_id());
    *fail->mutable_error() = std::move(error);
  }
  return request;
}

Worker::Worker(Options options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
Worker::~Worker() { impl_->Stop(); }
absl::Status Worker::RegisterHandler(absl::string_view type, Handler handler) {
  return impl_->RegisterHandler(type, std::move(handler));
}
absl::Status Worker::Start() { return impl_->Start(); }
bool Worker::WaitConnected(absl::Duration timeout) {
  return impl_->WaitConnected(timeout);
}
absl::Status Worker::Run() { return impl_->Run(); }
void Worker::Stop() { impl_->Stop(); }
void Worker::Abort() { impl_->Abort(); }
const std::string& Worker::worker_id() const { return impl_->worker_id(); }

}  // namespace taskd
