#include "scheduler/event_log.h"

#include "absl/strings/str_cat.h"
#include "scheduler/validation.h"

namespace taskd {

EventLog::EventLog(size_t capacity, uint64_t first_sequence)
    : capacity_(capacity < 1 ? 1 : capacity),
      next_seq_(first_sequence),
      first_seq_(first_sequence) {
  ring_.resize(capacity_);
}

uint64_t EventLog::Append(v1::EventType type, const v1::Task& task,
                          absl::Time time) {
  v1::TaskEvent event;
  event.set_type(type);
  *event.mutable_task() = task;
  event.mutable_task()->mutable_spec()->clear_payload();
  event.mutable_task()->clear_result();
  *event.mutable_time() = FromTime(time);

  absl::MutexLock lock(&mu_);
  uint64_t seq = next_seq_++;
  event.set_sequence(seq);
  ring_[seq % capacity_] = std::move(event);
  if (next_seq_ - first_seq_ > capacity_) first_seq_ = next_seq_ - capacity_;
  return seq;
}

absl::Status EventLog::Read(uint64_t from, size_t max,
                            std::vector<v1::TaskEvent>* out) const {
  absl::MutexLock lock(&mu_);
  if (from < first_seq_) {
    return absl::OutOfRangeError(absl::StrCat(
        "from_sequence ", from, " is older than the oldest retained event ",
        first_seq_));
  }
  for (uint64_t seq = from; seq < next_seq_ && max > 0; ++seq, --max) {
    out->push_back(ring_[seq % capacity_]);
  }
  return absl::OkStatus();
}

void EventLog::Restart(uint64_t next) {
  absl::MutexLock lock(&mu_);
  next_seq_ = next;
  first_seq_ = next;
}

uint64_t EventLog::next_sequence() const {
  absl::MutexLock lock(&mu_);
  return next_seq_;
}

uint64_t EventLog::first_retained() const {
  absl::MutexLock lock(&mu_);
  return first_seq_;
}

uint64_t EventLog::Subscribe(Subscriber fn) {
  absl::MutexLock lock(&sub_mu_);
  uint64_t id = next_sub_id_++;
  subscribers_.emplace(id, std::move(fn));
  return id;
}

void EventLog::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&sub_mu_);
  subscribers_.erase(id);
}

void EventLog::Wake() {
  // Subscribers are called under sub_mu_ so that Unsubscribe() returning
  // guarantees the callback is not running and will not run again.
  absl::MutexLock lock(&sub_mu_);
  for (auto& [id, fn] : subscribers_) fn();
}

void EventLog::Close() {
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  Wake();
}

bool EventLog::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

}  // namespace taskd
