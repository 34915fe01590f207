// TaskRecord: one task as the engine holds it in memory, compact.
//
// A queued task is most of what a busy server holds, so the record keeps
// only what the engine works with, in fixed fields: the id as its 128 bits,
// state, attempt and times as numbers, and the submitted spec — immutable —
// in one allocation (SpecBlob). What only a started or finished task has
// (worker, lease, result, error, progress) lives behind one pointer that a
// queued task leaves empty. The API's v1::Task is built from the record when
// one is needed (an answer, an event, a journal write):
//
//   v1::Task task = record.ToTask();                   // as GetTask shows it
//   v1::Task small = record.ToTask({.payload = false, .result = false});
//
// A pending no-op task costs 128 bytes of record, its spec's allocation and
// its index entries; a v1::Task of the same task took about 750.
#ifndef TASKD_SCHEDULER_TASK_RECORD_H_
#define TASKD_SCHEDULER_TASK_RECORD_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/engine_metrics.h"
#include "scheduler/event_log.h"
#include "scheduler/lease.h"
#include "scheduler/task_id.h"

namespace taskd {

// A task's spec as submitted, in one allocation: queue and type names, the
// fields other than queue, type, payload and priority serialized (empty for
// most tasks), then the payload. The payload is copied in once and never
// again per state change.
class SpecBlob {
 public:
  SpecBlob() = default;
  // `spec`'s fields with `queue` as its queue (the default filled in).
  // INVALID_ARGUMENT when a name or the payload is too large to describe
  // (validated specs never are; stored ones are checked at recovery).
  static absl::StatusOr<SpecBlob> Make(const v1::TaskSpec& spec,
                                       absl::string_view queue);

  absl::string_view queue() const { return {data_.get(), queue_size_}; }
  absl::string_view type() const {
    return {data_.get() + queue_size_, type_size_};
  }
  absl::string_view payload() const {
    return {data_.get() + queue_size_ + type_size_ + rest_size_,
            payload_size_};
  }
  int priority() const { return priority_; }

  // The whole spec, with or without its payload.
  void CopyTo(v1::TaskSpec* out, bool with_payload) const;
  // The spec's settings: every field but queue, type, payload and priority
  // (retry, timeouts, result_ttl, idempotency key, dependencies, labels).
  // Parsed on each call, and only when one of them is set.
  v1::TaskSpec Settings() const;
  // True when Settings() has any field set.
  bool has_settings() const { return rest_size_ > 0; }
  // A copy without the payload (one small allocation).
  SpecBlob WithoutPayload() const;
  // Bytes held (its allocation).
  size_t size() const {
    return queue_size_ + type_size_ + rest_size_ + payload_size_;
  }

 private:
  absl::string_view rest() const {
    return {data_.get() + queue_size_ + type_size_, rest_size_};
  }

  std::unique_ptr<char[]> data_;
  uint32_t rest_size_ = 0;
  uint32_t payload_size_ = 0;
  uint16_t queue_size_ = 0;
  uint16_t type_size_ = 0;
  int32_t priority_ = 0;
};

// What a task has once it started or finished; a queued task has none.
struct TaskRun {
  absl::Time start_time = absl::InfinitePast();   // InfinitePast: unset
  absl::Time finish_time = absl::InfinitePast();  // InfinitePast: unset
  std::string worker_id;
  std::string result;
  std::unique_ptr<v1::TaskError> error;
  std::unique_ptr<v1::Progress> progress;
  // Why a cancel was asked while RUNNING.
  std::unique_ptr<std::string> cancel_reason;
  Lease lease;  // while RUNNING
};

// Which large fields ToTask copies.
struct TaskParts {
  bool payload = true;
  bool result = true;
};

struct TaskRecord {
  TaskKey key;
  SpecBlob spec;
  absl::Time create_time;
  absl::Time schedule_time;
  uint64_t ticket = 0;     // journal ticket of the last write
  // Its queue's metric handles, resolved on first use (shard lock held).
  QueueMetrics* metrics = nullptr;
  std::unique_ptr<TaskRun> run;
  // When it last became PENDING, in Unix nanoseconds (8 bytes where an
  // absl::Time takes 16: the record stays within 120).
  int64_t ready_since_ns = 0;
  int32_t attempt = 0;
  // depends_on entries not SUCCEEDED yet; the task waits SCHEDULED for 0.
  int16_t unmet_deps = 0;
  bool cancel_requested = false;
  // Its payload was journaled in this run: later writes leave it out.
  bool payload_stored = false;

  // A new record of task `id` (a key TaskKeyOf accepts), or the error of
  // SpecBlob::Make.
  static absl::StatusOr<std::unique_ptr<TaskRecord>> Make(
      const TaskKey& key, const v1::TaskSpec& spec, absl::string_view queue);
  // The record of a stored task. DATA_LOSS when it cannot be one (no valid
  // id or state, a name too long).
  static absl::StatusOr<std::unique_ptr<TaskRecord>> FromTask(
      const v1::Task& task);

  std::string id() const { return TaskIdOf(key); }
  v1::TaskState state() const { return static_cast<v1::TaskState>(state_); }
  // Only TaskStore::SetState and record construction change the state.
  void InitState(v1::TaskState s) { state_ = static_cast<uint8_t>(s); }

  // The task as the API shows it.
  v1::Task ToTask(TaskParts parts = {}) const;
  void ToTask(v1::Task* out, TaskParts parts = {}) const;

  // The started/finished part, made on first use.
  TaskRun& Run() {
    if (!run) run = std::make_unique<TaskRun>();
    return *run;
  }
  absl::Time ready_since() const { return absl::FromUnixNanos(ready_since_ns); }
  void set_ready_since(absl::Time t) { ready_since_ns = absl::ToUnixNanos(t); }
  uint64_t lease_id() const { return run ? run->lease.id : 0; }
  absl::Time start_time() const {
    return run ? run->start_time : absl::InfinitePast();
  }
  void set_error(v1::TaskError error) {
    Run().error = std::make_unique<v1::TaskError>(std::move(error));
  }

  QueueMetrics* Metrics(EngineMetrics* m) {
    if (metrics == nullptr && m) metrics = m->ForQueue(std::string(spec.queue()));
    return metrics;
  }

 private:
  uint8_t state_ = v1::TASK_STATE_UNSPECIFIED;
};

// What an event keeps of a task: its fields at that moment (spec without
// payload, no result), made into a v1::Task only if a reader reads it.
class TaskSnapshot final : public EventTask {
 public:
  explicit TaskSnapshot(const TaskRecord& r);
  void Fill(v1::Task* out) const override;
  size_t bytes() const override { return bytes_; }

 private:
  TaskRecord record_;
  size_t bytes_;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_TASK_RECORD_H_
