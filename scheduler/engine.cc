// Engine: construction, the client-facing operations and the state-change
// helpers shared by everything. Worker operations and timers are in
// engine_worker.cc.
#include "scheduler/engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <utility>

#include "absl/base/internal/raw_logging.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/notification.h"
#include "absl/strings/str_cat.h"
#include "scheduler/engine_internal.h"
#include "scheduler/task_state.h"

namespace taskd {
namespace {

constexpr size_t kShards = 32;

// A ListTasks page stops before this size: a client's default receive limit
// (4 MiB) less room for framing.
constexpr size_t kMaxListResponseBytes = (4 << 20) - (16 << 10);

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

Engine::Engine(EngineOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      ids_(options_.id_seed),
      events_(options_.event_log_capacity, 1, options_.event_log_bytes),
      dispatcher_(
          [this](const std::string& id,
                 const std::shared_ptr<WorkerSession>& worker) {
            return StartTask(id, worker);
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
  shards_.reserve(kShards);
  for (size_t i = 0; i < kShards; ++i) shards_.push_back(std::make_unique<Shard>());
}

Engine::~Engine() { StopTimerThread(); }

Engine::Shard& Engine::ShardFor(const std::string& id) const {
  return *shards_[absl::Hash<std::string>{}(id) % shards_.size()];
}

// ---------------------------------------------------------------- submit

absl::Status Engine::CheckSpec(const v1::TaskSpec& spec,
                               absl::string_view path) const {
  if (auto s = ValidateTaskSpec(spec, options_.limits, path); !s.ok()) return s;
  return CheckDependenciesExist(spec, path);
}

absl::Status Engine::CheckDependenciesExist(const v1::TaskSpec& spec,
                                            absl::string_view path) const {
  // Dependencies must exist already, so no cycle can ever form.
  for (int i = 0; i < spec.depends_on_size(); ++i) {
    const std::string& dep = spec.depends_on(i);
    Shard& shard = ShardFor(dep);
    absl::MutexLock lock(&shard.mu);
    if (!shard.tasks.contains(dep)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ".depends_on[", i, "]: unknown task ", dep,
          " (dependencies must exist; finished ones are kept for result_ttl)"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<Engine::Record> Engine::NewRecord(const v1::TaskSpec& spec,
                                                  absl::Time now) {
  auto r = std::make_unique<Record>();
  v1::Task& t = r->task;
  t.set_id(ids_.Next(now));
  *t.mutable_spec() = spec;
  t.mutable_spec()->set_queue(QueueOf(spec));
  *t.mutable_create_time() = FromTime(now);
  absl::Time start = now;
  if (spec.has_run_at()) start = std::max(now, ToTime(spec.run_at()));
  if (spec.has_delay()) start = now + ToDuration(spec.delay());
  *t.mutable_schedule_time() = FromTime(start);
  r->unmet_deps = spec.depends_on_size();
  t.set_state(start > now || r->unmet_deps > 0 ? v1::TASK_STATE_SCHEDULED
                                                 : v1::TASK_STATE_PENDING);
  return r;
}

v1::Task Engine::Insert(std::unique_ptr<Record> record, Effects& fx) {
  Shard& shard = ShardFor(record->task.id());
  absl::MutexLock lock(&shard.mu);
  Record& r = *record;
  shard.tasks.emplace(r.task.id(), std::move(record));
  shard.Count(r.task, +1);
  task_count_.fetch_add(1);
  Emit(r, v1::EVENT_TYPE_SUBMITTED, fx);
  if (auto* m = r.Metrics(options_.metrics)) m->Submitted();
  if (r.task.state() == v1::TASK_STATE_PENDING) {
    MakeReady(r, fx);
  } else {
    std::string id = r.task.id();
    timers_.Schedule(ToTime(r.task.schedule_time()),
                     [this, id] { OnScheduleDue(id); });
  }
  if (r.unmet_deps > 0) {
    // Linked after the record is visible, in Apply (no lock held): a
    // dependency that finishes meanwhile then finds its dependent.
    for (const std::string& dep : r.task.spec().depends_on()) {
      fx.dependencies_done.push_back({r.task.id(), dep,
                                      v1::TASK_STATE_UNSPECIFIED});
    }
  }
  return r.task;
}

absl::StatusOr<SubmitResult> Engine::Submit(const v1::TaskSpec& spec) {
  return WaitFor<SubmitResult>(
      [&](SubmitCallback done) { SubmitAsync(spec, std::move(done)); });
}

void Engine::SubmitAsync(const v1::TaskSpec& spec, SubmitCallback done) {
  if (shutting_down_) {
    return done(absl::UnavailableError("server is shutting down"));
  }
  if (auto s = CheckSpec(spec, "task"); !s.ok()) return done(s);
  if (task_count_.load() >= options_.max_tasks) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "the server holds its limit of ", options_.max_tasks,
        " tasks; retry after tasks finish and their result_ttl passes")));
  }
  Effects fx;
  SubmitResult out;
  absl::Time now = clock_->Now();
  if (spec.idempotency_key().empty()) {
    out.task = Insert(NewRecord(spec, now), fx);
  } else {
    std::string slot = absl::StrCat(QueueOf(spec), std::string(1, '\0'),
                                    spec.idempotency_key());
    absl::MutexLock lock(&idempotency_mu_);
    auto it = idempotency_.find(slot);
    auto existing = it == idempotency_.end()
                        ? absl::StatusOr<v1::Task>(absl::NotFoundError(""))
                        : Get(it->second);
    if (existing.ok()) {
      out.task = *std::move(existing);
      out.deduplicated = true;
      // The first submit may not be durable yet: answer after it is.
      if (auto* m = options_.metrics) m->ForQueue(QueueOf(spec))->Deduplicated();
      if (options_.journal != nullptr) {
        fx.ticket = options_.journal->last_ticket();
      }
    } else {
      auto record = NewRecord(spec, now);
      record->idempotency_slot = slot;
      idempotency_[slot] = record->task.id();
      out.task = Insert(std::move(record), fx);
    }
  }
  Apply(fx, [done = std::move(done), out = std::move(out)](absl::Status s) {
    if (!s.ok()) return done(NotStored(s));
    done(out);
  });
}

absl::StatusOr<std::vector<v1::Task>> Engine::SubmitBatch(
    const google::protobuf::RepeatedPtrField<v1::TaskSpec>& specs) {
  return WaitFor<std::vector<v1::Task>>(
      [&](BatchCallback done) { SubmitBatchAsync(specs, std::move(done)); });
}

void Engine::SubmitBatchAsync(
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
  if (task_count_.load() + specs.size() > options_.max_tasks) {
    return done(absl::ResourceExhaustedError(absl::StrCat(
        "the server holds its limit of ", options_.max_tasks, " tasks")));
  }
  // The idempotency lock is held across the whole batch so that keys are
  // checked and claimed atomically, duplicates inside the batch included.
  Effects fx;
  std::vector<v1::Task> out;
  out.reserve(specs.size());
  absl::Time now = clock_->Now();
  {
    absl::MutexLock lock(&idempotency_mu_);
    for (const v1::TaskSpec& spec : specs) {
      std::string slot;
      if (!spec.idempotency_key().empty()) {
        slot = absl::StrCat(QueueOf(spec), std::string(1, '\0'),
                            spec.idempotency_key());
        auto it = idempotency_.find(slot);
        if (it != idempotency_.end()) {
          if (auto existing = Get(it->second); existing.ok()) {
            out.push_back(*std::move(existing));
            if (auto* m = options_.metrics)
              m->ForQueue(QueueOf(spec))->Deduplicated();
            continue;
          }
        }
      }
      auto record = NewRecord(spec, now);
      if (!slot.empty()) {
        record->idempotency_slot = slot;
        idempotency_[slot] = record->task.id();
      }
      out.push_back(Insert(std::move(record), fx));
    }
    // Deduplicated entries may name tasks whose first submit is in flight.
    if (options_.journal != nullptr) {
      fx.ticket = options_.journal->last_ticket();
    }
  }
  Apply(fx, [done = std::move(done), out = std::move(out)](absl::Status s) {
    if (!s.ok()) return done(NotStored(s));
    done(out);
  });
}

// ---------------------------------------------------------------- reads

absl::StatusOr<v1::Task> Engine::Get(const std::string& id) const {
  if (auto s = ValidateTaskId(id, "id"); !s.ok()) return s;
  Shard& shard = ShardFor(id);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.tasks.find(id);
  if (it == shard.tasks.end()) {
    return absl::NotFoundError(absl::StrCat("task ", id, " not found"));
  }
  return it->second->task;
}

void Engine::GetAsync(const std::string& id, TaskCallback done) const {
  if (auto s = ValidateTaskId(id, "id"); !s.ok()) return done(s);
  v1::Task task;
  uint64_t ticket = 0;
  {
    Shard& shard = ShardFor(id);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.tasks.find(id);
    if (it == shard.tasks.end()) {
      return done(absl::NotFoundError(absl::StrCat("task ", id, " not found")));
    }
    task = it->second->task;
    ticket = it->second->ticket;
  }
  if (options_.journal == nullptr || ticket == 0) return done(std::move(task));
  options_.journal->WhenDurable(
      ticket, [done = std::move(done), task = std::move(task)](absl::Status s) {
        if (!s.ok()) return done(NotStored(s));
        done(task);
      });
}

absl::StatusOr<v1::ListTasksResponse> Engine::List(
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
  std::vector<std::string> ids;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    size_t taken = 0;
    for (auto it = shard->tasks.upper_bound(request.page_token());
         it != shard->tasks.end() && taken <= page; ++it) {
      const v1::Task& t = it->second->task;
      if (!request.queue().empty() && t.spec().queue() != request.queue())
        continue;
      if (!states.empty() && !states.contains(t.state())) continue;
      ids.push_back(it->first);
      ++taken;
    }
  }
  std::sort(ids.begin(), ids.end());
  v1::ListTasksResponse out;
  size_t bytes = 0;
  bool cut = ids.size() > page;
  for (size_t i = 0; i < ids.size() && i < page; ++i) {
    auto task = Get(ids[i]);
    if (!task.ok()) continue;  // retired by retention meanwhile
    if (!request.include_payloads()) {
      task->mutable_spec()->clear_payload();
      task->clear_result();
    }
    const size_t size = task->ByteSizeLong() + 8;
    if (out.tasks_size() > 0 && bytes + size > kMaxListResponseBytes) {
      cut = true;
      break;
    }
    bytes += size;
    *out.add_tasks() = *std::move(task);
  }
  if (cut && out.tasks_size() > 0) {
    out.set_next_page_token(out.tasks(out.tasks_size() - 1).id());
  }
  return out;
}

// ---------------------------------------------------------------- cancel

absl::StatusOr<v1::Task> Engine::Cancel(const std::string& id,
                                        const std::string& reason) {
  return WaitFor<v1::Task>(
      [&](TaskCallback done) { CancelAsync(id, reason, std::move(done)); });
}

void Engine::CancelAsync(const std::string& id, const std::string& reason,
                         TaskCallback done) {
  if (auto s = ValidateTaskId(id, "id"); !s.ok()) return done(s);
  if (reason.size() > 1024) {
    return done(absl::InvalidArgumentError("reason: longer than 1024 bytes"));
  }
  Effects fx;
  v1::Task out;
  {
    Shard& shard = ShardFor(id);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.tasks.find(id);
    if (it == shard.tasks.end()) {
      return done(absl::NotFoundError(absl::StrCat("task ", id, " not found")));
    }
    Record& r = *it->second;
    std::string why = reason.empty() ? "cancelled by client" : reason;
    switch (r.task.state()) {
      case v1::TASK_STATE_PENDING:
        fx.unready.push_back(r.Ready());
        [[fallthrough]];
      case v1::TASK_STATE_SCHEDULED:
        *r.task.mutable_error() = MakeError("cancelled", why, false);
        Finish(r, v1::TASK_STATE_CANCELLED, fx);
        break;
      case v1::TASK_STATE_RUNNING:
        if (!r.task.cancel_requested()) {
          r.task.set_cancel_requested(true);
          r.cancel_reason = why;
          SendCancelNotice(r, why);
          Persist(r, fx);
        }
        break;
      default:
        break;  // terminal: unchanged, idempotent
    }
    out = r.task;
    // Whatever the answer shows must be durable first (a terminal state
    // written moments ago by another call included).
    fx.ticket = std::max(fx.ticket, r.ticket);
  }
  Apply(fx, [done = std::move(done), out = std::move(out)](absl::Status s) {
    if (!s.ok()) return done(NotStored(s));
    done(out);
  });
}

// ---------------------------------------------------------------- await

absl::StatusOr<AwaitHandle> Engine::Await(const std::vector<std::string>& ids,
                                          const AwaitOptions& options,
                                          AwaitCallback done) {
  const bool any = options.any;
  const absl::Time deadline = options.deadline;
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
    Shard& shard = ShardFor(ids[i]);
    absl::MutexLock lock(&shard.mu);
    if (!shard.tasks.contains(ids[i])) {
      return absl::NotFoundError(absl::StrCat("ids[", i, "]: task ", ids[i],
                                              " not found"));
    }
  }
  auto waiter = std::make_shared<internal::Waiter>();
  waiter->ids = ids;
  waiter->include_payloads = options.include_payloads;
  waiter->max_response_bytes = options.max_response_bytes;
  waiter->remaining.store(any ? 1 : static_cast<int64_t>(ids.size()));
  waiter->done = std::move(done);
  {
    // Checked under waiters_mu_ so Shutdown cannot miss this Await.
    absl::MutexLock lock(&waiters_mu_);
    if (shutting_down_) return absl::UnavailableError("server is shutting down");
    waiters_.insert(waiter);
  }
  // Registration and the terminal check happen under the task's shard lock,
  // so a completion either sees this waiter or is seen by this check.
  for (const std::string& id : ids) {
    bool finished = true;
    uint64_t ticket = 0;
    {
      Shard& shard = ShardFor(id);
      absl::MutexLock lock(&shard.mu);
      auto it = shard.tasks.find(id);
      if (it != shard.tasks.end() && !IsTerminal(it->second->task.state())) {
        it->second->waiters.push_back(waiter);
        finished = false;
      } else if (it != shard.tasks.end()) {
        ticket = it->second->ticket;
      }
    }
    if (!finished) continue;
    if (options_.journal != nullptr && ticket != 0) {
      // Terminal already, but perhaps not durable yet: count it once it is.
      options_.journal->WhenDurable(ticket, [this, waiter](absl::Status s) {
        if (!s.ok()) {
          FireWaiter(waiter, NotStored(s), false);
        } else if (waiter->remaining.fetch_sub(1) == 1) {
          FireWaiter(waiter, absl::OkStatus(), true);
        }
      });
    } else if (waiter->remaining.fetch_sub(1) == 1) {
      FireWaiter(waiter, absl::OkStatus(), true);
    }
  }
  if (waiter->fired.load()) {
    Unregister(waiter);  // entries added after it fired
  } else if (deadline != absl::InfiniteFuture()) {
    std::weak_ptr<internal::Waiter> weak = waiter;
    absl::MutexLock lock(&waiters_mu_);
    // Armed under waiters_mu_ and only while registered: an Await answered
    // meanwhile is gone from waiters_, and its timer would never be freed.
    if (waiters_.contains(waiter)) {
      waiter->timer = timers_.Schedule(deadline, [this, weak] {
        if (auto w = weak.lock()) FireWaiter(w, absl::OkStatus(), false);
      });
    }
  }
  return waiter;
}

bool Engine::CancelAwait(const AwaitHandle& handle) {
  if (handle == nullptr || handle->fired.exchange(true)) return false;
  {
    absl::MutexLock lock(&waiters_mu_);
    waiters_.erase(handle);
    if (handle->timer) timers_.Cancel(*handle->timer);
  }
  Unregister(handle);
  handle->done = nullptr;
  return true;
}

void Engine::FireWaiter(const std::shared_ptr<internal::Waiter>& waiter,
                        absl::Status status, bool done) {
  {
    // The race for `fired` is won under waiters_mu_ and counted at once, so
    // that Shutdown, once it has seen no callback in flight, knows none can
    // start: a callback finishes a gRPC call, which must happen before the
    // server's queues shut down.
    absl::MutexLock lock(&waiters_mu_);
    if (waiter->fired.exchange(true)) return;
    ++firing_;
    waiters_.erase(waiter);
    if (waiter->timer) timers_.Cancel(*waiter->timer);
  }
  AwaitCallback callback = std::move(waiter->done);
  if (!status.ok()) {
    callback(status);
  } else {
    v1::AwaitResponse response;
    response.set_done(done);
    size_t bytes = 0;
    absl::Status too_big;
    for (size_t i = 0; i < waiter->ids.size(); ++i) {
      const std::string& id = waiter->ids[i];
      v1::Task* out = response.add_tasks();
      auto task = Get(id);
      if (!task.ok()) {
        out->set_id(id);  // removed by retention meanwhile
        continue;
      }
      *out = *std::move(task);
      if (!waiter->include_payloads) out->mutable_spec()->clear_payload();
      bytes += out->ByteSizeLong() + 8;
      if (waiter->max_response_bytes > 0 && bytes > waiter->max_response_bytes) {
        // Stop building at once: the answer would not fit a client anyway.
        const size_t fit = std::max<size_t>(1, i);
        too_big = absl::ResourceExhaustedError(absl::StrCat(
            "the answer for ", waiter->ids.size(),
            " tasks passes ", waiter->max_response_bytes,
            " bytes (a client's default receive limit) at ids[", i,
            "]; await at most ", fit, " ids at once",
            waiter->include_payloads ? ", or without include_payloads" : "",
            " (results are always returned; read large ones with GetTask)"));
        break;
      }
    }
    if (!too_big.ok()) {
      callback(too_big);
    } else {
      callback(std::move(response));
    }
  }
  Unregister(waiter);
  absl::MutexLock lock(&waiters_mu_);
  --firing_;
}

void Engine::Unregister(const std::shared_ptr<internal::Waiter>& waiter) {
  std::vector<std::string> ids = waiter->ids;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (const std::string& id : ids) {
    Shard& shard = ShardFor(id);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.tasks.find(id);
    if (it == shard.tasks.end()) continue;
    auto& list = it->second->waiters;
    list.erase(std::remove(list.begin(), list.end(), waiter), list.end());
  }
}

// ---------------------------------------------------------------- state changes

void Engine::Transition(Record& r, v1::TaskState to, Effects& fx) {
  if (auto s = CheckTransition(r.task.state(), to); !s.ok()) {
    illegal_transitions_.fetch_add(1);
    ABSL_RAW_LOG(ERROR, "task %s: %s", r.task.id().c_str(),
                 std::string(s.message()).c_str());
    return;
  }
  Shard& shard = ShardFor(r.task.id());  // its lock is held by the caller
  shard.Count(r.task, -1);
  r.task.set_state(to);
  shard.Count(r.task, +1);
}

void Engine::Emit(Record& r, v1::EventType type, Effects& fx) {
  // Every state change emits an event: that is where it is journaled, and
  // the event is readable once that write is durable. Progress alone is not
  // journaled (it is saved with the next state change).
  uint64_t ticket = 0;
  if (type != v1::EVENT_TYPE_PROGRESS) {
    Persist(r, fx);
    ticket = r.ticket;
  }
  events_.Append(type, r.task, clock_->Now(), ticket);
}

void Engine::Persist(Record& r, Effects& fx) {
  if (options_.journal == nullptr) return;
  std::vector<Mutation> write;
  write.push_back(Mutation::PutTask(r.task));
  fx.ticket = options_.journal->Write(std::move(write));
  r.ticket = fx.ticket;
}

void Engine::MakeReady(Record& r, Effects& fx) {
  r.ready_seq = next_ready_seq_.fetch_add(1);
  r.ready_since = clock_->Now();
  fx.ready.push_back(r.Ready());
}

void Engine::ReleaseWorker(Record& r, Effects& fx) {
  if (r.worker) fx.released.emplace_back(std::move(r.worker), r.task.id());
  r.worker.reset();
  r.lease_id = 0;
  r.task.clear_lease_id();
  r.orphaned = false;
}

void Engine::Finish(Record& r, v1::TaskState to, Effects& fx) {
  Transition(r, to, fx);
  absl::Time now = clock_->Now();
  *r.task.mutable_finish_time() = FromTime(now);
  if (auto* m = r.Metrics(options_.metrics))
    m->Finished(to, now - ToTime(r.task.create_time()));
  ReleaseWorker(r, fx);
  Emit(r, FinishEvent(to), fx);
  for (auto& w : r.waiters) fx.waiters.push_back(std::move(w));
  r.waiters.clear();
  for (std::string& d : r.dependents) {
    fx.dependencies_done.push_back({std::move(d), r.task.id(), to});
  }
  r.dependents.clear();
  absl::Duration ttl = r.task.spec().has_result_ttl()
                           ? ToDuration(r.task.spec().result_ttl())
                           : options_.default_result_ttl;
  std::string id = r.task.id();
  timers_.Schedule(now + ttl, [this, id] { OnRetentionDue(id); });
}

absl::Duration Engine::Backoff(const v1::Task& task) {
  const v1::RetryPolicy& p = task.spec().retry();
  absl::Duration initial = p.has_initial_backoff()
                               ? ToDuration(p.initial_backoff())
                               : options_.default_initial_backoff;
  absl::Duration cap = p.has_max_backoff() && ToDuration(p.max_backoff()) > absl::ZeroDuration()
                           ? ToDuration(p.max_backoff())
                           : options_.default_max_backoff;
  double mult = p.multiplier() == 0 ? options_.default_backoff_multiplier
                                    : p.multiplier();
  double factor = std::pow(mult, std::max(0, task.attempt() - 1));
  absl::Duration b = std::min(cap, initial * std::min(factor, 1e9));
  double jitter;
  {
    absl::MutexLock lock(&rng_mu_);
    jitter = absl::Uniform(rng_, 0.5, 1.0);
  }
  return b * jitter;
}

void Engine::EndAttempt(Record& r, v1::TaskError error, Effects& fx) {
  ReleaseWorker(r, fx);
  if (auto* m = r.Metrics(options_.metrics))
    m->AttemptEnded(FailedAttemptOutcome(r.task, error),
                    clock_->Now() - ToTime(r.task.start_time()));
  if (r.task.cancel_requested()) {
    *r.task.mutable_error() = MakeError("cancelled", r.cancel_reason, false);
    Finish(r, v1::TASK_STATE_CANCELLED, fx);
    return;
  }
  const int max_attempts = r.task.spec().retry().max_attempts() > 0
                               ? r.task.spec().retry().max_attempts()
                               : options_.default_max_attempts;
  bool retry = error.retryable() && r.task.attempt() < max_attempts;
  *r.task.mutable_error() = std::move(error);
  if (!retry) {
    Finish(r, v1::TASK_STATE_FAILED, fx);
    return;
  }
  absl::Time now = clock_->Now();
  if (auto* m = r.Metrics(options_.metrics)) m->Retried();
  absl::Duration backoff = Backoff(r.task);
  *r.task.mutable_schedule_time() = FromTime(now + backoff);
  if (backoff <= absl::ZeroDuration()) {
    Transition(r, v1::TASK_STATE_PENDING, fx);
    Emit(r, v1::EVENT_TYPE_RETRYING, fx);
    MakeReady(r, fx);
    return;
  }
  Transition(r, v1::TASK_STATE_SCHEDULED, fx);
  Emit(r, v1::EVENT_TYPE_RETRYING, fx);
  std::string id = r.task.id();
  timers_.Schedule(now + backoff, [this, id] { OnScheduleDue(id); });
}

void Engine::Apply(Effects& fx, Journal::Callback done) {
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
          ReleaseWaiters(waiters);
          if (done) done(s);
        });
    return;
  }
  ReleaseWaiters(fx.waiters);
  if (done) done(absl::OkStatus());
}

void Engine::RunDependencyWork(Effects& fx) {
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

void Engine::ReleaseWaiters(
    const std::vector<std::shared_ptr<internal::Waiter>>& waiters) {
  for (const auto& w : waiters) {
    if (w->remaining.fetch_sub(1) == 1) FireWaiter(w, absl::OkStatus(), true);
  }
}

void Engine::Shutdown() {
  std::vector<std::shared_ptr<internal::Waiter>> pending;
  {
    absl::MutexLock lock(&waiters_mu_);
    shutting_down_.store(true);
    pending.assign(waiters_.begin(), waiters_.end());
  }
  for (auto& w : pending) {
    FireWaiter(w, absl::UnavailableError("server is shutting down"), false);
  }
  {
    // Await callbacks other threads were running (a timeout, a completion)
    // have returned too: after this, none runs again.
    absl::MutexLock lock(&waiters_mu_);
    waiters_mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &firing_));
  }
  events_.Close();
}

}  // namespace taskd
