// ScheduleTable: periodic schedules (like Celery beat) on top of an Engine.
// Each firing submits one task from the schedule's template; no gRPC here.
//
//   ScheduleTable table(ScheduleTableOptions{}, &engine);
//   if (auto s = table.Recover(storage); !s.ok()) ...  // durable mode only
//   table.Start();                                     // arms the timers
//   v1::Schedule s;
//   s.set_id("nightly");
//   s.set_cron("0 3 * * *");
//   s.mutable_template_()->set_type("report");
//   absl::StatusOr<v1::Schedule> created = table.Create(s);
//
// Firing. A schedule's next firing ("slot") is armed on the engine's timer
// structure. At a slot the table submits one task whose idempotency key is
// "schedule:<id>:<slot unix seconds>", so a slot creates at most one task,
// even across restarts, while that task is retained. The next slot follows
// the previous one (cron: the next match; interval: slot + interval); slots
// already in the past are skipped, so a firing missed while the server was
// down runs once on recovery, not once per missed slot.
//
// Durability. Each schedule is stored as the meta entry "schedule/<id>" (a
// serialized v1::Schedule) through the engine's journal; without a journal
// schedules live in memory only. Create, Delete, Pause and Resume answer
// once their change is durable. A firing stores the schedule's new state
// after the task it submitted is durable, so a crash in between replays the
// slot, which the idempotency key deduplicates.
//
// Lifetime. The engine must outlive the table. Timers and engine callbacks
// that run after the table is gone do nothing. Call Stop() before the
// engine shuts down.
//
// Thread-safe. The table never calls the engine while holding its lock.
#ifndef TASKD_SCHEDULER_SCHEDULE_TABLE_H_
#define TASKD_SCHEDULER_SCHEDULE_TABLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/engine.h"
#include "scheduler/storage/storage.h"

namespace taskd {

struct ScheduleTableOptions {
  // Most schedules held at once; Create beyond it is RESOURCE_EXHAUSTED.
  size_t max_schedules = 10'000;
  // Page size of List when the request names none, and its upper bound.
  int default_page_size = 100;
  int max_page_size = 1000;
  // Seed of generated schedule ids; 0 draws one (tests may fix it).
  uint64_t id_seed = 0;
};

// Meta key prefix of stored schedules.
inline constexpr char kScheduleMetaPrefix[] = "schedule/";

class ScheduleTable {
 public:
  // `engine` must outlive the table.
  ScheduleTable(ScheduleTableOptions options, Engine* engine);
  ~ScheduleTable();
  ScheduleTable(const ScheduleTable&) = delete;
  ScheduleTable& operator=(const ScheduleTable&) = delete;

  // Loads the stored schedules (meta entries "schedule/<id>") before Start.
  // A schedule whose next firing passed while the server was down fires once
  // at Start with that slot's key, then continues from now. DATA_LOSS when a
  // stored schedule cannot be decoded.
  absl::Status Recover(Storage& storage);

  // Arms the timers of every active schedule; later creates and resumes arm
  // theirs at once. Before Start nothing fires.
  void Start();
  // No firing after this returns (a firing already submitting completes).
  // Changes are still accepted and stored. Idempotent.
  void Stop();

  using ScheduleCallback = std::function<void(absl::StatusOr<v1::Schedule>)>;
  using DeleteCallback = std::function<void(absl::Status)>;

  // Validates and adds `schedule` (output-only fields are ignored; an empty
  // id is generated). INVALID_ARGUMENT naming the field ("schedule.cron",
  // "schedule.interval", "schedule.template.type", ...), ALREADY_EXISTS,
  // RESOURCE_EXHAUSTED beyond max_schedules. `done` runs once the schedule
  // is durable: at once on this thread without a journal, else on the
  // journal's thread. `done` must not block.
  void CreateAsync(const v1::Schedule& schedule, ScheduleCallback done);
  // NOT_FOUND for an unknown id. Deleting stops future firings; tasks
  // already submitted are not touched.
  void DeleteAsync(const std::string& id, DeleteCallback done);
  // A paused schedule does not fire and has no next_fire_time. Pausing a
  // paused schedule (or resuming an active one) is a no-op returning it.
  void PauseAsync(const std::string& id, ScheduleCallback done);
  // Resumes firing; the next firing is computed from now.
  void ResumeAsync(const std::string& id, ScheduleCallback done);

  // Blocking forms of the above, e.g. for tests.
  absl::StatusOr<v1::Schedule> Create(const v1::Schedule& schedule);
  absl::Status Delete(const std::string& id);
  absl::StatusOr<v1::Schedule> Pause(const std::string& id);
  absl::StatusOr<v1::Schedule> Resume(const std::string& id);

  // NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Schedule> Get(const std::string& id) const;
  // Schedules in id order. page_token is opaque (the last id of the previous
  // page); INVALID_ARGUMENT for a negative page_size.
  absl::StatusOr<v1::ListSchedulesResponse> List(
      const v1::ListSchedulesRequest& request) const;

  size_t size() const;
  // Firings that submitted their task since the table was created.
  uint64_t firings() const;
  // Blocks until no firing is between its submit and its bookkeeping (for
  // tests, whose journal answers on another thread).
  void WaitForFirings() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_SCHEDULE_TABLE_H_
