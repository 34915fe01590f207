// Cost per timer of the engine's one timer structure (TimerQueue) against the
// ordered-map queue it replaced, in the same run on the same due times:
//   arm     Schedule() of N timers due at random over an hour (leases,
//           back-offs, Await timeouts);
//   cancel  Cancel() of a random half of them (withdrawn Awaits, leases that
//           ended early);
//   jump    one RunDue() over the whole hour (a clock jump), per timer run;
//   step    RunDue() every 10 ms across the hour, as the timer thread calls
//           it, per timer run (includes the calls that find nothing due).
// Run by hand: `bazel run //tests/bench:timer_bench` (-c opt is the default).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "scheduler/timer_queue.h"

namespace {

// The queue TimerQueue used to be: one ordered map keyed by (due, arming
// order) behind a mutex. Kept here only as the baseline for the figures.
class MapTimerQueue {
 public:
  using TimerId = std::pair<absl::Time, uint64_t>;

  TimerId Schedule(absl::Time when, std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    TimerId id{when, next_seq_++};
    timers_.emplace(id, std::move(fn));
    return id;
  }
  bool Cancel(const TimerId& id) {
    absl::MutexLock lock(&mu_);
    return timers_.erase(id) > 0;
  }
  size_t RunDue(absl::Time now) {
    size_t ran = 0;
    while (true) {
      std::vector<std::function<void()>> due;
      {
        absl::MutexLock lock(&mu_);
        for (auto it = timers_.begin();
             it != timers_.end() && it->first.first <= now;
             it = timers_.erase(it)) {
          due.push_back(std::move(it->second));
        }
      }
      if (due.empty()) return ran;
      for (auto& fn : due) fn();
      ran += due.size();
    }
  }

 private:
  absl::Mutex mu_;
  std::map<TimerId, std::function<void()>> timers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Figures {
  double arm_ns = 0, cancel_ns = 0, jump_ns = 0, step_ns = 0;
};

using Clock = std::chrono::steady_clock;

double NsPer(Clock::duration d, int64_t n) {
  return std::chrono::duration<double, std::nano>(d).count() /
         static_cast<double>(std::max<int64_t>(n, 1));
}

const absl::Time kBase = absl::FromUnixSeconds(1'700'000'000);

// One measurement of queue type Q on the given due offsets (ms from kBase)
// and cancel order (indices into `due_ms`, first half cancelled).
template <typename Q>
bool Measure(const std::vector<int64_t>& due_ms,
             const std::vector<int64_t>& cancel_order, Figures* out) {
  const int64_t n = static_cast<int64_t>(due_ms.size());
  const int64_t cancels = n / 2;
  int64_t fired = 0;
  std::vector<typename Q::TimerId> ids(n);
  {
    Q q;
    q.RunDue(kBase);  // as the engine's timer thread has: the queue is at now
    auto t0 = Clock::now();
    for (int64_t i = 0; i < n; ++i) {
      ids[i] = q.Schedule(kBase + absl::Milliseconds(due_ms[i]),
                          [&fired] { ++fired; });
    }
    auto t1 = Clock::now();
    for (int64_t k = 0; k < cancels; ++k) q.Cancel(ids[cancel_order[k]]);
    auto t2 = Clock::now();
    q.RunDue(kBase + absl::Hours(2));
    auto t3 = Clock::now();
    if (fired != n - cancels) return false;
    out->arm_ns = NsPer(t1 - t0, n);
    out->cancel_ns = NsPer(t2 - t1, cancels);
    out->jump_ns = NsPer(t3 - t2, n - cancels);
  }
  {
    Q q;
    q.RunDue(kBase);
    fired = 0;
    for (int64_t i = 0; i < n; ++i) {
      q.Schedule(kBase + absl::Milliseconds(due_ms[i]), [&fired] { ++fired; });
    }
    auto t0 = Clock::now();
    for (absl::Time now = kBase; now <= kBase + absl::Hours(1);
         now += absl::Milliseconds(10)) {
      q.RunDue(now);
    }
    auto t1 = Clock::now();
    if (fired != n) return false;
    out->step_ns = NsPer(t1 - t0, n);
  }
  return true;
}

// Median of each figure over `runs` measurements.
template <typename Q>
bool MedianOf(int runs, const std::vector<int64_t>& due_ms,
              const std::vector<int64_t>& cancel_order, Figures* out) {
  std::vector<Figures> all(runs);
  for (auto& f : all) {
    if (!Measure<Q>(due_ms, cancel_order, &f)) return false;
  }
  auto median = [&all](double Figures::*field) {
    std::vector<double> v;
    for (const auto& f : all) v.push_back(f.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  out->arm_ns = median(&Figures::arm_ns);
  out->cancel_ns = median(&Figures::cancel_ns);
  out->jump_ns = median(&Figures::jump_ns);
  out->step_ns = median(&Figures::step_ns);
  return true;
}

void PrintRow(int64_t n, const char* impl, const Figures& f) {
  std::printf("%9lld  %-17s %9.1f  %9.1f  %9.1f  %9.1f\n",
              static_cast<long long>(n), impl, f.arm_ns, f.cancel_ns,
              f.jump_ns, f.step_ns);
}

}  // namespace

int main() {
  std::printf("ns per timer; cancel = a random half; jump = one RunDue over "
              "the hour; step = RunDue every 10 ms\n");
  std::printf("%9s  %-17s %9s  %9s  %9s  %9s\n", "timers", "queue", "arm",
              "cancel", "jump", "step");
  absl::BitGen gen;
  for (int64_t n : {10'000LL, 100'000LL, 1'000'000LL}) {
    std::vector<int64_t> due_ms(n);
    for (auto& d : due_ms) d = absl::Uniform<int64_t>(gen, 0, 3'600'000);
    std::vector<int64_t> cancel_order(n);
    for (int64_t i = 0; i < n; ++i) cancel_order[i] = i;
    std::shuffle(cancel_order.begin(), cancel_order.end(), gen);

    const int runs = n >= 1'000'000 ? 1 : 3;
    Figures before, after;
    if (!MedianOf<MapTimerQueue>(runs, due_ms, cancel_order, &before) ||
        !MedianOf<taskd::TimerQueue>(runs, due_ms, cancel_order, &after)) {
      std::fprintf(stderr, "a queue ran the wrong number of timers\n");
      return 1;
    }
    PrintRow(n, "std::map (before)", before);
    PrintRow(n, "TimerQueue", after);
    std::printf("%9s  %-17s %8.2fx  %8.2fx  %8.2fx  %8.2fx\n", "", "before/now",
                before.arm_ns / after.arm_ns,
                before.cancel_ns / after.cancel_ns,
                before.jump_ns / after.jump_ns, before.step_ns / after.step_ns);
  }
  return 0;
}
