#include "scheduler/event_log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

// What one retained event costs beyond its task (the deque slot).
constexpr size_t kEntryOverheadBytes = sizeof(void*) * 8;

// An event's task given as a message (the payload and result left out).
class MessageTask final : public EventTask {
 public:
  explicit MessageTask(v1::Task task) : task_(std::move(task)) {
    task_.mutable_spec()->clear_payload();
    task_.clear_result();
    bytes_ = task_.ByteSizeLong() + 256;  // the message objects
  }
  void Fill(v1::Task* out) const override { *out = task_; }
  size_t bytes() const override { return bytes_; }

 private:
  v1::Task task_;
  size_t bytes_;
};

}  // namespace

EventLog::EventLog(size_t capacity, uint64_t first_sequence, size_t max_bytes)
    : capacity_(capacity < 1 ? 1 : capacity),
      max_bytes_(max_bytes),
      next_seq_(first_sequence),
      first_seq_(first_sequence),
      readable_end_(first_sequence) {}

uint64_t EventLog::Append(v1::EventType type, const v1::Task& task,
                          absl::Time time, uint64_t ticket) {
  return Append(type, std::make_unique<MessageTask>(task), time, ticket);
}

uint64_t EventLog::Append(v1::EventType type,
                          std::unique_ptr<const EventTask> task,
                          absl::Time time, uint64_t ticket) {
  const size_t bytes = task->bytes() + kEntryOverheadBytes;
  absl::MutexLock lock(&mu_);
  uint64_t seq = next_seq_++;
  ring_.push_back(Entry{std::move(task), time, ticket, bytes, type});
  bytes_ += bytes;
  TrimLocked();
  AdvanceReadableLocked();
  return seq;
}

void EventLog::MarkDurable(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  durable_ticket_ = std::max(durable_ticket_, ticket);
  AdvanceReadableLocked();
}

void EventLog::TrimLocked() {
  // The newest event always stays, however large.
  while (ring_.size() > 1 &&
         (ring_.size() > capacity_ || bytes_ > max_bytes_)) {
    bytes_ -= ring_.front().bytes;
    ring_.pop_front();
    ++first_seq_;
  }
}

void EventLog::AdvanceReadableLocked() {
  readable_end_ = std::max(readable_end_, first_seq_);
  while (readable_end_ < next_seq_ &&
         ring_[readable_end_ - first_seq_].ticket <= durable_ticket_) {
    ++readable_end_;
  }
}

absl::Status EventLog::Read(uint64_t from, size_t max,
                            std::vector<v1::TaskEvent>* out) const {
  absl::MutexLock lock(&mu_);
  if (from < first_seq_) {
    return absl::OutOfRangeError(absl::StrCat(
        "from_sequence ", from, " is older than the oldest retained event ",
        first_seq_));
  }
  for (uint64_t seq = from; seq < readable_end_ && max > 0; ++seq, --max) {
    const Entry& e = ring_[seq - first_seq_];
    v1::TaskEvent& event = out->emplace_back();
    event.set_sequence(seq);
    event.set_type(e.type);
    *event.mutable_time() = FromTime(e.time);
    e.task->Fill(event.mutable_task());
  }
  return absl::OkStatus();
}

void EventLog::Restart(uint64_t next) {
  absl::MutexLock lock(&mu_);
  ring_.clear();
  bytes_ = 0;
  next_seq_ = next;
  first_seq_ = next;
  readable_end_ = next;
}

uint64_t EventLog::next_sequence() const {
  absl::MutexLock lock(&mu_);
  return next_seq_;
}

uint64_t EventLog::first_retained() const {
  absl::MutexLock lock(&mu_);
  return first_seq_;
}

size_t EventLog::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
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
