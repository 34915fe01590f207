#include "scheduler/timer_queue.h"

#include <algorithm>
#include <utility>

namespace taskd {

void TimerQueue::Schedule(absl::Time when, Callback fn) {
  absl::MutexLock lock(&mu_);
  heap_.push(Entry{when, next_seq_++, std::move(fn)});
}

size_t TimerQueue::RunDue(absl::Time now) {
  size_t ran = 0;
  while (true) {
    std::vector<Callback> due;
    {
      absl::MutexLock lock(&mu_);
      while (!heap_.empty() && heap_.top().when <= now) {
        // priority_queue::top is const; the entry is popped right after.
        due.push_back(std::move(const_cast<Entry&>(heap_.top()).fn));
        heap_.pop();
      }
    }
    if (due.empty()) return ran;
    for (auto& fn : due) fn();
    ran += due.size();
  }
}

absl::Time TimerQueue::NextDue() const {
  absl::MutexLock lock(&mu_);
  return heap_.empty() ? absl::InfiniteFuture() : heap_.top().when;
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return heap_.size();
}

void TimerQueue::WaitForWork(absl::Time limit) {
  absl::MutexLock lock(&mu_);
  absl::Time armed_for =
      heap_.empty() ? absl::InfiniteFuture() : heap_.top().when;
  auto ready = [this, armed_for]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return woken_ || (!heap_.empty() && heap_.top().when < armed_for);
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready),
                        std::min(limit, armed_for));
  woken_ = false;
}

void TimerQueue::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

}  // namespace taskd
