#include "scheduler/task_record.h"

#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

template <class Size>
bool Fits(size_t n) {
  return n <= std::numeric_limits<Size>::max();
}

// Sets `field` of `out` from `t` unless `t` is the "unset" mark.
template <class Mutable>
void SetTime(absl::Time t, Mutable field) {
  if (t != absl::InfinitePast()) *field() = FromTime(t);
}

}  // namespace

absl::StatusOr<SpecBlob> SpecBlob::Make(const v1::TaskSpec& spec,
                                        absl::string_view queue) {
  // The settings: every field but the four kept apart, copied one by one
  // so the payload is copied once, below (task_record_test checks that this
  // list covers every field of TaskSpec).
  std::string rest;
  const bool has_settings =
      spec.has_run_at() || spec.has_delay() || spec.has_timeout() ||
      spec.has_heartbeat_timeout() || spec.has_retry() ||
      !spec.idempotency_key().empty() || spec.depends_on_size() > 0 ||
      spec.labels_size() > 0 || spec.has_result_ttl();
  if (has_settings) {
    v1::TaskSpec settings;
    if (spec.has_run_at()) *settings.mutable_run_at() = spec.run_at();
    if (spec.has_delay()) *settings.mutable_delay() = spec.delay();
    if (spec.has_timeout()) *settings.mutable_timeout() = spec.timeout();
    if (spec.has_heartbeat_timeout()) {
      *settings.mutable_heartbeat_timeout() = spec.heartbeat_timeout();
    }
    if (spec.has_retry()) *settings.mutable_retry() = spec.retry();
    settings.set_idempotency_key(spec.idempotency_key());
    *settings.mutable_depends_on() = spec.depends_on();
    *settings.mutable_labels() = spec.labels();
    if (spec.has_result_ttl()) {
      *settings.mutable_result_ttl() = spec.result_ttl();
    }
    if (!settings.SerializeToString(&rest)) {
      return absl::InvalidArgumentError("task: spec could not be encoded");
    }
  }
  if (!Fits<uint16_t>(queue.size()) || !Fits<uint16_t>(spec.type().size()) ||
      !Fits<uint32_t>(rest.size()) || !Fits<uint32_t>(spec.payload().size())) {
    return absl::InvalidArgumentError("task: spec too large to hold");
  }
  SpecBlob b;
  b.queue_size_ = static_cast<uint16_t>(queue.size());
  b.type_size_ = static_cast<uint16_t>(spec.type().size());
  b.rest_size_ = static_cast<uint32_t>(rest.size());
  b.payload_size_ = static_cast<uint32_t>(spec.payload().size());
  b.priority_ = spec.priority();
  const size_t total =
      queue.size() + spec.type().size() + rest.size() + spec.payload().size();
  b.data_ = std::make_unique_for_overwrite<char[]>(total);
  char* p = b.data_.get();
  for (absl::string_view part : {queue, absl::string_view(spec.type()),
                                 absl::string_view(rest),
                                 absl::string_view(spec.payload())}) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  return b;
}

void SpecBlob::CopyTo(v1::TaskSpec* out, bool with_payload) const {
  if (rest_size_ > 0) {
    // Written by Make from a parsed message: it parses.
    out->ParseFromArray(rest().data(), static_cast<int>(rest_size_));
  } else {
    out->Clear();
  }
  out->set_queue(queue().data(), queue().size());
  out->set_type(type().data(), type().size());
  out->set_priority(priority_);
  if (with_payload && payload_size_ > 0) {
    out->set_payload(payload().data(), payload().size());
  }
}

v1::TaskSpec SpecBlob::Settings() const {
  v1::TaskSpec out;
  if (rest_size_ > 0) out.ParseFromArray(rest().data(), static_cast<int>(rest_size_));
  return out;
}

SpecBlob SpecBlob::WithoutPayload() const {
  SpecBlob b;
  b.queue_size_ = queue_size_;
  b.type_size_ = type_size_;
  b.rest_size_ = rest_size_;
  b.priority_ = priority_;
  const size_t n = size() - payload_size_;
  b.data_ = std::make_unique_for_overwrite<char[]>(n);
  if (n > 0) std::memcpy(b.data_.get(), data_.get(), n);
  return b;
}

TaskSnapshot::TaskSnapshot(const TaskRecord& r) {
  TaskRecord& s = record_;
  s.key = r.key;
  s.spec = r.spec.WithoutPayload();
  s.create_time = r.create_time;
  s.schedule_time = r.schedule_time;
  s.attempt = r.attempt;
  s.cancel_requested = r.cancel_requested;
  s.InitState(r.state());
  bytes_ = sizeof(*this) + s.spec.size() + 16;
  if (r.run != nullptr) {
    TaskRun& run = s.Run();
    run.start_time = r.run->start_time;
    run.finish_time = r.run->finish_time;
    run.worker_id = r.run->worker_id;
    run.lease.id = r.run->lease.id;  // the id only: no hold on the worker
    bytes_ += sizeof(TaskRun) + run.worker_id.size() + 16;
    if (r.run->error) {
      run.error = std::make_unique<v1::TaskError>(*r.run->error);
      bytes_ += run.error->ByteSizeLong() + 64;
    }
    if (r.run->progress) {
      run.progress = std::make_unique<v1::Progress>(*r.run->progress);
      bytes_ += run.progress->ByteSizeLong() + 64;
    }
  }
}

void TaskSnapshot::Fill(v1::Task* out) const {
  record_.ToTask(out, {.payload = false, .result = false});
}

absl::StatusOr<std::unique_ptr<TaskRecord>> TaskRecord::Make(
    const TaskKey& key, const v1::TaskSpec& spec, absl::string_view queue) {
  absl::StatusOr<SpecBlob> blob = SpecBlob::Make(spec, queue);
  if (!blob.ok()) return blob.status();
  auto r = std::make_unique<TaskRecord>();
  r->key = key;
  r->spec = *std::move(blob);
  return r;
}

absl::StatusOr<std::unique_ptr<TaskRecord>> TaskRecord::FromTask(
    const v1::Task& task) {
  const std::optional<TaskKey> key = TaskKeyOf(task.id());
  if (!key) {
    return absl::DataLossError(
        absl::StrCat("stored task \"", absl::CHexEscape(task.id()),
                     "\" has no valid task id"));
  }
  if (task.state() <= v1::TASK_STATE_UNSPECIFIED ||
      task.state() > v1::TASK_STATE_CANCELLED) {
    return absl::DataLossError(
        absl::StrCat("stored task ", task.id(), " has no valid state"));
  }
  absl::StatusOr<std::unique_ptr<TaskRecord>> made =
      Make(*key, task.spec(), task.spec().queue());
  if (!made.ok()) {
    return absl::DataLossError(absl::StrCat("stored task ", task.id(), ": ",
                                            made.status().message()));
  }
  TaskRecord& r = **made;
  r.InitState(task.state());
  r.attempt = task.attempt();
  r.create_time = ToTime(task.create_time());
  r.schedule_time = ToTime(task.schedule_time());
  r.cancel_requested = task.cancel_requested();
  if (task.has_start_time() || task.has_finish_time() ||
      !task.worker_id().empty() || !task.result().empty() ||
      task.has_error() || task.has_progress() || task.lease_id() != 0) {
    TaskRun& run = r.Run();
    if (task.has_start_time()) run.start_time = ToTime(task.start_time());
    if (task.has_finish_time()) run.finish_time = ToTime(task.finish_time());
    run.worker_id = task.worker_id();
    run.result = task.result();
    if (task.has_error()) {
      run.error = std::make_unique<v1::TaskError>(task.error());
    }
    if (task.has_progress()) {
      run.progress = std::make_unique<v1::Progress>(task.progress());
    }
    run.lease.id = task.lease_id();
  }
  return made;
}

void TaskRecord::ToTask(v1::Task* out, TaskParts parts) const {
  out->Clear();
  out->set_id(id());
  spec.CopyTo(out->mutable_spec(), parts.payload);
  out->set_state(state());
  out->set_attempt(attempt);
  *out->mutable_create_time() = FromTime(create_time);
  *out->mutable_schedule_time() = FromTime(schedule_time);
  out->set_cancel_requested(cancel_requested);
  if (run == nullptr) return;
  SetTime(run->start_time, [out] { return out->mutable_start_time(); });
  SetTime(run->finish_time, [out] { return out->mutable_finish_time(); });
  if (parts.result) out->set_result(run->result);
  if (run->error) *out->mutable_error() = *run->error;
  if (run->progress) *out->mutable_progress() = *run->progress;
  out->set_worker_id(run->worker_id);
  out->set_lease_id(run->lease.id);
}

v1::Task TaskRecord::ToTask(TaskParts parts) const {
  v1::Task out;
  ToTask(&out, parts);
  return out;
}

}  // namespace taskd
