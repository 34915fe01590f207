// Clock: the engine's only source of time, injected so tests control it.
//
//   FakeClock clock(absl::FromUnixSeconds(1000));
//   Engine engine(options, &clock);
//   clock.Advance(absl::Seconds(5));
//   engine.ProcessTimers();   // runs whatever became due
//
// RealClock and FakeClock are thread-safe.
#ifndef TASKD_SCHEDULER_CLOCK_H_
#define TASKD_SCHEDULER_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace taskd {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // A process-wide instance; never destroyed.
  static RealClock* Get() {
    static auto* clock = new RealClock;
    return clock;
  }
};

// Time moves only when a test says so.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_CLOCK_H_
