// Engine: the public API forwarding to EngineImpl; EngineImpl's
// construction, client-facing operations and the state machine shared by
// everything. Worker operations and timers are in engine_worker.cc, queues
// in engine_queues.cc, recovery in engine_recovery.cc.
#include "scheduler/engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <utility>

#include "absl/base/internal/raw_logging.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/str_cat.h"
#include "scheduler/engine_impl.h"
#include "scheduler/task_state.h"

namespace taskd {
namespace {

// A ListTasks page stops before this size: a client's default receive limit
// (4 MiB) less room for framing.
constexpr size_t kMaxListResponseBytes = (4 << 20) - (16 << 10);

// Payloads this large are journaled once per task (kPutTaskApart);
// smaller ones are cheaper rewritten with each change.
constexpr size_t kPayloadApartBytes = 512;

v1::EventType FinishEvent(v1::TaskState state) {
  switch (state) {
    case v1::TASK_STATE_SUCCEEDED:
      return v1::EVENT_TYPE_SUCCEEDED;
    case v1::TASK_STATE_FAILED:
      return v1::EVENT_TYPE_FAILED;
    default:
      return v1::EVENT_TYPE_CANCELLED;
  }
}

// Runs an *Async engine call and waits for its answer (the blocking API).
template <class T, class Start>
absl::StatusOr<T> WaitFor(Start start) {
  absl::StatusOr<T> out = absl::UnknownError("no answer");
  absl::Notification done;
  start([&](absl::StatusOr<T> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

absl::Status NotStored(const absl::Status& s) {
  return absl::UnavailableError(
      absl::StrCat("the change could not be stored: ", s.message()));
}

}  // namespace

EngineImpl::EngineImpl(EngineOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      ids_(options_.id_seed),
      events_(options_.event_log_capacity, 1, options_.event_log_bytes),
      awaits_(&timers_, [this](const std::string& id) { return Get(id); }),
      dispatcher_(
          [this](const TaskKey& task,
                 const std::shared_ptr<WorkerSession>& worker) {
            return StartTask(task, worker);
          },
          clock,
          // A rate-limited queue's next token: pump again then.
          [this](absl::Time when) {
            timers_.Schedule(when, [this] {
              dispatcher_.Pump();
              events_.Wake();
            });
          }) {
  if (options_.journal != nullptr) {
    // Stream shows an event only once its change is durable.
    options_.journal->SetDurableListener([this](uint64_t durable) {
      events_.MarkDurable(durable);
      events_.Wake();
    });
  }
}

EngineImpl::~EngineImpl() { StopTimerThread(); }

// ---------------------------------------------------------------- submit

absl::Status EngineImpl::CheckSpec(const v1::TaskSpec& spec,
                               absl::string_view path) const {
  if (auto s = ValidateTaskSpec(spec, options_.limits, path); !s.ok()) return s;
  return CheckDependenciesExist(spec, path);
}

absl::Status EngineImpl::CheckDependenciesExist(const v1::TaskSpec& spec,
                                                absl::string_view path) const {
  // Dependencies must exist already, so no cycle can ever form.
  for (int i = 0; i < spec.depends_on_size(); ++i) {
    const std::string& dep = spec.depends_on(i);
    if (!store_.Contains(dep)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".depends_on[", i, "]: unknown task ", dep,
          " (dependencies must exist; finished ones are kept for result_ttl)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TaskRecord>> EngineImpl::NewRecord(
    const v1::TaskSpec& spec, absl::Time now) {
  absl::StatusOr<std::unique_ptr<TaskRecord>> made =
      TaskRecord::Make(ids_.NextKey(now), spec, QueueOf(spec));
  if (!made.ok()) return made.status();
  TaskRecord& r = **made;
  r.create_time = now;
  absl::Time start = now;
  if (spec.has_run_at()) start = std::max(now, ToTime(spec.run_at()));
  if (spec.has_delay()) start = now + ToDuration(spec.delay());
  r.schedule_time = start;
  r.unmet_deps = static_cast<int16_t>(spec.depends_on_size());
  r.InitState(start > now || r.unmet_deps > 0 ? v1::TASK_STATE_SCHEDULED
                                              : v1::TASK_STATE_PENDING);
  return made;
}

v1::Task EngineImpl::Insert(std::unique_ptr<TaskRecord> record,
                            Effects& fx) {
  v1::Task out;
  store_.Insert(std::move(record), [&](TaskRecord& r) {
    Emit(r, v1::EVENT_TYPE_SUBMITTED, fx);
    if (auto* m = r.Metrics(options_.metrics)) m->Submitted();
    if (r.state() == v1::TASK_STATE_PENDING) {
      MakeReady(r, fx);
    } else {
      std::string id = r.id();
      timers_.Schedule(r.schedule_time, [this, id] { OnScheduleDue(id); });
    }
    if (r.unmet_deps > 0) {
      // Linked after the record is visible, in Apply (no lock held): a
      // dependency that finishes meanwhile then finds its dependent.
      const std::string id = r.id();
      const v1::TaskSpec settings = r.spec.Settings();
      for (const std::string& dep : settings.depends_on()) {
        fx.dependencies_done.push_back({id, dep, v1::TASK_STATE_UNSPECIFIED});
      }
    }
    r.ToTask(&out);
  });
  return out;
}

std::optional<v1::Task> EngineImpl::Deduplicate(const v1::TaskSpec& spec,
                                                const std::string& slot) {
  auto it = idempotency_.find(slot);
  if (it == idempotency_.end()) return std::nullopt;
  auto existing = Get(it->second);
  if (!existing.ok()) return std::nullopt;  // retired: the key is free again
  if (auto* m = options_.metrics) m->ForQueue(QueueOf(spec))->Deduplicated();
  return *std::move(existing);
}

void EngineImpl::SubmitAsync(const v1::TaskSpec& spec, SubmitCallback done) {
  if (shutting_down_) {
    return done(absl::UnavailableError("server is shutting down"));
  }
  if (auto s = CheckSpec(spec, "task"); !s.ok()) return done(s);
  if (store_.size() >= options_.max_tasks) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "the server holds its limit of ", options_.max_tasks,
        " tasks; retry after tasks finish and their result_ttl passes")));
  }
  Effects fx;
  SubmitResult out;
  absl::Time now = clock_->Now();
  if (spec.idempotency_key().empty()) {
    auto record = NewRecord(spec, now);
    if (!record.ok()) return done(record.status());
    out.task = Insert(*std::move(record), fx);
  } else {
    const std::string slot = IdempotencySlot(QueueOf(spec), spec);
    absl::MutexLock lock(&idempotency_mu_);
    if (auto existing = Deduplicate(spec, slot)) {
      out.task = *std::move(existing);
      out.deduplicated = true;
      // The first submit may not be durable yet: answer after it is.
      if (options_.journal != nullptr) {
        fx.ticket = options_.journal->last_ticket();
      }
    } else {
      auto record = NewRecord(spec, now);
      if (!record.ok()) return done(record.status());
      idempotency_[slot] = (*record)->id();
      out.task = Insert(*std::move(record), fx);
    }
  }
  Apply(fx, [done = std::move(done),
             out = std::move(out)](absl::Status s) mutable {
    if (!s.ok()) return done(NotStored(s));
    done(std::move(out));  // called once
  });
}

void EngineImpl::SubmitBatchAsync(
    const google::protobuf::RepeatedPtrField<v1::TaskSpec>& specs,
    BatchCallback done) {
  if (shutting_down_) {
    return done(absl::UnavailableError("server is shutting down"));
  }
  if (specs.empty()) {
    return done(absl::InvalidArgumentError("tasks: empty batch"));
  }
  if (specs.size() > options_.max_batch_size) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("tasks: at most ", options_.max_batch_size,
                     " tasks per batch, got ", specs.size())));
  }
  for (int i = 0; i < specs.size(); ++i) {
    if (auto s = CheckSpec(specs[i], absl::StrCat("tasks[", i, "]")); !s.ok())
      return done(s);
  }
  if (store_.size() + specs.size() > options_.max_tasks) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "the server holds its limit of ", options_.max_tasks, " tasks")));
  }
  // Records first: the batch is refused whole, before anything is stored.
  // (A deduplicated entry's record is dropped unused.)
  absl::Time now = clock_->Now();
  std::vector<std::unique_ptr<TaskRecord>> records;
  records.reserve(specs.size());
  for (const v1::TaskSpec& spec : specs) {
    auto record = NewRecord(spec, now);
    if (!record.ok()) return done(record.status());
    records.push_back(*std::move(record));
  }
  // The idempotency lock is held across the whole batch so that keys are
  // checked and claimed atomically, duplicates inside the batch included.
  Effects fx;
  std::vector<v1::Task> out;
  out.reserve(specs.size());
  {
    absl::MutexLock lock(&idempotency_mu_);
    for (int i = 0; i < specs.size(); ++i) {
      const v1::TaskSpec& spec = specs[i];
      const std::string slot = IdempotencySlot(QueueOf(spec), spec);
      if (!slot.empty()) {
        if (auto existing = Deduplicate(spec, slot)) {
          out.push_back(*std::move(existing));
          continue;
        }
        idempotency_[slot] = records[i]->id();
      }
      out.push_back(Insert(std::move(records[i]), fx));
    }
    // Deduplicated entries may name tasks whose first submit is in flight.
    if (options_.journal != nullptr) {
      fx.ticket = options_.journal->last_ticket();
    }
  }
  Apply(fx, [done = std::move(done),
             out = std::move(out)](absl::Status s) mutable {
    if (!s.ok()) return done(NotStored(s));
    done(std::move(out));  // called once
  });
}

// ---------------------------------------------------------------- reads

absl::StatusOr<v1::Task> EngineImpl::Get(const std::string& id) const {
  if (auto s = ValidateTaskId(id, "id"); !s.ok()) return s;
  v1::Task out;
  if (!store_.Read(id, [&](const TaskRecord& r) { r.ToTask(&out); })) {
    return absl::NotFoundError(absl::StrCat("task ", id, " not found"));
  }
  return out;
}

void EngineImpl::GetAsync(const std::string& id, TaskCallback done) const {
  if (auto s = ValidateTaskId(id, "id"); !s.ok()) return done(s);
  v1::Task task;
  uint64_t ticket = 0;
  if (!store_.Read(id, [&](const TaskRecord& r) {
        r.ToTask(&task);
        ticket = r.ticket;
      })) {
    return done(absl::NotFoundError(absl::StrCat("task ", id, " not found")));
  }
  if (options_.journal == nullptr || ticket == 0) return done(std::move(task));
  options_.journal->WhenDurable(
      ticket, [done = std::move(done),
               task = std::move(task)](absl::Status s) mutable {
        if (!s.ok()) return done(NotStored(s));
        done(std::move(task));  // called once
      });
}

absl::StatusOr<v1::ListTasksResponse> EngineImpl::List(
    const v1::ListTasksRequest& request) const {
  if (!request.queue().empty()) {
    if (auto s = ValidateQueueName(request.queue(), "queue"); !s.ok()) return s;
  }
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  if (!request.page_token().empty()) {
    if (auto s = ValidateTaskId(request.page_token(), "page_token"); !s.ok())
      return absl::InvalidArgumentError("page_token: not a token from ListTasks");
  }
  absl::flat_hash_set<int> states;
  for (int i = 0; i < request.states_size(); ++i) {
    int st = request.states(i);
    if (st <= v1::TASK_STATE_UNSPECIFIED || st > v1::TASK_STATE_CANCELLED) {
      return absl::InvalidArgumentError(
          absl::StrCat("states[", i, "]: not a task state: ", st));
    }
    states.insert(st);
  }
  const size_t page =
      request.page_size() == 0 ? 100 : std::min(request.page_size(), 1000);

  // Each shard is ordered by id: take the ids of up to `page + 1` matches
  // from each (ids only: nothing is copied that will not be returned), merge
  // them, then copy the page's tasks, stopping before the answer passes a
  // client's default receive limit.
  const std::vector<std::string> ids = store_.IdsAfter(
      request.page_token(), page + 1, [&](const TaskRecord& r) {
        if (!request.queue().empty() && r.spec.queue() != request.queue())
          return false;
        return states.empty() || states.contains(r.state());
      });
  v1::ListTasksResponse out;
  size_t bytes = 0;
  bool cut = ids.size() > page;
  const TaskParts parts{request.include_payloads(), request.include_payloads()};
  for (size_t i = 0; i < ids.size() && i < page; ++i) {
    v1::Task task;
    if (!store_.Read(ids[i], [&](const TaskRecord& r) { r.ToTask(&task, parts); })) {
      continue;  // retired by retention meanwhile
    }
    const size_t size = task.ByteSizeLong() + 8;
    if (out.tasks_size() > 0 && bytes + size > kMaxListResponseBytes) {
      cut = true;
      break;
    }
    bytes += size;
    *out.add_tasks() = std::move(task);
  }
  if (cut && out.tasks_size() > 0) {
    out.set_next_page_token(out.tasks(out.tasks_size() - 1).id());
  }
  return out;
}

// ---------------------------------------------------------------- cancel

void EngineImpl::CancelAsync(const std::string& id, const std::string& reason,
                         TaskCallback done) {
  if (auto s = ValidateTaskId(id, "id"); !s.ok()) return done(s);
  if (reason.size() > 1024) {
    return done(absl::InvalidArgumentError("reason: longer than 1024 bytes"));
  }
  Effects fx;
  v1::Task out;
  const bool found = store_.MutateTask(id, [&](TaskRecord& r) {
    std::string why = reason.empty() ? "cancelled by client" : reason;
    switch (r.state()) {
      case v1::TASK_STATE_PENDING:
        fx.unready.push_back(ReadyOf(r));
        [[fallthrough]];
      case v1::TASK_STATE_SCHEDULED:
        r.set_error(MakeError("cancelled", why, false));
        Finish(r, v1::TASK_STATE_CANCELLED, fx);
        break;
      case v1::TASK_STATE_RUNNING:
        if (!r.cancel_requested) {
          r.cancel_requested = true;
          r.Run().cancel_reason = std::make_unique<std::string>(why);
          SendCancelNotice(r, why);
          Persist(r, fx);
        }
        break;
      default:
        break;  // terminal: unchanged, idempotent
    }
    r.ToTask(&out);
    // Whatever the answer shows must be durable first (a terminal state
    // written moments ago by another call included).
    fx.ticket = std::max(fx.ticket, r.ticket);
  });
  if (!found) {
    return done(absl::NotFoundError(absl::StrCat("task ", id, " not found")));
  }
  Apply(fx, [done = std::move(done),
             out = std::move(out)](absl::Status s) mutable {
    if (!s.ok()) return done(NotStored(s));
    done(std::move(out));  // called once
  });
}

// ---------------------------------------------------------------- await

absl::StatusOr<AwaitHandle> EngineImpl::Await(
    const std::vector<std::string>& ids, const AwaitOptions& options,
    AwaitCallback done) {
  if (shutting_down_) return absl::UnavailableError("server is shutting down");
  if (ids.empty()) return absl::InvalidArgumentError("ids: at least one id");
  if (static_cast<int>(ids.size()) > options_.max_await_ids) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ids: at most ", options_.max_await_ids, " ids, got ", ids.size()));
  }
  absl::flat_hash_map<absl::string_view, size_t> seen;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (auto s = ValidateTaskId(ids[i], absl::StrCat("ids[", i, "]")); !s.ok())
      return s;
    if (auto [it, inserted] = seen.emplace(ids[i], i); !inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("ids[", i, "]: repeats ids[", it->second, "] (", ids[i],
                       "); await each task once"));
    }
    if (!store_.Contains(ids[i])) {
      return absl::NotFoundError(absl::StrCat("ids[", i, "]: task ", ids[i],
                                              " not found"));
    }
  }
  absl::StatusOr<AwaitHandle> registered =
      awaits_.Register(ids, options.any, options.include_payloads,
                       options.max_response_bytes, std::move(done));
  if (!registered.ok()) return registered.status();
  const AwaitHandle& waiter = *registered;
  // Parking and the terminal check happen under the task's shard lock, so a
  // completion either takes this waiter or is seen by this check.
  for (const std::string& id : ids) {
    bool finished = true;
    uint64_t ticket = 0;
    store_.Read(id, [&](const TaskRecord& r) {
      if (!IsTerminal(r.state())) {
        awaits_.WaitOn(id, waiter);
        finished = false;
      } else {
        ticket = r.ticket;
      }
    });
    if (!finished) continue;
    if (options_.journal != nullptr && ticket != 0) {
      // Terminal already, but perhaps not durable yet: count it once it is.
      options_.journal->WhenDurable(ticket, [this, waiter](absl::Status s) {
        if (!s.ok()) return awaits_.Fire(waiter, NotStored(s), false);
        awaits_.CountDone(waiter);
      });
    } else {
      awaits_.CountDone(waiter);  // also when retired meanwhile
    }
  }
  awaits_.ArmTimeout(waiter, options.deadline);
  return waiter;
}

// ---------------------------------------------------------------- state changes

void EngineImpl::Transition(TaskRecord& r, v1::TaskState to) {
  if (auto s = CheckTransition(r.state(), to); !s.ok()) {
    illegal_transitions_.fetch_add(1);
    ABSL_RAW_LOG(ERROR, "task %s: %s", r.id().c_str(),
                 std::string(s.message()).c_str());
    return;
  }
  store_.SetState(r, to);
}

void EngineImpl::Emit(TaskRecord& r, v1::EventType type, Effects& fx) {
  // Every state change emits an event: that is where it is journaled, and
  // the event is readable once that write is durable. Progress alone is not
  // journaled (it is saved with the next state change).
  uint64_t ticket = 0;
  if (type != v1::EVENT_TYPE_PROGRESS) {
    Persist(r, fx);
    ticket = r.ticket;
  }
  // The log keeps a snapshot (no payload, no result), made into a message
  // only if a Stream reads it.
  events_.Append(type, std::make_unique<TaskSnapshot>(r), clock_->Now(),
                 ticket);
}

void EngineImpl::Persist(TaskRecord& r, Effects& fx) {
  if (options_.journal == nullptr) return;
  // Encoded here, through one message per thread that keeps its buffers:
  // no message per write is built, handed to the committer and freed there.
  thread_local v1::Task scratch;
  auto encode = [&](TaskParts parts) {
    r.ToTask(&scratch, parts);
    return scratch.SerializeAsString();
  };
  std::vector<Mutation> write;
  if (r.spec.payload().size() < kPayloadApartBytes) {
    // Small: rewritten whole.
    write.push_back(Mutation::PutEncodedTask(Mutation::Kind::kPutTask, r.id(),
                                             encode({})));
  } else if (!r.payload_stored) {
    // A large payload is written once, with the first write of this run;
    // every later write is the small record (the store keeps the payload).
    write.push_back(Mutation::PutEncodedTask(
        Mutation::Kind::kPutTaskApart, r.id(), encode({.payload = false}),
        std::string(r.spec.payload())));
    r.payload_stored = true;
  } else {
    write.push_back(Mutation::PutEncodedTask(Mutation::Kind::kPutTaskState,
                                             r.id(), encode({.payload = false})));
  }
  fx.ticket = options_.journal->Write(std::move(write));
  r.ticket = fx.ticket;
}

void EngineImpl::MakeReady(TaskRecord& r, Effects& fx) {
  r.set_ready_since(clock_->Now());
  fx.ready.push_back(ReadyOf(r, next_ready_seq_.fetch_add(1)));
}

void EngineImpl::ReleaseWorker(TaskRecord& r, Effects& fx) {
  if (r.run == nullptr) return;
  if (auto holder = r.run->lease.Release()) {
    fx.released.emplace_back(std::move(holder), r.key);
  }
}

void EngineImpl::Finish(TaskRecord& r, v1::TaskState to, Effects& fx) {
  Transition(r, to);
  absl::Time now = clock_->Now();
  r.Run().finish_time = now;
  if (auto* m = r.Metrics(options_.metrics))
    m->Finished(to, now - r.create_time);
  ReleaseWorker(r, fx);
  Emit(r, FinishEvent(to), fx);
  const std::string id = r.id();
  for (auto& w : awaits_.TakeWaitersOf(id)) {
    fx.waiters.push_back(std::move(w));
  }
  for (std::string& d : dependencies_.TakeDependents(id)) {
    fx.dependencies_done.push_back({std::move(d), id, to});
  }
  timers_.Schedule(now + ResultTtl(r), [this, id] { OnRetentionDue(id); });
}

absl::Duration EngineImpl::ResultTtl(const TaskRecord& r) const {
  if (r.spec.has_settings()) {
    const v1::TaskSpec settings = r.spec.Settings();
    if (settings.has_result_ttl()) return ToDuration(settings.result_ttl());
  }
  return options_.default_result_ttl;
}

absl::Duration EngineImpl::Backoff(const v1::RetryPolicy& p, int attempt) {
  absl::Duration initial = p.has_initial_backoff()
                               ? ToDuration(p.initial_backoff())
                               : options_.default_initial_backoff;
  absl::Duration cap = p.has_max_backoff() && ToDuration(p.max_backoff()) > absl::ZeroDuration()
                           ? ToDuration(p.max_backoff())
                           : options_.default_max_backoff;
  double mult = p.multiplier() == 0 ? options_.default_backoff_multiplier
                                    : p.multiplier();
  double factor = std::pow(mult, std::max(0, attempt - 1));
  absl::Duration b = std::min(cap, initial * std::min(factor, 1e9));
  double jitter;
  {
    absl::MutexLock lock(&rng_mu_);
    jitter = absl::Uniform(rng_, 0.5, 1.0);
  }
  return b * jitter;
}

void EngineImpl::EndAttempt(TaskRecord& r, v1::TaskError error, Effects& fx) {
  ReleaseWorker(r, fx);
  if (auto* m = r.Metrics(options_.metrics))
    m->AttemptEnded(FailedAttemptOutcome(r.cancel_requested, error),
                    clock_->Now() - r.start_time());
  if (r.cancel_requested) {
    const std::unique_ptr<std::string>& reason = r.Run().cancel_reason;
    r.set_error(MakeError(
        "cancelled", reason ? *reason : "cancelled by client", false));
    Finish(r, v1::TASK_STATE_CANCELLED, fx);
    return;
  }
  const v1::TaskSpec settings = r.spec.Settings();
  const int max_attempts = settings.retry().max_attempts() > 0
                               ? settings.retry().max_attempts()
                               : options_.default_max_attempts;
  bool retry = error.retryable() && r.attempt < max_attempts;
  r.set_error(std::move(error));
  if (!retry) {
    Finish(r, v1::TASK_STATE_FAILED, fx);
    return;
  }
  absl::Time now = clock_->Now();
  if (auto* m = r.Metrics(options_.metrics)) m->Retried();
  absl::Duration backoff = Backoff(settings.retry(), r.attempt);
  r.schedule_time = now + backoff;
  if (backoff <= absl::ZeroDuration()) {
    Transition(r, v1::TASK_STATE_PENDING);
    Emit(r, v1::EVENT_TYPE_RETRYING, fx);
    MakeReady(r, fx);
    return;
  }
  Transition(r, v1::TASK_STATE_SCHEDULED);
  Emit(r, v1::EVENT_TYPE_RETRYING, fx);
  std::string id = r.id();
  timers_.Schedule(now + backoff, [this, id] { OnScheduleDue(id); });
}

void EngineImpl::Apply(Effects& fx, Journal::Callback done) {
  // Scheduling effects take place at once: if the change is lost in a
  // crash, the task is simply run again (at-least-once). What a client is
  // told (acknowledgements, Await results) waits until it is durable.
  for (const ReadyEntry& e : fx.unready) dispatcher_.Remove(e);
  for (ReadyEntry& e : fx.ready) dispatcher_.Enqueue(std::move(e));
  for (auto& [worker, id] : fx.released) dispatcher_.Release(worker.get(), id);
  if (!fx.dependencies_done.empty()) {
    RunDependencyWork(fx);
  }
  events_.Wake();
  if (options_.journal != nullptr && fx.ticket != 0) {
    options_.journal->WhenDurable(
        fx.ticket, [this, waiters = std::move(fx.waiters),
                    done = std::move(done)](absl::Status s) {
          for (const auto& w : waiters) awaits_.CountDone(w);
          if (done) done(s);
        });
    return;
  }
  for (const auto& w : fx.waiters) awaits_.CountDone(w);
  if (done) done(absl::OkStatus());
}

void EngineImpl::RunDependencyWork(Effects& fx) {
  std::deque<Effects::Finished> queue(
      std::make_move_iterator(fx.dependencies_done.begin()),
      std::make_move_iterator(fx.dependencies_done.end()));
  fx.dependencies_done.clear();
  while (!queue.empty()) {
    Effects::Finished f = std::move(queue.front());
    queue.pop_front();
    Effects sub;
    if (f.state == v1::TASK_STATE_UNSPECIFIED) {
      LinkDependency(f.dependent, f.dependency, sub);
    } else {
      OnDependencyDone(f.dependent, f.dependency, f.state, sub);
    }
    // What this outcome causes in turn joins the queue instead of recursing.
    for (Effects::Finished& next : sub.dependencies_done) {
      queue.push_back(std::move(next));
    }
    sub.dependencies_done.clear();
    Apply(sub);
  }
}

void EngineImpl::Shutdown() {
  shutting_down_.store(true);
  awaits_.Shutdown();
  events_.Close();
}

void EngineImpl::StartTimerThread() {
  if (timer_thread_.joinable()) return;
  timer_thread_stop_.store(false);
  timer_thread_ = std::thread([this] {
    while (!timer_thread_stop_.load()) {
      ProcessTimers();
      timers_.WaitForWork(absl::Now() + absl::Seconds(1));
    }
  });
}

void EngineImpl::StopTimerThread() {
  if (!timer_thread_.joinable()) return;
  timer_thread_stop_.store(true);
  timers_.Wake();
  timer_thread_.join();
}

// ---------------------------------------------------------------- Engine

Engine::Engine(EngineOptions options, Clock* clock)
    : impl_(std::make_unique<EngineImpl>(std::move(options), clock)) {}

Engine::~Engine() = default;

absl::StatusOr<SubmitResult> Engine::Submit(const v1::TaskSpec& spec) {
  return WaitFor<SubmitResult>(
      [&](SubmitCallback done) { impl_->SubmitAsync(spec, std::move(done)); });
}
void Engine::SubmitAsync(const v1::TaskSpec& spec, SubmitCallback done) {
  impl_->SubmitAsync(spec, std::move(done));
}
absl::StatusOr<std::vector<v1::Task>> Engine::SubmitBatch(
    const google::protobuf::RepeatedPtrField<v1::TaskSpec>& specs) {
  return WaitFor<std::vector<v1::Task>>([&](BatchCallback done) {
    impl_->SubmitBatchAsync(specs, std::move(done));
  });
}
void Engine::SubmitBatchAsync(
    const google::protobuf::RepeatedPtrField<v1::TaskSpec>& specs,
    BatchCallback done) {
  impl_->SubmitBatchAsync(specs, std::move(done));
}
absl::StatusOr<v1::Task> Engine::Get(const std::string& id) const {
  return impl_->Get(id);
}
void Engine::GetAsync(const std::string& id, TaskCallback done) const {
  impl_->GetAsync(id, std::move(done));
}
absl::StatusOr<v1::ListTasksResponse> Engine::List(
    const v1::ListTasksRequest& request) const {
  return impl_->List(request);
}
absl::StatusOr<v1::Task> Engine::Cancel(const std::string& id,
                                        const std::string& reason) {
  return WaitFor<v1::Task>([&](TaskCallback done) {
    impl_->CancelAsync(id, reason, std::move(done));
  });
}
void Engine::CancelAsync(const std::string& id, const std::string& reason,
                         TaskCallback done) {
  impl_->CancelAsync(id, reason, std::move(done));
}
absl::StatusOr<AwaitHandle> Engine::Await(const std::vector<std::string>& ids,
                                          const AwaitOptions& options,
                                          AwaitCallback done) {
  return impl_->Await(ids, options, std::move(done));
}
bool Engine::CancelAwait(const AwaitHandle& handle) {
  return impl_->CancelAwait(handle);
}
EventLog& Engine::events() { return impl_->events_; }

absl::StatusOr<v1::Queue> Engine::GetQueue(const std::string& queue) const {
  return impl_->GetQueue(queue);
}
std::vector<v1::Queue> Engine::ListQueues() const {
  return impl_->ListQueues();
}
void Engine::PauseQueueAsync(const std::string& queue, bool paused,
                             QueueCallback done) {
  impl_->PauseQueueAsync(queue, paused, std::move(done));
}
void Engine::UpdateQueueAsync(const std::string& queue,
                              std::optional<int> max_concurrency,
                              std::optional<double> max_dispatch_per_second,
                              QueueCallback done) {
  impl_->UpdateQueueAsync(queue, max_concurrency, max_dispatch_per_second,
                          std::move(done));
}
void Engine::PurgeQueueAsync(
    const std::string& queue, const std::string& reason,
    std::function<void(absl::StatusOr<int64_t>)> done) {
  impl_->PurgeQueueAsync(queue, reason, std::move(done));
}

absl::StatusOr<std::shared_ptr<WorkerSession>> Engine::ConnectWorker(
    const v1::Hello& hello, WorkerSink* sink) {
  return impl_->ConnectWorker(hello, sink);
}
void Engine::DisconnectWorker(const std::shared_ptr<WorkerSession>& worker) {
  impl_->DisconnectWorker(worker);
}
absl::Status Engine::Heartbeat(WorkerSession& worker) {
  return impl_->Heartbeat(worker);
}
void Engine::WorkerDrained() { impl_->dispatcher_.Pump(); }
absl::Status Engine::Progress(WorkerSession& worker,
                              const v1::ProgressUpdate& msg) {
  return impl_->Progress(worker, msg);
}
absl::Status Engine::Complete(WorkerSession& worker, const v1::Complete& msg) {
  return impl_->Complete(worker, msg);
}
absl::Status Engine::Fail(WorkerSession& worker, const v1::Fail& msg) {
  return impl_->Fail(worker, msg);
}

absl::StatusOr<RecoveryStats> Engine::Recover(Storage& storage) {
  return impl_->Recover(storage);
}
void Engine::ProcessTimers() { impl_->ProcessTimers(); }
void Engine::ScheduleTimer(absl::Time when, std::function<void()> fn) {
  impl_->timers_.Schedule(when, std::move(fn));
}
Journal* Engine::journal() const { return impl_->options_.journal; }
void Engine::StartTimerThread() { impl_->StartTimerThread(); }
void Engine::StopTimerThread() { impl_->StopTimerThread(); }
void Engine::Shutdown() { impl_->Shutdown(); }
bool Engine::shutting_down() const { return impl_->shutting_down_.load(); }
size_t Engine::task_count() const { return impl_->store_.size(); }
size_t Engine::timer_count() const { return impl_->timers_.size(); }
WorkerSlots Engine::worker_slots() const { return impl_->dispatcher_.Slots(); }
size_t Engine::pending_awaits() const { return impl_->awaits_.pending(); }
uint64_t Engine::illegal_transitions() const {
  return impl_->illegal_transitions_.load();
}
const EngineOptions& Engine::options() const { return impl_->options_; }
Clock* Engine::clock() const { return impl_->clock_; }

}  // namespace taskd
