#include "services/task_service.h"

#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "scheduler/task_state.h"
#include "services/auth/caller.h"
#include "scheduler/validation.h"
#include "services/call.h"
#include "services/ref_counted_call.h"
#include "services/status_util.h"
#include "services/unary_call.h"

namespace taskd {
namespace {

using Service = v1::TaskService::AsyncService;

// What one answer may carry: a client's default receive limit (4 MiB), less
// room for gRPC's framing.
constexpr size_t kMaxResponseBytes = (4 << 20) - (16 << 10);

// ---------------------------------------------------------------- scopes

// For a caller scoped to some queues (auth/caller.h): NOT_FOUND for the
// first id whose task is in another queue, so ids do not leak. Unknown ids
// are left to the engine's own answer.
template <class Ids>
absl::Status TasksInScope(const Engine& engine, const Ids& ids,
                          const auth::Caller& caller) {
  for (const std::string& id : ids) {
    absl::StatusOr<v1::Task> task = engine.Get(id);
    if (!task.ok()) continue;
    if (auto s = caller.CheckTaskQueue(task->spec().queue(), id); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

template <class Request>
absl::Status TaskInScope(Engine& engine, const Request& request,
                         const auth::Caller& caller) {
  return TasksInScope(engine, std::vector<std::string>{request.id()}, caller);
}

// ---------------------------------------------------------------- unary

using SubmitCall =
    UnaryCall<Service, Engine, v1::SubmitTaskRequest, v1::SubmitTaskResponse>;
using SubmitBatchCall =
    UnaryCall<Service, Engine, v1::SubmitTasksRequest, v1::SubmitTasksResponse>;
using GetCall = UnaryCall<Service, Engine, v1::GetTaskRequest, v1::Task>;
using ListCall =
    UnaryCall<Service, Engine, v1::ListTasksRequest, v1::ListTasksResponse>;
using CancelCall = UnaryCall<Service, Engine, v1::CancelRequest, v1::Task>;

const SubmitCall::Method kSubmit{
    "SubmitTask", &Service::RequestSubmitTask,
    [](Engine& engine, const v1::SubmitTaskRequest& request,
       SubmitCall::Reply reply) {
      if (!request.has_task()) {
        return reply(absl::InvalidArgumentError("task: required"));
      }
      engine.SubmitAsync(
          request.task(), [reply = std::move(reply)](
                              absl::StatusOr<SubmitResult> result) {
            if (!result.ok()) return reply(result.status());
            v1::SubmitTaskResponse response;
            *response.mutable_task() = std::move(result->task);
            response.set_deduplicated(result->deduplicated);
            reply(std::move(response));
          });
    },
    [](Engine&, const v1::SubmitTaskRequest& request,
       const auth::Caller& caller) {
      return caller.CheckQueue(request.task().queue(), "task.queue");
    }};

const SubmitBatchCall::Method kSubmitBatch{
    "SubmitTasks", &Service::RequestSubmitTasks,
    [](Engine& engine, const v1::SubmitTasksRequest& request,
       SubmitBatchCall::Reply reply) {
      engine.SubmitBatchAsync(
          request.tasks(), [reply = std::move(reply)](
                               absl::StatusOr<std::vector<v1::Task>> tasks) {
            if (!tasks.ok()) return reply(tasks.status());
            v1::SubmitTasksResponse response;
            for (v1::Task& t : *tasks) *response.add_tasks() = std::move(t);
            reply(std::move(response));
          });
    },
    [](Engine&, const v1::SubmitTasksRequest& request,
       const auth::Caller& caller) {
      for (int i = 0; i < request.tasks_size(); ++i) {
        if (auto s = caller.CheckQueue(request.tasks(i).queue(),
                                       absl::StrCat("tasks[", i, "].queue"));
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }};

const GetCall::Method kGet{
    "GetTask", &Service::RequestGetTask,
    [](Engine& engine, const v1::GetTaskRequest& request, GetCall::Reply reply) {
      engine.GetAsync(request.id(), std::move(reply));
    },
    TaskInScope<v1::GetTaskRequest>};

const ListCall::Method kList{
    "ListTasks", &Service::RequestListTasks,
    [](Engine& engine, const v1::ListTasksRequest& request,
       ListCall::Reply reply) { reply(engine.List(request)); },
    [](Engine&, const v1::ListTasksRequest& request,
       const auth::Caller& caller) {
      return request.queue().empty() ? caller.CheckUnscoped("ListTasks")
                                     : caller.CheckQueue(request.queue());
    }};

const CancelCall::Method kCancel{
    "Cancel", &Service::RequestCancel,
    [](Engine& engine, const v1::CancelRequest& request,
       CancelCall::Reply reply) {
      engine.CancelAsync(request.id(), request.reason(), std::move(reply));
    },
    TaskInScope<v1::CancelRequest>};

// ---------------------------------------------------------------- Await

// Registers on the engine and is finished by its callback: when the tasks
// are terminal, at the request's own timeout (done = false) or with
// UNAVAILABLE at shutdown. A client that goes away withdraws the Await.
class AwaitCall final : public RefCountedCall {
 public:
  static void Arm(const CallSite& site, const TaskServiceHandlers* handlers,
                  grpc::ServerCompletionQueue* cq) {
    new AwaitCall(site, handlers, cq);
  }

  void OnEvent(int op, bool ok) override {
    switch (op) {
      case kRequest:
        if (!ok) {
          delete this;  // never started: no done tag will come
          return;
        }
        Arm(site_, handlers_, cq_);
        meter_.Start(site_.cells);
        meter_.Received();  // the request
        Begin();
        break;
      case kDone: {
        AwaitHandle handle;
        {
          absl::MutexLock lock(&mu_);
          client_gone_ = ctx_.IsCancelled();
          if (client_gone_) handle = handle_;
        }
        // Outside mu_: the engine may be running our callback right now.
        // Only a successful withdrawal drops the callback's reference; else
        // the callback is running or will run, and drops it itself.
        if (handle && handlers_->engine()->CancelAwait(handle)) {
          meter_.Handled(grpc::StatusCode::CANCELLED);  // never finished
          Unref();
        }
        break;
      }
      case kFinish:
        break;
    }
    Unref();
  }

 private:
  enum Op { kRequest, kDone, kFinish };

  AwaitCall(const CallSite& site, const TaskServiceHandlers* handlers,
            grpc::ServerCompletionQueue* cq)
      : RefCountedCall(site), handlers_(handlers), cq_(cq), responder_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    handlers_->service()->RequestAwait(&ctx_, &request_, &responder_, cq_, cq_,
                                       &request_tag_);
  }

  void Begin() {
    {
      absl::MutexLock lock(&mu_);
      Ref();  // the done tag
    }
    absl::Status invalid;
    if (request_.mode() < v1::AWAIT_MODE_UNSPECIFIED ||
        request_.mode() > v1::AWAIT_MODE_ANY) {
      invalid = absl::InvalidArgumentError(
          absl::StrCat("mode: not an await mode: ", request_.mode()));
    } else if (request_.has_timeout()) {
      invalid = ValidateDuration(request_.timeout(), "timeout");
    }
    if (auth::Caller caller = auth::Caller::FromContext(ctx_);
        invalid.ok() && caller.scoped()) {
      invalid = TasksInScope(*handlers_->engine(), request_.ids(), caller);
    }
    if (!invalid.ok()) {
      Finish(invalid);
      return;
    }
    absl::Time deadline = absl::InfiniteFuture();
    if (request_.has_timeout() &&
        ToDuration(request_.timeout()) > absl::ZeroDuration()) {
      deadline =
          handlers_->engine()->clock()->Now() + ToDuration(request_.timeout());
    }
    std::vector<std::string> ids(request_.ids().begin(), request_.ids().end());
    {
      // The engine's callback owns a reference: it may run on any thread at
      // any time until CancelAwait succeeds, even after the done tag came.
      absl::MutexLock lock(&mu_);
      Ref();
    }
    Engine::AwaitOptions options;
    options.any = request_.mode() == v1::AWAIT_MODE_ANY;
    options.deadline = deadline;
    options.include_payloads = request_.include_payloads();
    options.max_response_bytes = kMaxResponseBytes;
    auto handle = handlers_->engine()->Await(
        ids, options,
        [this](absl::StatusOr<v1::AwaitResponse> result) {
          if (result.ok()) {
            Finish(absl::OkStatus(), &*result);
          } else {
            Finish(result.status());
          }
          Unref();  // the callback's reference
        });
    if (!handle.ok()) {
      Finish(handle.status());
      Unref();  // the callback will never run
      return;
    }
    bool gone;
    {
      absl::MutexLock lock(&mu_);
      handle_ = *handle;
      gone = client_gone_;
    }
    if (gone && handlers_->engine()->CancelAwait(*handle)) {
      meter_.Handled(grpc::StatusCode::CANCELLED);  // never finished
      Unref();
    }
  }

  // Runs at most once (the engine fires the callback once; errors before
  // registration never register).
  void Finish(const absl::Status& status,
              const v1::AwaitResponse* response = nullptr) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    Ref();  // the finish tag
    if (status.ok()) {
      meter_.Sent();
      meter_.Handled(grpc::StatusCode::OK);
      responder_.Finish(*response, grpc::Status::OK, &finish_tag_);
    } else {
      grpc::Status error = ToGrpcStatus(status);
      meter_.Handled(error.error_code());
      responder_.FinishWithError(error, &finish_tag_);
    }
  }

  const TaskServiceHandlers* const handlers_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  v1::AwaitRequest request_;
  grpc::ServerAsyncResponseWriter<v1::AwaitResponse> responder_;
  Tag request_tag_{this, kRequest};
  Tag done_tag_{this, kDone};
  Tag finish_tag_{this, kFinish};

  AwaitHandle handle_ ABSL_GUARDED_BY(mu_);
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// ---------------------------------------------------------------- Stream

// Follows the event log with a cursor. Only one Write is in flight at a
// time; at most one Read batch of matching events waits behind it, so a slow
// client costs bounded memory: when its cursor falls out of the ring it is
// ended with RESOURCE_EXHAUSTED.
class StreamCall final : public RefCountedCall {
 public:
  static void Arm(const CallSite& site, const TaskServiceHandlers* handlers,
                  grpc::ServerCompletionQueue* cq) {
    new StreamCall(site, handlers, cq);
  }

  void OnEvent(int op, bool ok) override {
    switch (op) {
      case kRequest:
        if (!ok) {
          delete this;
          return;
        }
        Arm(site_, handlers_, cq_);
        meter_.Start(site_.cells);
        meter_.Received();  // the request
        Begin();
        break;
      case kWrite: {
        absl::MutexLock lock(&mu_);
        write_in_flight_ = false;
        if (finished_) {
          StartFinishLocked();  // it was deferred behind this write
        } else if (!ok) {
          FinishLocked(absl::CancelledError("client went away"));
        } else {
          PumpLocked();
        }
        break;
      }
      case kDone: {
        absl::MutexLock lock(&mu_);
        if (ctx_.IsCancelled()) {
          FinishLocked(absl::CancelledError("client went away"));
        }
        break;
      }
      case kFinish: {
        uint64_t sub;
        {
          absl::MutexLock lock(&mu_);
          finish_done_ = true;
          sub = subscription_;
          subscription_ = 0;
        }
        // Outside mu_: Unsubscribe waits for a running wake-up, which takes mu_.
        if (sub != 0) handlers_->engine()->events().Unsubscribe(sub);
        break;
      }
    }
    Unref();
  }

 private:
  enum Op { kRequest, kWrite, kDone, kFinish };
  static constexpr size_t kReadBatch = 128;

  StreamCall(const CallSite& site, const TaskServiceHandlers* handlers,
             grpc::ServerCompletionQueue* cq)
      : RefCountedCall(site), handlers_(handlers), cq_(cq), writer_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    handlers_->service()->RequestStream(&ctx_, &request_, &writer_, cq_, cq_,
                                        &request_tag_);
  }

  void Begin() {
    Engine* engine = handlers_->engine();
    EventLog& log = engine->events();
    {
      absl::MutexLock lock(&mu_);
      Ref();  // the done tag
      absl::Status status = Setup(*engine, log);
      if (!status.ok()) {
        FinishLocked(status);
        return;
      }
    }
    // Subscribe without mu_ held: the log calls subscribers under its own
    // lock, and they take mu_ (lock order: log subscribers -> mu_).
    uint64_t sub = log.Subscribe([this] {
      absl::MutexLock lock(&mu_);
      PumpLocked();
    });
    bool finish_done;
    {
      absl::MutexLock lock(&mu_);
      finish_done = finish_done_;
      if (!finish_done) subscription_ = sub;
      PumpLocked();
    }
    if (finish_done) log.Unsubscribe(sub);
  }

  absl::Status Setup(Engine& engine, EventLog& log)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (request_.ids_size() > 1000) {
      return absl::InvalidArgumentError("ids: at most 1000 ids");
    }
    if (!request_.queue().empty()) {
      if (auto s = ValidateQueueName(request_.queue(), "queue"); !s.ok())
        return s;
    }
    if (auth::Caller caller = auth::Caller::FromContext(ctx_);
        caller.scoped()) {
      // Listed ids (their tasks' queues), else the queue; not everything.
      absl::Status s =
          request_.ids_size() > 0 ? TasksInScope(engine, request_.ids(), caller)
          : request_.queue().empty() ? caller.CheckUnscoped("Stream")
                                     : caller.CheckQueue(request_.queue());
      if (!s.ok()) return s;
    }
    // The sequence is read before the states so that a task found terminal
    // had its terminal event before `start_seq_`.
    start_seq_ = log.next_sequence();
    for (int i = 0; i < request_.ids_size(); ++i) {
      const std::string& id = request_.ids(i);
      if (auto s = ValidateTaskId(id, absl::StrCat("ids[", i, "]")); !s.ok())
        return s;
      auto task = engine.Get(id);
      if (!task.ok()) {
        return absl::NotFoundError(
            absl::StrCat("ids[", i, "]: task ", id, " not found"));
      }
      ids_.insert(id);
      if (IsTerminal(task->state())) terminal_at_start_.insert(id);
    }
    if (request_.from_sequence() > 0) {
      if (request_.from_sequence() > start_seq_) {
        return absl::OutOfRangeError(absl::StrCat(
            "from_sequence: ", request_.from_sequence(),
            " is beyond the next event's sequence ", start_seq_,
            " (sequences continue across restarts; use 0 for events from now)"));
      }
      if (request_.from_sequence() < log.first_retained()) {
        return absl::OutOfRangeError(absl::StrCat(
            "from_sequence: ", request_.from_sequence(),
            " is older than the oldest retained event ", log.first_retained()));
      }
      cursor_ = request_.from_sequence();
    } else {
      cursor_ = start_seq_;
    }
    return absl::OkStatus();
  }

  bool Matches(const v1::TaskEvent& e) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!ids_.empty()) return ids_.contains(e.task().id());
    if (!request_.queue().empty()) {
      return e.task().spec().queue() == request_.queue();
    }
    return true;
  }

  // Sends the next matching event, or ends the stream when it is complete.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    EventLog& log = handlers_->engine()->events();
    if (write_in_flight_) {
      // Shutting down behind a write the client does not read: cancel it,
      // so the stream ends while the completion queues still run.
      if (log.closed()) ctx_.TryCancel();
      return;
    }
    // Reads on until something matches or the log is caught up: a batch
    // with no match must not leave a filtered replay waiting for an event
    // that may never come. Bounded by the log's size.
    while (pending_.empty()) {
      std::vector<v1::TaskEvent> batch;
      if (auto s = log.Read(cursor_, kReadBatch, &batch); !s.ok()) {
        FinishLocked(absl::ResourceExhaustedError(absl::StrCat(
            "stream fell behind the event log (", s.message(),
            "); resume with from_sequence=", log.first_retained())));
        return;
      }
      if (batch.empty()) break;
      cursor_ += batch.size();
      for (auto& e : batch) {
        if (Matches(e)) pending_.push_back(std::move(e));
      }
    }
    if (cursor_ >= start_seq_ && !terminal_at_start_.empty()) {
      for (const auto& id : terminal_at_start_) done_ids_.insert(id);
      terminal_at_start_.clear();
    }
    if (!pending_.empty()) {
      v1::TaskEvent event = std::move(pending_.front());
      pending_.pop_front();
      if (IsTerminal(event.task().state())) done_ids_.insert(event.task().id());
      if (request_.include_payloads()) {
        if (auto full = handlers_->engine()->Get(event.task().id()); full.ok()) {
          event.mutable_task()->mutable_spec()->set_payload(
              full->spec().payload());
          if (IsTerminal(event.task().state())) {
            event.mutable_task()->set_result(full->result());
          }
        }
      }
      write_in_flight_ = true;
      Ref();
      meter_.Sent();
      writer_.Write(event, &write_tag_);
      return;
    }
    if (!ids_.empty() && done_ids_.size() >= ids_.size()) {
      FinishLocked(absl::OkStatus());
    } else if (log.closed()) {
      FinishLocked(absl::UnavailableError("server is shutting down"));
    }
  }

  // Ends the stream with `status`; behind a write in flight, the Finish is
  // started when that write returns (one operation at a time).
  void FinishLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_status_ = status;
    if (!write_in_flight_) StartFinishLocked();
  }

  void StartFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_started_) return;
    finish_started_ = true;
    Ref();
    grpc::Status status = ToGrpcStatus(final_status_);
    meter_.Handled(status.error_code());
    writer_.Finish(status, &finish_tag_);
  }

  const TaskServiceHandlers* const handlers_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  v1::StreamRequest request_;
  grpc::ServerAsyncWriter<v1::TaskEvent> writer_;
  Tag request_tag_{this, kRequest};
  Tag write_tag_{this, kWrite};
  Tag done_tag_{this, kDone};
  Tag finish_tag_{this, kFinish};

  uint64_t subscription_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_set<std::string> ids_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> terminal_at_start_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> done_ids_ ABSL_GUARDED_BY(mu_);
  uint64_t start_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::TaskEvent> pending_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void TaskServiceHandlers::Arm(grpc::ServerCompletionQueue* cq) const {
  auto site = [this](const char* method) {
    return sites_->For(v1::TaskService::service_full_name(), method);
  };
  SubmitCall::Arm(site(kSubmit.name), engine_, service_, &kSubmit, cq);
  SubmitBatchCall::Arm(site(kSubmitBatch.name), engine_, service_,
                       &kSubmitBatch, cq);
  GetCall::Arm(site(kGet.name), engine_, service_, &kGet, cq);
  ListCall::Arm(site(kList.name), engine_, service_, &kList, cq);
  CancelCall::Arm(site(kCancel.name), engine_, service_, &kCancel, cq);
  AwaitCall::Arm(site("Await"), this, cq);
  StreamCall::Arm(site("Stream"), this, cq);
}

}  // namespace taskd
