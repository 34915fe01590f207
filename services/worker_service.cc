#include "services/worker_service.h"

#include <atomic>
#include <deque>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "services/auth/caller.h"
#include "services/ref_counted_call.h"
#include "services/status_util.h"

namespace taskd {

// One worker's stream. Reads are sequential (one Read in flight), so engine
// calls made for incoming messages never overlap. Outgoing messages come
// from engine threads through Send(); only one Write is in flight at a time
// and the rest wait in `outbox_`. The outbox is bounded in bytes: past the
// handlers' budget the sink reports itself Congested and the dispatcher
// assigns nothing more (cancel notices still queue; they are small and at
// most one per held task); once the worker has read it down to half the
// budget, the engine is asked to dispatch again.
//
// Lock order: session_mu_ -> engine locks -> mu_ (Send is called under
// engine locks), so no engine method is ever called with mu_ held.
//
// The engine holds `this` as the session's sink until DisconnectWorker
// returns, so the session is ended on every path that ends the call: a
// failed read, a bad message, and the finish tag (a stream closed by the
// server at shutdown has no read pending to notice it). Whoever ends it does
// so while holding its own reference to the call.
class WorkCall final : public RefCountedCall, public WorkerSink {
 public:
  static void Arm(const CallSite& site, WorkerServiceHandlers* handlers,
                  grpc::ServerCompletionQueue* cq) {
    new WorkCall(site, handlers, cq);
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
        handlers_->Register(this);
        {
          absl::MutexLock lock(&mu_);
          Ref();  // the done tag
          registered_ = true;
          StartReadLocked();
        }
        break;
      case kRead:
        if (ok) {
          meter_.Received();
          OnMessage();
        } else {
          // Client half-closed, went away, or the server is shutting down.
          EndSession();
          absl::MutexLock lock(&mu_);
          FinishLocked(absl::OkStatus());
        }
        break;
      case kWrite: {
        bool drained = false;
        {
          absl::MutexLock lock(&mu_);
          write_in_flight_ = false;
          outbox_bytes_ -= in_flight_bytes_;
          handlers_->AddQueuedBytes(-static_cast<int64_t>(in_flight_bytes_));
          in_flight_bytes_ = 0;
          if (!ok) ClearOutboxLocked();  // broken stream; the read fails too
          if (finished_) {
            StartFinishLocked();
          } else if (!outbox_.empty()) {
            StartWriteLocked();
          }
          if (congested_.load() &&
              outbox_bytes_ <= handlers_->outbox_bytes() / 2) {
            congested_.store(false);
            drained = !finished_;
          }
        }
        // Outside mu_: dispatching calls Send, which takes it.
        if (drained) handlers_->engine()->WorkerDrained();
        break;
      }
      case kDone:
        break;
      case kFinish:
        break;
    }
    if (op == kFinish) {
      EndSession();
      bool unregister;
      {
        absl::MutexLock lock(&mu_);
        unregister = registered_;
        registered_ = false;
      }
      if (unregister) handlers_->Unregister(this);
    }
    Unref();
  }

  // WorkerSink: called by the engine, possibly under its locks.
  void Send(v1::WorkResponse message) override {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    const size_t bytes = message.ByteSizeLong();
    outbox_bytes_ += bytes;
    handlers_->AddQueuedBytes(static_cast<int64_t>(bytes));
    outbox_.push_back(std::move(message));
    if (outbox_bytes_ > handlers_->outbox_bytes()) congested_.store(true);
    if (!write_in_flight_) StartWriteLocked();
  }

  bool Congested() const override { return congested_.load(); }

  // Ends the stream with UNAVAILABLE (shutdown). The pending Read then fails
  // and the session is ended as usual.
  void Close() {
    absl::MutexLock lock(&mu_);
    FinishLocked(absl::UnavailableError("server is shutting down"));
    // A write the worker does not read would hold the Finish back until
    // the server's grace ran out, and its completion could then arrive
    // after the completion queues shut down: cancel it now instead.
    if (write_in_flight_) ctx_.TryCancel();
  }

 private:
  enum Op { kRequest, kRead, kWrite, kDone, kFinish };

  WorkCall(const CallSite& site, WorkerServiceHandlers* handlers,
           grpc::ServerCompletionQueue* cq)
      : RefCountedCall(site), handlers_(handlers), cq_(cq), stream_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    handlers_->service()->RequestWork(&ctx_, &stream_, cq_, cq_,
                                      &request_tag_);
  }

  void OnMessage() {
    Engine* engine = handlers_->engine();
    absl::Status status;
    std::shared_ptr<WorkerSession> session;
    {
      absl::MutexLock lock(&session_mu_);
      session = session_;
    }
    if (session == nullptr) {
      if (message_.msg_case() != v1::WorkRequest::kHello) {
        status = absl::FailedPreconditionError(
            "the first message on a Work stream must be hello");
      } else if (hello_seen_) {
        status = absl::FailedPreconditionError(
            "the Work stream's session has ended");
      } else if (status = HelloScope(message_.hello()); status.ok()) {
        hello_seen_ = true;
        auto connected = engine->ConnectWorker(message_.hello(), this);
        if (connected.ok()) {
          absl::MutexLock lock(&session_mu_);
          session_ = *std::move(connected);
        } else {
          status = connected.status();
        }
      }
    } else {
      switch (message_.msg_case()) {
        case v1::WorkRequest::kHello:
          status = absl::FailedPreconditionError(
              "hello: sent twice on one Work stream");
          break;
        case v1::WorkRequest::kProgress:
          status = engine->Progress(*session, message_.progress());
          break;
        case v1::WorkRequest::kHeartbeat:
          status = engine->Heartbeat(*session);
          break;
        case v1::WorkRequest::kComplete:
          status = engine->Complete(*session, message_.complete());
          break;
        case v1::WorkRequest::kFail:
          status = engine->Fail(*session, message_.fail());
          break;
        default:
          status = absl::InvalidArgumentError(
              "msg: empty WorkRequest (set one of hello, progress, "
              "heartbeat, complete, fail)");
      }
    }
    if (!status.ok()) EndSession();
    bool finished;
    {
      absl::MutexLock lock(&mu_);
      if (!status.ok()) {
        FinishLocked(status);
      } else {
        StartReadLocked();
      }
      finished = finished_;
    }
    // Closed meanwhile (shutdown): no read is pending, and the finish tag
    // may already have come and gone before a session just connected.
    if (finished) EndSession();
  }

  // Ends the worker's leases; afterwards the engine no longer calls Send.
  // Idempotent; safe from any of the call's paths.
  void EndSession() ABSL_LOCKS_EXCLUDED(mu_) {
    std::shared_ptr<WorkerSession> session;
    absl::MutexLock lock(&session_mu_);
    session = std::move(session_);
    session_.reset();
    if (session != nullptr) handlers_->engine()->DisconnectWorker(session);
  }

  void StartReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    Ref();
    stream_.Read(&message_, &read_tag_);
  }

  void StartWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    write_in_flight_ = true;
    Ref();
    // The message must outlive the write: it moves to `writing_`.
    writing_ = std::move(outbox_.front());
    outbox_.pop_front();
    in_flight_bytes_ = writing_.ByteSizeLong();
    meter_.Sent();
    stream_.Write(writing_, &write_tag_);
  }

  void ClearOutboxLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    outbox_.clear();
    handlers_->AddQueuedBytes(
        -static_cast<int64_t>(outbox_bytes_ - in_flight_bytes_));
    outbox_bytes_ = in_flight_bytes_;
  }

  // A worker whose token is scoped to some queues may serve only those.
  absl::Status HelloScope(const v1::Hello& hello) const {
    auth::Caller caller = auth::Caller::FromContext(ctx_);
    if (!caller.scoped()) return absl::OkStatus();
    if (hello.queues_size() == 0) return caller.CheckQueue("", "hello.queues");
    for (int i = 0; i < hello.queues_size(); ++i) {
      if (auto s = caller.CheckQueue(hello.queues(i),
                                     absl::StrCat("hello.queues[", i, "]"));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  void FinishLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_status_ = status;
    ClearOutboxLocked();
    if (!write_in_flight_) StartFinishLocked();
  }

  void StartFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_started_) return;
    finish_started_ = true;
    Ref();
    grpc::Status status = ToGrpcStatus(final_status_);
    meter_.Handled(status.error_code());
    stream_.Finish(status, &finish_tag_);
  }

  WorkerServiceHandlers* const handlers_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<v1::WorkResponse, v1::WorkRequest> stream_;
  Tag request_tag_{this, kRequest};
  Tag read_tag_{this, kRead};
  Tag write_tag_{this, kWrite};
  Tag done_tag_{this, kDone};
  Tag finish_tag_{this, kFinish};

  // Touched only by the read path, which is sequential.
  v1::WorkRequest message_;
  bool hello_seen_ = false;

  // Set by the read path at hello, ended by whichever path ends the call.
  // Held across DisconnectWorker so that a racing EndSession returns only
  // once the engine has let go of this sink.
  absl::Mutex session_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::shared_ptr<WorkerSession> session_ ABSL_GUARDED_BY(session_mu_);

  std::deque<v1::WorkResponse> outbox_ ABSL_GUARDED_BY(mu_);
  v1::WorkResponse writing_ ABSL_GUARDED_BY(mu_);  // the write in flight
  size_t outbox_bytes_ ABSL_GUARDED_BY(mu_) = 0;     // queued + in flight
  size_t in_flight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> congested_{false};
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
};

void WorkerServiceHandlers::Arm(grpc::ServerCompletionQueue* cq) {
  WorkCall::Arm(sites_->For(v1::WorkerService::service_full_name(), "Work"),
                this, cq);
}

void WorkerServiceHandlers::Register(WorkCall* call) {
  absl::MutexLock lock(&mu_);
  live_.insert(call);
}

void WorkerServiceHandlers::Unregister(WorkCall* call) {
  absl::MutexLock lock(&mu_);
  live_.erase(call);
}

void WorkerServiceHandlers::CloseAll() {
  // Under mu_, so no call can unregister (and be deleted) meanwhile.
  absl::MutexLock lock(&mu_);
  for (WorkCall* call : live_) call->Close();
}

}  // namespace taskd
