// Cost per timer of the engine's one timer structure (TimerQueue) as the
// number of armed timers grows: arming N timers, then running them all.
// Prints a table; run by hand (`bazel run //tests/bench:timer_bench`).
#include <chrono>
#include <cstdio>
#include <cstdint>

#include "absl/random/random.h"
#include "absl/time/time.h"
#include "scheduler/timer_queue.h"

namespace {

double NsPer(std::chrono::steady_clock::duration d, int64_t n) {
  return std::chrono::duration<double, std::nano>(d).count() /
         static_cast<double>(n);
}

}  // namespace

int main() {
  std::printf("%10s  %14s  %14s\n", "timers", "arm_ns/timer", "run_ns/timer");
  absl::BitGen gen;
  const absl::Time base = absl::FromUnixSeconds(1'700'000'000);
  for (int64_t n : {1'000LL, 10'000LL, 100'000LL, 1'000'000LL, 2'000'000LL}) {
    taskd::TimerQueue timers;
    int64_t fired = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; ++i) {
      // Random due times over an hour, as leases and back-offs would be.
      timers.Schedule(base + absl::Milliseconds(absl::Uniform(gen, 0, 3'600'000)),
                      [&fired] { ++fired; });
    }
    auto t1 = std::chrono::steady_clock::now();
    timers.RunDue(base + absl::Hours(2));
    auto t2 = std::chrono::steady_clock::now();
    if (fired != n) {
      std::fprintf(stderr, "fired %lld of %lld\n", static_cast<long long>(fired),
                   static_cast<long long>(n));
      return 1;
    }
    std::printf("%10lld  %14.1f  %14.1f\n", static_cast<long long>(n),
                NsPer(t1 - t0, n), NsPer(t2 - t1, n));
  }
  return 0;
}
