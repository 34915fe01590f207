#include "scheduler/timer_queue.h"

#include <algorithm>
#include <utility>

namespace taskd {

TimerQueue::TimerId TimerQueue::Schedule(absl::Time when, Callback fn) {
  absl::MutexLock lock(&mu_);
  TimerId id{when, next_seq_++};
  timers_.emplace(id, std::move(fn));
  return id;
}

bool TimerQueue::Cancel(const TimerId& id) {
  absl::MutexLock lock(&mu_);
  return timers_.erase(id) > 0;
}

size_t TimerQueue::RunDue(absl::Time now) {
  size_t ran = 0;
  while (true) {
    std::vector<Callback> due;
    {
      absl::MutexLock lock(&mu_);
      while (!timers_.empty() && timers_.begin()->first.first <= now) {
        due.push_back(std::move(timers_.begin()->second));
        timers_.erase(timers_.begin());
      }
    }
    if (due.empty()) return ran;
    for (auto& fn : due) fn();
    ran += due.size();
  }
}

absl::Time TimerQueue::NextDue() const {
  absl::MutexLock lock(&mu_);
  return timers_.empty() ? absl::InfiniteFuture()
                         : timers_.begin()->first.first;
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

void TimerQueue::WaitForWork(absl::Time limit) {
  absl::MutexLock lock(&mu_);
  absl::Time armed_for = timers_.empty() ? absl::InfiniteFuture()
                                          : timers_.begin()->first.first;
  auto ready = [this, armed_for]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return woken_ ||
           (!timers_.empty() && timers_.begin()->first.first < armed_for);
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
