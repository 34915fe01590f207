#include "scheduler/schedule_table.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "api/strings/utf8.h"
#include "scheduler/cronlib/cron.h"
#include "scheduler/journal.h"
#include "scheduler/task_id.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

constexpr size_t kMaxIdBytes = 128;
constexpr absl::Duration kMinInterval = absl::Seconds(1);
// Keeps every slot a valid Timestamp (far below year 9999).
constexpr absl::Duration kMaxInterval = absl::Hours(24 * 366 * 100);

absl::Status Invalid(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(
      absl::StrCat("schedule \"", ToValidUtf8(id, 140),
                   "\" not found"));
}

absl::Status ValidateScheduleId(absl::string_view id) {
  bool ok = !id.empty() && id.size() <= kMaxIdBytes;
  for (char c : id) {
    ok &= (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
          c == '-';
  }
  if (!ok) {
    return Invalid("schedule.id",
                   absl::StrCat("invalid schedule id \"", ToValidUtf8(id, 140),
                                "\" (want [A-Za-z0-9_.:-]{1,128})"));
  }
  return absl::OkStatus();
}

std::string MetaKey(absl::string_view id) {
  return absl::StrCat(kScheduleMetaPrefix, id);
}

// What makes a schedule fire: a parsed cron expression or a fixed period.
struct Trigger {
  std::optional<CronSchedule> cron;
  absl::Duration interval = absl::ZeroDuration();

  // The first slot of a schedule started (or resumed) at `now`.
  absl::Time First(absl::Time now) const {
    return cron ? cron->Next(now) : now + interval;
  }
  // The slot after `slot`; slots at or before `now` are skipped, so missed
  // slots collapse into the one that just fired.
  absl::Time After(absl::Time slot, absl::Time now) const {
    if (cron) {
      absl::Time next = cron->Next(slot);
      return next > now ? next : cron->Next(now);
    }
    absl::Time next = slot + interval;
    if (next > now) return next;
    absl::Duration rem;
    int64_t behind = absl::IDivDuration(now - slot, interval, &rem);
    return slot + (behind + 1) * interval;
  }
};

absl::StatusOr<Trigger> ParseTrigger(const v1::Schedule& schedule) {
  Trigger trigger;
  switch (schedule.trigger_case()) {
    case v1::Schedule::kCron: {
      auto cron = CronSchedule::Parse(schedule.cron());
      if (!cron.ok()) {
        // The parser's messages start with "cron: ".
        return absl::InvalidArgumentError(
            absl::StrCat("schedule.", cron.status().message()));
      }
      trigger.cron = *std::move(cron);
      break;
    }
    case v1::Schedule::kInterval: {
      if (auto s = ValidateSpan(schedule.interval(), "schedule.interval");
          !s.ok()) {
        return s;
      }
      trigger.interval = ToDuration(schedule.interval());
      if (trigger.interval < kMinInterval) {
        return Invalid("schedule.interval",
                       absl::StrCat("must be at least 1s, got ",
                                    absl::FormatDuration(trigger.interval)));
      }
      if (trigger.interval > kMaxInterval) {
        return Invalid("schedule.interval", "must be at most 100 years");
      }
      break;
    }
    case v1::Schedule::TRIGGER_NOT_SET:
      return Invalid("schedule.cron",
                     "set exactly one of schedule.cron and schedule.interval");
  }
  return trigger;
}

absl::Status ValidateTemplate(const v1::TaskSpec& spec,
                              const ValidationLimits& limits) {
  constexpr absl::string_view kPath = "schedule.template";
  if (auto s = ValidateTaskSpec(spec, limits, kPath); !s.ok()) return s;
  const char* field = nullptr;
  if (spec.depends_on_size() > 0) field = "depends_on";
  if (!spec.idempotency_key().empty()) field = "idempotency_key";
  if (spec.has_run_at()) field = "run_at";
  if (spec.has_delay()) field = "delay";
  if (field != nullptr) {
    return Invalid(absl::StrCat(kPath, ".", field),
                   "not allowed in a schedule template");
  }
  return absl::OkStatus();
}

}  // namespace

class ScheduleTable::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(ScheduleTableOptions options, Engine* engine)
      : options_(options), engine_(engine), ids_(options.id_seed) {}

  absl::Status Recover(Storage& storage) ABSL_LOCKS_EXCLUDED(mu_);
  void Start() ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }

  void Create(const v1::Schedule& schedule, ScheduleCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Delete(const std::string& id, DeleteCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void SetPaused(const std::string& id, bool paused, ScheduleCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::Schedule> Get(const std::string& id) const
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<v1::ListSchedulesResponse> List(
      const v1::ListSchedulesRequest& request) const ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return entries_.size();
  }
  void WaitForFirings() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](const int* n) { return *n == 0; }, &firings_in_flight_));
  }

 private:
  struct Entry {
    v1::Schedule schedule;
    Trigger trigger;
    // Distinguishes a re-created schedule from a deleted one of the same id.
    uint64_t generation = 0;
    // A firing is between its submit and its bookkeeping.
    bool firing = false;
  };

  // Journals the entry's current state; returns the ticket (0 without a
  // journal). Under mu_ so that the journal's order is the change order;
  // Journal::Write never blocks and takes only the journal's own lock.
  uint64_t Persist(const Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ticket that covers every change made so far (for no-op answers).
  uint64_t LastTicket() const;
  // Runs `fn` once `ticket` is durable; no lock held.
  void WhenDurable(uint64_t ticket, std::function<void(absl::Status)> fn);
  // Arms the timer of `id`'s slot; no lock held.
  void Arm(const std::string& id, absl::Time slot);
  bool CanArm() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return started_ && !stopped_;
  }
  // Sets next_fire_time (cleared when the schedule never fires again);
  // true when there is a slot to arm.
  static bool SetNext(Entry& e, absl::Time next);

  void Fire(const std::string& id, absl::Time slot) ABSL_LOCKS_EXCLUDED(mu_);
  void OnFired(const std::string& id, uint64_t generation, absl::Time slot,
               const absl::StatusOr<SubmitResult>& result)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const ScheduleTableOptions options_;
  Engine* const engine_;
  TaskIdGenerator ids_;

  // State below is protected by mu_.
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int firings_in_flight_ ABSL_GUARDED_BY(mu_) = 0;

 public:
  // Firings that submitted their task (metrics).
  std::atomic<uint64_t> firings{0};
};

uint64_t ScheduleTable::Impl::Persist(const Entry& e) {
  Journal* journal = engine_->journal();
  if (journal == nullptr) return 0;
  return journal->Write({Mutation::PutMeta(MetaKey(e.schedule.id()),
                                           e.schedule.SerializeAsString())});
}

uint64_t ScheduleTable::Impl::LastTicket() const {
  Journal* journal = engine_->journal();
  return journal == nullptr ? 0 : journal->last_ticket();
}

void ScheduleTable::Impl::WhenDurable(uint64_t ticket,
                                      std::function<void(absl::Status)> fn) {
  Journal* journal = engine_->journal();
  if (journal == nullptr || ticket == 0) return fn(absl::OkStatus());
  journal->WhenDurable(ticket, std::move(fn));
}

void ScheduleTable::Impl::Arm(const std::string& id, absl::Time slot) {
  std::weak_ptr<Impl> weak = weak_from_this();
  engine_->ScheduleTimer(slot, [weak, id, slot] {
    if (auto self = weak.lock()) self->Fire(id, slot);
  });
}

bool ScheduleTable::Impl::SetNext(Entry& e, absl::Time next) {
  if (next == absl::InfiniteFuture()) {
    e.schedule.clear_next_fire_time();
    return false;
  }
  *e.schedule.mutable_next_fire_time() = FromTime(next);
  return true;
}

absl::Status ScheduleTable::Impl::Recover(Storage& storage) {
  const absl::Time now = engine_->clock()->Now();
  std::vector<Entry> loaded;
  auto on_meta = [&](absl::string_view key,
                     absl::string_view value) -> absl::Status {
    if (!absl::StartsWith(key, kScheduleMetaPrefix)) return absl::OkStatus();
    Entry e;
    if (!e.schedule.ParseFromArray(value.data(),
                                   static_cast<int>(value.size()))) {
      return absl::DataLossError(
          absl::StrCat("stored schedule ", key, " cannot be decoded"));
    }
    auto trigger = ParseTrigger(e.schedule);
    if (!trigger.ok()) {
      return absl::DataLossError(absl::StrCat("stored schedule ", key, ": ",
                                              trigger.status().message()));
    }
    e.trigger = *std::move(trigger);
    // Active but without a slot (never stored that way): start from now.
    if (!e.schedule.paused() && !e.schedule.has_next_fire_time()) {
      SetNext(e, e.trigger.First(now));
    }
    loaded.push_back(std::move(e));
    return absl::OkStatus();
  };
  if (auto s = storage.Recover({}, on_meta); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  for (Entry& e : loaded) {
    e.generation = next_generation_++;
    std::string id = e.schedule.id();
    entries_[id] = std::move(e);
  }
  return absl::OkStatus();
}

void ScheduleTable::Impl::Start() {
  std::vector<std::pair<std::string, absl::Time>> arm;
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
    if (stopped_) return;
    for (const auto& [id, e] : entries_) {
      if (!e.schedule.paused() && e.schedule.has_next_fire_time()) {
        arm.emplace_back(id, ToTime(e.schedule.next_fire_time()));
      }
    }
  }
  // A slot missed while the server was down is in the past: it fires at the
  // next timer run, with the key it would have had.
  for (const auto& [id, slot] : arm) Arm(id, slot);
}

void ScheduleTable::Impl::Create(const v1::Schedule& request,
                                 ScheduleCallback done) {
  Entry e;
  e.schedule = request;
  if (!e.schedule.id().empty()) {
    if (auto s = ValidateScheduleId(e.schedule.id()); !s.ok()) return done(s);
  }
  auto trigger = ParseTrigger(e.schedule);
  if (!trigger.ok()) return done(trigger.status());
  e.trigger = *std::move(trigger);
  if (auto s = ValidateTemplate(e.schedule.template_(),
                                engine_->options().limits);
      !s.ok()) {
    return done(s);
  }
  const absl::Time now = engine_->clock()->Now();
  if (e.trigger.First(now) == absl::InfiniteFuture()) {
    return done(Invalid("schedule.cron", "the expression never matches"));
  }
  if (e.schedule.id().empty()) e.schedule.set_id(ids_.Next(now));
  e.schedule.clear_next_fire_time();
  e.schedule.clear_last_fire_time();
  e.schedule.clear_last_task_id();
  *e.schedule.mutable_create_time() = FromTime(now);
  bool arm = !e.schedule.paused() && SetNext(e, e.trigger.First(now));

  const std::string id = e.schedule.id();
  v1::Schedule created;
  uint64_t ticket;
  {
    absl::MutexLock lock(&mu_);
    if (entries_.count(id) > 0) {
      return done(absl::AlreadyExistsError(
          absl::StrCat("schedule \"", id, "\" already exists")));
    }
    if (entries_.size() >= options_.max_schedules) {
      return done(absl::ResourceExhaustedError(
          absl::StrCat("the server holds its limit of ", options_.max_schedules,
                       " schedules; delete some first")));
    }
    e.generation = next_generation_++;
    Entry& stored = entries_[id] = std::move(e);
    ticket = Persist(stored);
    created = stored.schedule;
    arm &= CanArm();
  }
  if (arm) Arm(id, ToTime(created.next_fire_time()));
  WhenDurable(ticket, [done = std::move(done),
                       created = std::move(created)](absl::Status s) {
    if (!s.ok()) return done(s);
    done(created);
  });
}

void ScheduleTable::Impl::Delete(const std::string& id, DeleteCallback done) {
  uint64_t ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return done(NotFound(id));
    entries_.erase(it);
    if (Journal* journal = engine_->journal()) {
      ticket = journal->Write({Mutation::DeleteMeta(MetaKey(id))});
    }
  }
  WhenDurable(ticket, std::move(done));
}

void ScheduleTable::Impl::SetPaused(const std::string& id, bool paused,
                                    ScheduleCallback done) {
  const absl::Time now = engine_->clock()->Now();
  v1::Schedule result;
  uint64_t ticket;
  bool arm = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return done(NotFound(id));
    Entry& e = it->second;
    if (e.schedule.paused() == paused) {
      ticket = LastTicket();  // an earlier change may not be durable yet
    } else {
      e.schedule.set_paused(paused);
      if (paused) {
        e.schedule.clear_next_fire_time();
      } else {
        arm = SetNext(e, e.trigger.First(now)) && CanArm();
      }
      ticket = Persist(e);
    }
    result = e.schedule;
  }
  if (arm) Arm(id, ToTime(result.next_fire_time()));
  WhenDurable(ticket, [done = std::move(done),
                       result = std::move(result)](absl::Status s) {
    if (!s.ok()) return done(s);
    done(result);
  });
}

absl::StatusOr<v1::Schedule> ScheduleTable::Impl::Get(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return NotFound(id);
  return it->second.schedule;
}

absl::StatusOr<v1::ListSchedulesResponse> ScheduleTable::Impl::List(
    const v1::ListSchedulesRequest& request) const {
  if (request.page_size() < 0) {
    return Invalid("page_size", "must not be negative");
  }
  int page_size = request.page_size() == 0 ? options_.default_page_size
                                           : request.page_size();
  page_size = std::min(page_size, options_.max_page_size);
  v1::ListSchedulesResponse response;
  absl::MutexLock lock(&mu_);
  auto it = request.page_token().empty()
                ? entries_.begin()
                : entries_.upper_bound(request.page_token());
  for (; it != entries_.end() && response.schedules_size() < page_size; ++it) {
    *response.add_schedules() = it->second.schedule;
  }
  if (it != entries_.end() && response.schedules_size() > 0) {
    response.set_next_page_token(
        response.schedules(response.schedules_size() - 1).id());
  }
  return response;
}

void ScheduleTable::Impl::Fire(const std::string& id, absl::Time slot) {
  v1::TaskSpec spec;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (!CanArm()) return;
    auto it = entries_.find(id);
    if (it == entries_.end()) return;  // deleted
    Entry& e = it->second;
    // Timers cannot be cancelled: this one may be stale.
    if (e.firing || e.schedule.paused() || !e.schedule.has_next_fire_time() ||
        ToTime(e.schedule.next_fire_time()) != slot) {
      return;
    }
    e.firing = true;
    ++firings_in_flight_;
    generation = e.generation;
    spec = e.schedule.template_();
    spec.set_idempotency_key(
        absl::StrCat("schedule:", id, ":", absl::ToUnixSeconds(slot)));
  }
  std::weak_ptr<Impl> weak = weak_from_this();
  engine_->SubmitAsync(
      spec, [weak, id, generation, slot](absl::StatusOr<SubmitResult> result) {
        if (auto self = weak.lock()) {
          self->OnFired(id, generation, slot, result);
        }
      });
}

void ScheduleTable::Impl::OnFired(const std::string& id, uint64_t generation,
                                  absl::Time slot,
                                  const absl::StatusOr<SubmitResult>& result) {
  const absl::Time now = engine_->clock()->Now();
  bool arm = false;
  absl::Time next;
  // The firing counts as in flight until its next slot is armed, so that
  // WaitForFirings() returning means the schedule is ready to fire again.
  auto finished = absl::MakeCleanup([this] {
    absl::MutexLock lock(&mu_);
    --firings_in_flight_;
  });
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.generation != generation) return;
    Entry& e = it->second;
    e.firing = false;
    if (!result.ok()) {
      // Shutting down: the slot stays next and fires again after a restart.
      if (absl::IsUnavailable(result.status())) return;
      std::fprintf(stderr, "taskd: schedule %s: firing at %s failed: %s\n",
                   id.c_str(), absl::FormatTime(slot).c_str(),
                   result.status().ToString().c_str());
    } else {
      firings.fetch_add(1, std::memory_order_relaxed);
      *e.schedule.mutable_last_fire_time() = FromTime(now);
      e.schedule.set_last_task_id(result->task.id());
    }
    // Unless a pause or resume moved the schedule meanwhile.
    if (!e.schedule.paused() && e.schedule.has_next_fire_time() &&
        ToTime(e.schedule.next_fire_time()) == slot) {
      arm = SetNext(e, e.trigger.After(slot, now)) && CanArm();
      // Armed at the stored (nanosecond) time, which Fire compares with.
      if (arm) next = ToTime(e.schedule.next_fire_time());
    }
    // The submitted task is durable already, so this write follows it.
    Persist(e);
  }
  if (arm) Arm(id, next);
}

// ---------------------------------------------------------------- facade

ScheduleTable::ScheduleTable(ScheduleTableOptions options, Engine* engine)
    : impl_(std::make_shared<Impl>(options, engine)) {}

ScheduleTable::~ScheduleTable() { impl_->Stop(); }

absl::Status ScheduleTable::Recover(Storage& storage) {
  return impl_->Recover(storage);
}
void ScheduleTable::Start() { impl_->Start(); }
void ScheduleTable::Stop() { impl_->Stop(); }

void ScheduleTable::CreateAsync(const v1::Schedule& schedule,
                                ScheduleCallback done) {
  impl_->Create(schedule, std::move(done));
}
void ScheduleTable::DeleteAsync(const std::string& id, DeleteCallback done) {
  impl_->Delete(id, std::move(done));
}
void ScheduleTable::PauseAsync(const std::string& id, ScheduleCallback done) {
  impl_->SetPaused(id, true, std::move(done));
}
void ScheduleTable::ResumeAsync(const std::string& id, ScheduleCallback done) {
  impl_->SetPaused(id, false, std::move(done));
}

namespace {

// Runs an async call and waits for its answer.
template <class T, class Start>
T WaitFor(Start start) {
  absl::Notification answered;
  std::optional<T> out;
  start([&](T result) {
    out.emplace(std::move(result));
    answered.Notify();
  });
  answered.WaitForNotification();
  return *std::move(out);
}

}  // namespace

absl::StatusOr<v1::Schedule> ScheduleTable::Create(
    const v1::Schedule& schedule) {
  return WaitFor<absl::StatusOr<v1::Schedule>>(
      [&](ScheduleCallback done) { CreateAsync(schedule, std::move(done)); });
}
absl::Status ScheduleTable::Delete(const std::string& id) {
  return WaitFor<absl::Status>(
      [&](DeleteCallback done) { DeleteAsync(id, std::move(done)); });
}
absl::StatusOr<v1::Schedule> ScheduleTable::Pause(const std::string& id) {
  return WaitFor<absl::StatusOr<v1::Schedule>>(
      [&](ScheduleCallback done) { PauseAsync(id, std::move(done)); });
}
absl::StatusOr<v1::Schedule> ScheduleTable::Resume(const std::string& id) {
  return WaitFor<absl::StatusOr<v1::Schedule>>(
      [&](ScheduleCallback done) { ResumeAsync(id, std::move(done)); });
}

absl::StatusOr<v1::Schedule> ScheduleTable::Get(const std::string& id) const {
  return impl_->Get(id);
}
absl::StatusOr<v1::ListSchedulesResponse> ScheduleTable::List(
    const v1::ListSchedulesRequest& request) const {
  return impl_->List(request);
}
size_t ScheduleTable::size() const { return impl_->size(); }
uint64_t ScheduleTable::firings() const { return impl_->firings.load(); }
void ScheduleTable::WaitForFirings() const { impl_->WaitForFirings(); }

}  // namespace taskd
