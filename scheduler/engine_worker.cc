// Engine: the worker-facing operations (connect, leases, results) and the
// timer callbacks (schedules, lease expiry, attempt timeouts, retention).
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "api/strings/text_limits.h"
#include "api/strings/utf8.h"
#include "scheduler/engine.h"
#include "scheduler/engine_impl.h"
#include "scheduler/task_state.h"

namespace taskd {
namespace {

constexpr size_t kMaxWorkerIdBytes = 128;
constexpr int kMaxWorkerQueues = 100;
constexpr int kMaxWorkerTypes = 1000;

}  // namespace

absl::StatusOr<std::shared_ptr<WorkerSession>> EngineImpl::ConnectWorker(
    const v1::Hello& hello, WorkerSink* sink) {
  if (shutting_down_) return absl::UnavailableError("server is shutting down");
  if (hello.worker_id().size() > kMaxWorkerIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hello.worker_id: longer than ", kMaxWorkerIdBytes, " bytes"));
  }
  if (hello.queues_size() > kMaxWorkerQueues) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello.queues: at most ", kMaxWorkerQueues, " queues"));
  }
  if (hello.types_size() > kMaxWorkerTypes) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello.types: at most ", kMaxWorkerTypes, " types"));
  }
  std::vector<std::string> queues;
  for (int i = 0; i < hello.queues_size(); ++i) {
    if (auto s = ValidateQueueName(hello.queues(i),
                                   absl::StrCat("hello.queues[", i, "]"));
        !s.ok())
      return s;
    queues.push_back(hello.queues(i));
  }
  if (queues.empty()) queues.push_back("default");
  absl::flat_hash_set<std::string> types;
  for (int i = 0; i < hello.types_size(); ++i) {
    if (auto s = ValidateTypeName(hello.types(i),
                                  absl::StrCat("hello.types[", i, "]"));
        !s.ok())
      return s;
    types.insert(hello.types(i));
  }
  if (hello.concurrency() < 0 ||
      hello.concurrency() > options_.max_worker_concurrency) {
    return absl::InvalidArgumentError(
        absl::StrCat("hello.concurrency: must be 0..",
                     options_.max_worker_concurrency, ", got ",
                     hello.concurrency()));
  }
  std::string id = hello.worker_id().empty()
                       ? absl::StrCat("worker-", next_lease_.fetch_add(1))
                       : hello.worker_id();
  auto session = std::make_shared<WorkerSession>(
      std::move(id), std::move(queues), std::move(types),
      std::max(1, hello.concurrency()), sink, clock_->Now());
  dispatcher_.AddWorker(session);
  events_.Wake();
  return session;
}

void EngineImpl::DisconnectWorker(
    const std::shared_ptr<WorkerSession>& worker) {
  const std::vector<TaskKey> held = dispatcher_.RemoveWorker(worker.get());
  for (const TaskKey& id : held) {
    Effects fx;
    store_.MutateTask(id, [&](TaskRecord& r) {
      if (r.state() != v1::TASK_STATE_RUNNING || r.run == nullptr ||
          r.run->lease.holder != worker) {
        return;
      }
      if (shutting_down_) {
        // Keep the task RUNNING: a restart recovers it; only drop the sink.
        r.run->lease.holder.reset();
        return;
      }
      EndAttempt(r,
                 MakeError("lease_expired",
                           absl::StrCat("worker ", worker->worker_id,
                                        " disconnected while running the task"),
                           /*retryable=*/true),
                 fx);
    });
    Apply(fx);
  }
}

void EngineImpl::SendCancelNotice(const TaskRecord& r,
                                  const std::string& reason) {
  if (r.run == nullptr || !r.run->lease.holder) return;
  const Lease& lease = r.run->lease;
  v1::WorkResponse notice;
  notice.mutable_cancel()->set_task_id(r.id());
  notice.mutable_cancel()->set_lease_id(lease.id);
  notice.mutable_cancel()->set_reason(reason);
  lease.holder->sink->Send(std::move(notice));
}

absl::Duration EngineImpl::HeartbeatTimeout(const TaskRecord& r) const {
  if (r.spec.has_settings()) {
    const v1::TaskSpec settings = r.spec.Settings();
    if (settings.has_heartbeat_timeout()) {
      absl::Duration d = ToDuration(settings.heartbeat_timeout());
      if (d > absl::ZeroDuration()) return d;
    }
  }
  return options_.default_heartbeat_timeout;
}

void EngineImpl::MutateLeased(
    const std::string& id, uint64_t lease_id, const WorkerSession* worker,
    const std::function<void(TaskRecord&, Effects&)>& change) {
  Effects fx;
  store_.MutateTask(id, [&](TaskRecord& r) {
    if (r.state() != v1::TASK_STATE_RUNNING || r.lease_id() != lease_id ||
        lease_id == 0) {
      return;  // the attempt already ended: a stale lease
    }
    if (worker != nullptr && !r.run->lease.ClaimableBy(*worker)) return;
    change(r, fx);
  });
  Apply(fx);
}

absl::Status EngineImpl::Heartbeat(WorkerSession& worker) {
  worker.Touch(clock_->Now());
  return absl::OkStatus();
}

absl::Status EngineImpl::Progress(WorkerSession& worker,
                                  const v1::ProgressUpdate& msg) {
  if (msg.percent() < 0 || msg.percent() > 100) {
    return absl::InvalidArgumentError(absl::StrCat(
        "progress.percent: must be 0..100, got ", msg.percent()));
  }
  absl::Time now = clock_->Now();
  worker.Touch(now);
  // A stale lease is fenced off: ignored, OK.
  MutateLeased(msg.task_id(), msg.lease_id(), &worker,
               [&](TaskRecord& r, Effects& fx) {
                 // An orphaned lease's holder is alive.
                 r.run->lease.Touch(now);
                 std::unique_ptr<v1::Progress>& progress = r.run->progress;
                 if (!progress) progress = std::make_unique<v1::Progress>();
                 v1::Progress* p = progress.get();
                 p->set_percent(msg.percent());
                 // Shortened, not refused: a wordy progress message must not
                 // end the worker's stream and every lease on it.
                 p->set_message(
                     TruncateUtf8(msg.message(), kMaxProgressMessageBytes));
                 *p->mutable_update_time() = FromTime(now);
                 Emit(r, v1::EVENT_TYPE_PROGRESS, fx);
               });
  return absl::OkStatus();
}

absl::Status EngineImpl::Complete(WorkerSession& worker,
                                  const v1::Complete& msg) {
  worker.Touch(clock_->Now());
  MutateLeased(
      msg.task_id(), msg.lease_id(), &worker, [&](TaskRecord& r, Effects& fx) {
        if (r.cancel_requested) {
          EndAttempt(r, v1::TaskError(), fx);  // ends CANCELLED, result dropped
        } else if (static_cast<int64_t>(msg.result().size()) >
                   options_.limits.max_payload_bytes) {
          EndAttempt(r,
                     MakeError("result_too_large",
                               absl::StrCat("result of ", msg.result().size(),
                                            " bytes exceeds the limit of ",
                                            options_.limits.max_payload_bytes),
                               /*retryable=*/false),
                     fx);
        } else {
          if (auto* m = r.Metrics(options_.metrics))
            m->AttemptEnded(AttemptOutcome::kSucceeded,
                            clock_->Now() - r.start_time());
          r.run->result = msg.result();
          r.run->error.reset();
          Finish(r, v1::TASK_STATE_SUCCEEDED, fx);
        }
      });
  return absl::OkStatus();
}

absl::Status EngineImpl::Fail(WorkerSession& worker, const v1::Fail& msg) {
  worker.Touch(clock_->Now());
  v1::TaskError error;
  error.set_code(msg.error().code().empty()
                     ? "error"
                     : TruncateUtf8(msg.error().code(), kMaxErrorCodeBytes));
  // Cut on a character boundary: a record holding a split character could
  // not be parsed again (by clients, or by recovery at the next start).
  error.set_message(TruncateUtf8(msg.error().message(), kMaxErrorMessageBytes));
  error.set_details(TruncateUtf8(msg.error().details(), kMaxErrorDetailsBytes));
  error.set_retryable(msg.error().retryable());
  MutateLeased(msg.task_id(), msg.lease_id(), &worker,
               [&](TaskRecord& r, Effects& fx) {
                 EndAttempt(r, std::move(error), fx);
               });
  return absl::OkStatus();
}

// Called by the Dispatcher with its lock held (see dispatcher.h).
bool EngineImpl::StartTask(const TaskKey& task,
                           const std::shared_ptr<WorkerSession>& worker) {
  if (shutting_down_) return false;
  bool started = false;
  store_.MutateTask(task, [&](TaskRecord& r) {
    if (r.state() != v1::TASK_STATE_PENDING) return;  // stale entry
    started = true;
    Effects unused;
    Transition(r, v1::TASK_STATE_RUNNING);
    absl::Time now = clock_->Now();
    if (auto* m = r.Metrics(options_.metrics))
      m->AttemptStarted(now - r.ready_since());
    ++r.attempt;
    TaskRun& run = r.Run();
    run.worker_id = worker->worker_id;
    run.start_time = now;
    run.lease.Grant(next_lease_.fetch_add(1), worker);
    Emit(r, v1::EVENT_TYPE_STARTED, unused);

    v1::WorkResponse message;
    v1::Assignment* a = message.mutable_assignment();
    r.ToTask(a->mutable_task());
    a->set_lease_id(run.lease.id);
    a->set_max_result_bytes(
        static_cast<uint64_t>(options_.limits.max_payload_bytes));
    const uint64_t lease = run.lease.id;
    const std::string id = a->task().id();
    const google::protobuf::Duration& timeout = a->task().spec().timeout();
    if (ToDuration(timeout) > absl::ZeroDuration()) {
      absl::Time deadline = now + ToDuration(timeout);
      *a->mutable_deadline() = FromTime(deadline);
      timers_.Schedule(deadline,
                       [this, id, lease] { OnAttemptTimeout(id, lease); });
    }
    worker->sink->Send(std::move(message));
    absl::Duration hb = HeartbeatTimeout(r);
    timers_.Schedule(now + hb, [this, id, lease] { OnLeaseCheck(id, lease); });
  });
  return started;
}

void EngineImpl::OnScheduleDue(const std::string& id) {
  Effects fx;
  store_.MutateTask(id, [&](TaskRecord& r) {
    if (r.state() != v1::TASK_STATE_SCHEDULED) return;
    if (r.unmet_deps > 0) return;  // the last dependency makes it ready
    absl::Time due = r.schedule_time;
    if (due > clock_->Now()) {
      timers_.Schedule(due, [this, id] { OnScheduleDue(id); });
      return;
    }
    Transition(r, v1::TASK_STATE_PENDING);
    Emit(r, v1::EVENT_TYPE_SCHEDULED, fx);
    MakeReady(r, fx);
  });
  Apply(fx);
}

void EngineImpl::OnLeaseCheck(const std::string& id, uint64_t lease_id) {
  MutateLeased(id, lease_id, nullptr, [&](TaskRecord& r, Effects& fx) {
    const Lease& held = r.run->lease;
    if (!held.Live()) return;  // dropped at shutdown
    absl::Duration hb = HeartbeatTimeout(r);
    absl::Time expiry = held.Expiry(hb);
    if (clock_->Now() < expiry) {
      timers_.Schedule(expiry,
                       [this, id, lease_id] { OnLeaseCheck(id, lease_id); });
      return;
    }
    const bool restarted = held.holder == nullptr;
    SendCancelNotice(r, "lease expired: no heartbeat");
    EndAttempt(r,
               MakeError("lease_expired",
                         absl::StrCat("no heartbeat from worker ",
                                      restarted ? r.run->worker_id
                                                : held.holder->worker_id,
                                      " for ", absl::FormatDuration(hb),
                                      restarted ? " after a server restart" : ""),
                         /*retryable=*/true),
               fx);
  });
}

void EngineImpl::OnAttemptTimeout(const std::string& id, uint64_t lease_id) {
  MutateLeased(id, lease_id, nullptr, [&](TaskRecord& r, Effects& fx) {
    SendCancelNotice(r, "timeout");
    EndAttempt(r,
               MakeError("timeout",
                         absl::StrCat("attempt ", r.attempt,
                                      " exceeded its timeout of ",
                                      absl::FormatDuration(ToDuration(
                                          r.spec.Settings().timeout()))),
                         /*retryable=*/true),
               fx);
  });
}

void EngineImpl::OnRetentionDue(const std::string& id) {
  std::unique_ptr<TaskRecord> gone =
      store_.EraseUnless(id, [&](const TaskRecord& r) {
        if (!IsTerminal(r.state())) return true;
        if (options_.journal != nullptr) {
          // Written under the shard lock: after the task's last change.
          std::vector<Mutation> write;
          write.push_back(Mutation::DeleteTask(id));
          options_.journal->Write(std::move(write));
        }
        return false;
      });
  if (gone == nullptr) return;
  if (!gone->spec.has_settings()) return;
  const std::string slot = IdempotencySlot(
      gone->spec.queue(), gone->spec.Settings().idempotency_key());
  if (slot.empty()) return;
  absl::MutexLock lock(&idempotency_mu_);
  auto it = idempotency_.find(slot);
  if (it != idempotency_.end() && it->second == id) idempotency_.erase(it);
}

void EngineImpl::LinkDependency(const std::string& dependent,
                                const std::string& dependency, Effects& fx) {
  // Retired by retention when not found, so it finished long ago; had it
  // failed, the dependent would have been cancelled then.
  v1::TaskState finished = v1::TASK_STATE_SUCCEEDED;
  store_.Read(dependency, [&](const TaskRecord& r) {
    if (IsTerminal(r.state())) {
      finished = r.state();
    } else {
      dependencies_.Link(dependency, dependent);
      finished = v1::TASK_STATE_UNSPECIFIED;
    }
  });
  if (finished != v1::TASK_STATE_UNSPECIFIED) {
    OnDependencyDone(dependent, dependency, finished, fx);
  }
}

void EngineImpl::OnDependencyDone(const std::string& dependent,
                                  const std::string& dependency,
                                  v1::TaskState state, Effects& fx) {
  store_.MutateTask(dependent, [&](TaskRecord& r) {
    if (IsTerminal(r.state()) || r.unmet_deps <= 0) return;
    if (state == v1::TASK_STATE_SUCCEEDED) {
      if (--r.unmet_deps == 0 && r.state() == v1::TASK_STATE_SCHEDULED &&
          r.schedule_time <= clock_->Now()) {
        Transition(r, v1::TASK_STATE_PENDING);
        Emit(r, v1::EVENT_TYPE_SCHEDULED, fx);
        MakeReady(r, fx);
      }
    } else {
      r.unmet_deps = 0;
      r.set_error(MakeError(
          "dependency_failed",
          absl::StrCat("dependency ", dependency, " ended ", StateName(state)),
          /*retryable=*/false));
      // Its own dependents are cancelled in turn by Apply's worklist.
      Finish(r, v1::TASK_STATE_CANCELLED, fx);
    }
  });
}

}  // namespace taskd
