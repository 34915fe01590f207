#include "clients/cpp/worker.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>
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
#include "absl/time/clock.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "api/strings/text_limits.h"
#include "api/strings/utf8.h"
#include "clients/cpp/grpc_status.h"
#include "clients/cpp/internal/work_outbox.h"
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

// A handler whose mean run is shorter runs on the reading thread.
constexpr int64_t kInlineBudgetNanos = 20'000;
// How often the standby looks at an inline run, and how many quiet looks
// (no inline run) it takes before it waits for the next one untimed.
constexpr absl::Duration kStandbyTick = absl::Milliseconds(1);
constexpr int kStandbyQuietTicks = 100;

}  // namespace

// Threads: `concurrency + 1` session threads and one heartbeat thread. A
// sync stream allows one reader at a time, so the session threads take turns
// reading (leader/follower): the reader that receives an assignment hands
// the reading to an idle session thread and runs the handler itself, so an
// assignment reaches its handler without waiting for another thread. At most
// `concurrency` of them run handlers, so one is always left to read cancel
// notices however long handlers block.
//
// A handler whose recent runs were quicker than a hand-off (kInlineBudget)
// runs inline: the reader keeps the reading and reads on after it, with no
// thread woken at all. One idle thread is then the standby: it looks every
// kStandbyTick and takes the reading over from a run that lasted a whole
// tick, so a handler that blocks delays the reading of other messages by
// two ticks at most.
//
// Every write goes through outbox_, whose writer also writes what others
// queue meanwhile, in one syscall.
class Worker::Impl {
 public:
  explicit Impl(Options options)
      : options_(std::move(options)),
        outbox_(
            [this](const v1::WorkRequest& request, bool more) {
              grpc::WriteOptions write_options;
              if (more) write_options.set_buffer_hint();
              return stream_->Write(request, write_options);
            },
            [this] { return stream_->WritesDone(); }) {
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
  // What a session thread does next.
  enum class Role { kRun, kRead, kExit };

  // A registered handler and the mean duration of its recent runs (an
  // exponential moving average, updated without a lock: a lost update only
  // delays the next inline decision).
  struct HandlerSlot {
    Handler handler;
    std::atomic<int64_t> mean_nanos{2 * kInlineBudgetNanos};
  };

  // Writes hello; false when the stream failed first.
  bool SendHello();
  void SessionThread(bool first_reader);
  void HeartbeatLoop();
  // Reads as the reader until it takes an assignment to run (returned) or
  // the stream ends (null).
  // `inline_run` tells whether the reader keeps the reading while it runs it.
  std::shared_ptr<TaskContext> ReadUntilAssigned(bool& inline_run);
  std::shared_ptr<TaskContext> Accept(v1::Assignment& assignment,
                                      bool& inline_run);
  void HandleCancel(const v1::CancelNotice& notice);
  // Finishes the stream once Read() failed; on the reader's thread.
  void EndSession();
  // Waits until this thread has a task to run (`task`), the reading to do,
  // or nothing left to do.
  Role NextRole(std::shared_ptr<TaskContext>& task)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The standby's watch over inline runs; returns true when it took the
  // reading over, false when NextRole() has something else for it.
  bool Standby() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StandbyShouldLeave() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wakes a thread waiting in NextRole() (the standby if no other waits).
  void WakeIdleThread() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Execute(TaskContext& context);
  v1::WorkRequest Outcome(const TaskContext& context,
                          absl::StatusOr<std::string> result) const;
  std::vector<std::shared_ptr<TaskContext>> AllLeases()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits on state_cv_ until `done` or `deadline`; returns done().
  template <typename Done>
  bool WaitState(Done done, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after construction.
  Options options_;

  // Serializes Start() and Stop(); held for their whole duration.
  absl::Mutex lifecycle_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  bool stopped_ ABSL_GUARDED_BY(lifecycle_mu_) = false;
  std::thread heartbeat_thread_ ABSL_GUARDED_BY(lifecycle_mu_);
  std::vector<std::thread> session_threads_ ABSL_GUARDED_BY(lifecycle_mu_);
  // Written under lifecycle_mu_ before `started_`; constant after Start().
  std::map<std::string, HandlerSlot> handlers_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkRequest, v1::WorkResponse>>
      stream_;

  // Every write to stream_ goes through it.
  internal::WorkOutbox outbox_;

  absl::Mutex mu_;
  // Signalled on every change of the lifecycle flags below.
  absl::CondVar state_cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  bool session_done_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  // No new work: set by Stop().
  bool pool_exit_ ABSL_GUARDED_BY(mu_) = false;
  // Stop() half-closes the stream; no more heartbeats.
  bool close_writes_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  // Session threads waiting in NextRole() wait on idle_cv_.
  absl::CondVar idle_cv_;
  int idle_threads_ ABSL_GUARDED_BY(mu_) = 0;
  // A session thread reads the stream or is about to (it took the role).
  bool reader_present_ ABSL_GUARDED_BY(mu_) = false;
  // Assignments taken by a session thread to run (at most concurrency).
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  // The reader runs a handler inline; inline_runs_ counts such runs.
  bool reader_in_handler_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t inline_runs_ ABSL_GUARDED_BY(mu_) = 0;
  // The standby took the reading over from the running inline handler.
  bool reader_taken_over_ ABSL_GUARDED_BY(mu_) = false;
  // An idle thread watches inline runs (on standby_cv_), with a timeout
  // unless standby_asleep_.
  bool standby_present_ ABSL_GUARDED_BY(mu_) = false;
  bool standby_asleep_ ABSL_GUARDED_BY(mu_) = false;
  absl::CondVar standby_cv_;
  // Assignments read while no thread could take them.
  std::deque<std::shared_ptr<TaskContext>> pending_ ABSL_GUARDED_BY(mu_);
  // Every unfinished assignment (pending or running), by lease id.
  absl::flat_hash_map<uint64_t, std::shared_ptr<TaskContext>> leases_
      ABSL_GUARDED_BY(mu_);
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
  auto [slot, added] = handlers_.try_emplace(std::string(type));
  if (!added) {
    return absl::AlreadyExistsError(
        absl::StrCat("a handler for type ", type, " is already registered"));
  }
  slot->second.handler = std::move(handler);
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
  // corked, the metadata leaves with `hello` on the first session thread.
  context_->set_initial_metadata_corked(true);
  stream_ = stub_->Work(context_.get());
  {
    absl::MutexLock state_lock(&mu_);
    started_ = true;
    reader_present_ = true;  // the first session thread
  }
  for (int i = 0; i <= options_.concurrency; ++i) {
    session_threads_.emplace_back([this, i] { SessionThread(i == 0); });
  }
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  return absl::OkStatus();
}

template <typename Done>
bool Worker::Impl::WaitState(Done done, absl::Time deadline) {
  while (!done()) {
    if (state_cv_.WaitWithDeadline(&mu_, deadline)) return done();
  }
  return true;
}

bool Worker::Impl::WaitConnected(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  WaitState(
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return connected_ || session_done_;
      },
      absl::Now() + timeout);
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
    WaitState(
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return session_done_ || stop_requested_;
        },
        absl::InfiniteFuture());
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
    state_cv_.SignalAll();
    idle_cv_.SignalAll();
    standby_cv_.SignalAll();
  }
  for (const auto& context : leases) {
    context->Cancel(TaskContext::CancelCause::kWorkerStopping,
                    "worker stopping");
  }
  // Before `hello` went out its write may wait for the server indefinitely.
  if (!connected) context_->TryCancel();
  {
    // Handlers finish and queue their outcomes before the stream is closed.
    absl::MutexLock state_lock(&mu_);
    WaitState([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                  mu_) { return leases_.empty(); },
              absl::InfiniteFuture());
    close_writes_ = true;
    state_cv_.SignalAll();
  }
  outbox_.CloseAfterQueued();
  bool closed;
  {
    absl::MutexLock state_lock(&mu_);
    closed = WaitState([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                           mu_) { return session_done_; },
                       absl::Now() + options_.shutdown_timeout);
  }
  if (!closed) context_->TryCancel();
  heartbeat_thread_.join();
  for (std::thread& thread : session_threads_) thread.join();
  session_threads_.clear();
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
  outbox_.Close();
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

bool Worker::Impl::SendHello() {
  v1::WorkRequest hello;
  v1::Hello* h = hello.mutable_hello();
  h->set_worker_id(options_.worker_id);
  for (const std::string& queue : options_.queues) h->add_queues(queue);
  for (const auto& [type, slot] : handlers_) h->add_types(type);
  h->set_concurrency(options_.concurrency);
  // Nothing else is queued before hello, so this thread writes it.
  if (!outbox_.Send(std::move(hello)).ok()) return false;
  absl::MutexLock lock(&mu_);
  connected_ = true;
  state_cv_.SignalAll();
  return true;
}

void Worker::Impl::SessionThread(bool first_reader) {
  std::shared_ptr<TaskContext> task;
  Role role = Role::kRead;
  if (first_reader) {
    if (!SendHello()) {
      EndSession();
      return;
    }
  } else {
    absl::MutexLock lock(&mu_);
    role = NextRole(task);
  }
  bool inline_run = false;
  while (role != Role::kExit) {
    if (role == Role::kRead) {
      task = ReadUntilAssigned(inline_run);
      if (task == nullptr) {
        EndSession();
        return;
      }
    }
    Execute(*task);
    // Released after the lock: the last reference may go here.
    const std::shared_ptr<TaskContext> finished = std::move(task);
    absl::MutexLock lock(&mu_);
    leases_.erase(finished->lease_id());
    --running_;
    if (pool_exit_ && leases_.empty()) state_cv_.SignalAll();
    if (inline_run) {
      inline_run = false;
      if (!reader_taken_over_) {
        reader_in_handler_ = false;
        continue;  // still the reader
      }
      reader_taken_over_ = false;
    }
    role = NextRole(task);
  }
}

Worker::Impl::Role Worker::Impl::NextRole(std::shared_ptr<TaskContext>& task) {
  while (true) {
    if (!pending_.empty() && running_ < options_.concurrency) {
      task = std::move(pending_.front());
      pending_.pop_front();
      ++running_;
      return Role::kRun;
    }
    if (!reader_present_ && !session_done_) {
      reader_present_ = true;
      return Role::kRead;
    }
    if ((pool_exit_ || session_done_) && pending_.empty()) return Role::kExit;
    if (!standby_present_) {
      standby_present_ = true;
      const bool took_over = Standby();
      standby_present_ = false;
      // Another idle thread becomes the standby.
      if (idle_threads_ > 0) idle_cv_.Signal();
      if (took_over) return Role::kRead;
      continue;
    }
    ++idle_threads_;
    idle_cv_.Wait(&mu_);
    --idle_threads_;
  }
}

void Worker::Impl::WakeIdleThread() {
  if (idle_threads_ > 0) {
    idle_cv_.Signal();
  } else if (standby_present_) {
    standby_cv_.Signal();
  }
}

bool Worker::Impl::StandbyShouldLeave() const {
  return (!pending_.empty() && running_ < options_.concurrency) ||
         (!reader_present_ && !session_done_) || pool_exit_ || session_done_;
}

bool Worker::Impl::Standby() {
  uint64_t seen_runs = inline_runs_;
  bool seen_in_handler = false;
  int quiet_ticks = 0;
  while (!StandbyShouldLeave()) {
    if (reader_in_handler_ && seen_in_handler && inline_runs_ == seen_runs) {
      // The same inline run lasted a whole tick: read on in its place.
      reader_in_handler_ = false;
      reader_taken_over_ = true;
      return true;
    }
    quiet_ticks = inline_runs_ == seen_runs ? quiet_ticks + 1 : 0;
    seen_runs = inline_runs_;
    seen_in_handler = reader_in_handler_;
    if (quiet_ticks > kStandbyQuietTicks) {
      // No inline run for a while: the next one wakes this thread.
      standby_asleep_ = true;
      standby_cv_.Wait(&mu_);
      standby_asleep_ = false;
      quiet_ticks = 0;
      seen_in_handler = false;
      continue;
    }
    standby_cv_.WaitWithTimeout(&mu_, kStandbyTick);
  }
  return false;
}

std::shared_ptr<TaskContext> Worker::Impl::ReadUntilAssigned(
    bool& inline_run) {
  v1::WorkResponse response;
  while (stream_->Read(&response)) {
    if (response.has_assignment()) {
      std::shared_ptr<TaskContext> task =
          Accept(*response.mutable_assignment(), inline_run);
      if (task != nullptr) return task;
    } else if (response.has_cancel()) {
      HandleCancel(response.cancel());
    }
    // Messages of kinds this SDK does not know are ignored.
  }
  return nullptr;
}

std::shared_ptr<TaskContext> Worker::Impl::Accept(v1::Assignment& assignment,
                                                  bool& inline_run) {
  const absl::Time deadline = assignment.has_deadline()
                                  ? FromProto(assignment.deadline())
                                  : absl::InfiniteFuture();
  auto context = std::make_shared<TaskContext>(
      std::move(*assignment.mutable_task()), assignment.lease_id(), deadline,
      [this](const v1::ProgressUpdate& update) {
        v1::WorkRequest request;
        *request.mutable_progress() = update;
        return outbox_.Send(std::move(request));
      },
      assignment.max_result_bytes());
  auto slot = handlers_.find(context->type());
  // An unknown type fails at once.
  const bool quick = slot == handlers_.end() ||
                     slot->second.mean_nanos.load(std::memory_order_relaxed) <
                         kInlineBudgetNanos;
  {
    absl::MutexLock lock(&mu_);
    if (!pool_exit_) {
      if (!leases_.emplace(context->lease_id(), context).second) return nullptr;
      const bool can_run = running_ < options_.concurrency;
      if (can_run && quick && standby_present_ && pending_.empty()) {
        ++running_;
        ++inline_runs_;
        reader_in_handler_ = true;
        inline_run = true;
        if (standby_asleep_) standby_cv_.Signal();
        return context;
      }
      if (can_run && pending_.empty() &&
          (idle_threads_ > 0 || standby_present_)) {
        // An idle thread takes over the reading; this one runs the task.
        ++running_;
        reader_present_ = false;
        WakeIdleThread();
        return context;
      }
      // A thread that finishes its task (or an idle one) takes it.
      pending_.push_back(std::move(context));
      if (can_run) WakeIdleThread();
      return nullptr;
    }
  }
  // Stopping: hand the task back for a retry elsewhere.
  context->Cancel(TaskContext::CancelCause::kWorkerStopping, "worker stopping");
  outbox_.Send(Outcome(*context, absl::CancelledError("worker stopping")))
      .IgnoreError();
  return nullptr;
}

void Worker::Impl::HandleCancel(const v1::CancelNotice& notice) {
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

void Worker::Impl::EndSession() {
  outbox_.Close();
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
    state_cv_.SignalAll();
    idle_cv_.SignalAll();
    standby_cv_.SignalAll();
  }
  // Outcomes can no longer be delivered: let the handlers stop early.
  for (const auto& context : leases) {
    context->Cancel(TaskContext::CancelCause::kWorkerStopping,
                    "work stream closed");
  }
}

void Worker::Impl::HeartbeatLoop() {
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return close_writes_ || session_done_;
  };
  {
    // No heartbeat may precede hello.
    absl::MutexLock lock(&mu_);
    WaitState(
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return connected_ || done();
        },
        absl::InfiniteFuture());
  }
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (WaitState(done, absl::Now() + options_.heartbeat_interval)) return;
    }
    v1::WorkRequest heartbeat;
    heartbeat.mutable_heartbeat();
    outbox_.Send(std::move(heartbeat)).IgnoreError();
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
    HandlerSlot& slot = it->second;
    const int64_t start = absl::GetCurrentTimeNanos();
    try {
      result = slot.handler(context);
    } catch (const std::exception& e) {
      result = TaskFailure("handler_exception", e.what());
    } catch (...) {
      result = TaskFailure("handler_exception", "unknown exception");
    }
    const int64_t took = absl::GetCurrentTimeNanos() - start;
    const int64_t mean = slot.mean_nanos.load(std::memory_order_relaxed);
    slot.mean_nanos.store(mean + (took - mean) / 8, std::memory_order_relaxed);
  }
  outbox_.Send(Outcome(context, std::move(result))).IgnoreError();
}

v1::WorkRequest Worker::Impl::Outcome(
    const TaskContext& context, absl::StatusOr<std::string> result) const {
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
  if (error.code().empty()) {
    v1::Complete* complete = request.mutable_complete();
    complete->set_task_id(context.id());
    complete->set_lease_id(context.lease_id());
    complete->set_result(*std::move(result));
    return request;
  }
  // Only text the server can parse: one invalid byte in a proto3 string
  // would end the whole Work stream and every lease on it.
  error.set_code(ToValidUtf8(error.code(), kMaxErrorCodeBytes));
  error.set_message(ToValidUtf8(error.message(), kMaxErrorMessageBytes));
  error.set_details(ToValidUtf8(error.details(), kMaxErrorDetailsBytes));
  v1::Fail* fail = request.mutable_fail();
  fail->set_task_id(context.id());
  fail->set_lease_id(context.lease_id());
  *fail->mutable_error() = std::move(error);
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
