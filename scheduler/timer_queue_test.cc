#include "scheduler/timer_queue.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

TEST(TimerQueueTest, EmptyQueue) {
  TimerQueue q;
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.NextDue(), absl::InfiniteFuture());
  EXPECT_EQ(q.RunDue(absl::InfiniteFuture()), 0u);
}

TEST(TimerQueueTest, RunsInDueOrder) {
  TimerQueue q;
  std::vector<int> order;
  q.Schedule(kT0 + absl::Seconds(3), [&] { order.push_back(3); });
  q.Schedule(kT0 + absl::Seconds(1), [&] { order.push_back(1); });
  q.Schedule(kT0 + absl::Seconds(5), [&] { order.push_back(5); });
  q.Schedule(kT0 + absl::Seconds(2), [&] { order.push_back(2); });
  q.Schedule(kT0 + absl::Seconds(4), [&] { order.push_back(4); });
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(1));
  EXPECT_EQ(q.RunDue(kT0 + absl::Seconds(10)), 5u);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, EqualTimesRunFifo) {
  TimerQueue q;
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) {
    q.Schedule(kT0, [&order, i] { order.push_back(i); });
  }
  q.RunDue(kT0);
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(TimerQueueTest, RunDueRunsOnlyDueTimers) {
  TimerQueue q;
  std::vector<int> ran;
  q.Schedule(kT0 - absl::Seconds(1), [&] { ran.push_back(0); });
  q.Schedule(kT0, [&] { ran.push_back(1); });  // due exactly now: runs
  q.Schedule(kT0 + absl::Nanoseconds(1), [&] { ran.push_back(2); });
  q.Schedule(kT0 + absl::Hours(1), [&] { ran.push_back(3); });

  EXPECT_EQ(q.RunDue(kT0), 2u);
  EXPECT_EQ(ran, (std::vector<int>{0, 1}));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.NextDue(), kT0 + absl::Nanoseconds(1));

  EXPECT_EQ(q.RunDue(kT0), 0u);  // nothing new is due
  EXPECT_EQ(q.RunDue(kT0 + absl::Nanoseconds(1)), 1u);
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(q.NextDue(), kT0 + absl::Hours(1));
  EXPECT_EQ(q.RunDue(kT0 + absl::Hours(1)), 1u);
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(q.NextDue(), absl::InfiniteFuture());
}

TEST(TimerQueueTest, CallbacksArmingDueTimersRunInTheSameRunDue) {
  TimerQueue q;
  std::vector<std::string> ran;
  q.Schedule(kT0, [&] {
    ran.push_back("a");
    // Due already: must run in this RunDue.
    q.Schedule(kT0 - absl::Seconds(5), [&] {
      ran.push_back("a.1");
      q.Schedule(kT0, [&] { ran.push_back("a.1.1"); });
    });
    // Not due: must wait.
    q.Schedule(kT0 + absl::Seconds(1), [&] { ran.push_back("later"); });
  });
  EXPECT_EQ(q.RunDue(kT0), 3u);
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "a.1", "a.1.1"}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(1));
  EXPECT_EQ(q.RunDue(kT0 + absl::Seconds(1)), 1u);
  EXPECT_EQ(ran.back(), "later");
}

TEST(TimerQueueTest, NextDueTracksTheEarliest) {
  TimerQueue q;
  q.Schedule(kT0 + absl::Seconds(10), [] {});
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(10));
  q.Schedule(kT0 + absl::Seconds(20), [] {});
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(10));
  q.Schedule(kT0 + absl::Seconds(5), [] {});
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(5));
  q.Schedule(absl::InfinitePast(), [] {});
  EXPECT_EQ(q.NextDue(), absl::InfinitePast());
  EXPECT_EQ(q.RunDue(kT0 + absl::Seconds(5)), 2u);
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(10));
}

TEST(TimerQueueTest, WaitForWorkReturnsAtOnceWhenWoken) {
  TimerQueue q;
  q.Wake();
  // Woken before the wait: returns without waiting for the (far) limit.
  const absl::Time start = absl::Now();
  q.WaitForWork(start + absl::Seconds(120));
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
  // A due timer also ends the wait at once.
  q.Schedule(absl::InfinitePast(), [] {});
  q.WaitForWork(absl::Now() + absl::Seconds(120));
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
}

TEST(TimerQueueTest, AMillionTimers) {
  constexpr int kTimers = 1'000'000;
  TimerQueue q;
  // Deterministic pseudo-random due times over 1000 distinct seconds, so that
  // many timers share a due time and FIFO order among them is exercised.
  std::vector<int32_t> due_sec(kTimers);
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < kTimers; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    due_sec[i] = static_cast<int32_t>(x % 1000);
  }
  std::vector<int32_t> order;
  order.reserve(kTimers);
  for (int i = 0; i < kTimers; ++i) {
    q.Schedule(kT0 + absl::Seconds(due_sec[i]),
               [&order, i] { order.push_back(i); });
  }
  ASSERT_EQ(q.size(), static_cast<size_t>(kTimers));

  // First half of the time range: exactly the timers due by then run.
  const absl::Time half = kT0 + absl::Seconds(499);
  size_t want_half = 0;
  for (int32_t s : due_sec) want_half += (s <= 499);
  ASSERT_EQ(q.RunDue(half), want_half);
  ASSERT_EQ(order.size(), want_half);
  for (int32_t i : order) ASSERT_LE(due_sec[i], 499);
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(500));

  ASSERT_EQ(q.RunDue(kT0 + absl::Seconds(999)), kTimers - want_half);
  ASSERT_EQ(order.size(), static_cast<size_t>(kTimers));
  EXPECT_EQ(q.size(), 0u);

  // Every timer ran exactly once, ordered by (due time, scheduling order).
  std::vector<bool> seen(kTimers, false);
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t i = order[k];
    ASSERT_FALSE(seen[i]) << "timer " << i << " ran twice";
    seen[i] = true;
    if (k == 0) continue;
    const int32_t prev = order[k - 1];
    ASSERT_TRUE(due_sec[prev] < due_sec[i] ||
                (due_sec[prev] == due_sec[i] && prev < i))
        << "timer " << prev << " (t+" << due_sec[prev] << ") ran before "
        << i << " (t+" << due_sec[i] << ")";
  }
}

// ---- the timing wheel: far times, levels, jumps, re-entrancy, memory -------

constexpr absl::Duration kYear = absl::Hours(24 * 365);

// A deterministic pseudo-random sequence (xorshift64).
class Rng {
 public:
  uint64_t Next() {
    x_ ^= x_ << 13;
    x_ ^= x_ >> 7;
    x_ ^= x_ << 17;
    return x_;
  }
  int64_t Below(int64_t n) { return static_cast<int64_t>(Next() % n); }

 private:
  uint64_t x_ = 88172645463325252ull;
};

TEST(TimerQueueTest, FarFutureAndInfiniteFutureTimers) {
  TimerQueue q;
  q.RunDue(kT0);
  // Past the range of int64 milliseconds: shares the wheel's last tick with
  // InfiniteFuture, and still runs only when due.
  const absl::Time beyond_millis = absl::FromUnixSeconds(int64_t{1} << 60);
  const absl::Time millennium = kT0 + 1000 * kYear;
  std::vector<std::string> ran;
  q.Schedule(absl::InfiniteFuture(), [&] { ran.push_back("infinite"); });
  q.Schedule(beyond_millis, [&] { ran.push_back("beyond"); });
  q.Schedule(millennium, [&] { ran.push_back("millennium"); });
  q.Schedule(kT0 + absl::Milliseconds(1), [&] { ran.push_back("soon"); });
  EXPECT_EQ(q.size(), 4u);
  EXPECT_EQ(q.NextDue(), kT0 + absl::Milliseconds(1));

  EXPECT_EQ(q.RunDue(millennium - absl::Nanoseconds(1)), 1u);
  EXPECT_EQ(q.NextDue(), millennium);
  EXPECT_EQ(q.RunDue(millennium), 1u);
  EXPECT_EQ(q.NextDue(), beyond_millis);
  EXPECT_EQ(q.RunDue(beyond_millis - absl::Nanoseconds(1)), 0u);
  EXPECT_EQ(q.RunDue(beyond_millis), 1u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.RunDue(absl::InfiniteFuture()), 1u);
  EXPECT_EQ(ran, (std::vector<std::string>{"soon", "millennium", "beyond",
                                           "infinite"}));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, CancelFreesAFarTimerAtOnce) {
  TimerQueue q;
  q.RunDue(kT0);
  auto owned = std::make_shared<int>(7);
  std::weak_ptr<int> watch = owned;
  const TimerQueue::TimerId far =
      q.Schedule(kT0 + 100 * kYear, [owned = std::move(owned)] {});
  const TimerQueue::TimerId forever = q.Schedule(absl::InfiniteFuture(), [] {});
  EXPECT_EQ(q.size(), 2u);
  EXPECT_FALSE(watch.expired());

  EXPECT_TRUE(q.Cancel(far));
  EXPECT_TRUE(watch.expired()) << "the callback outlived Cancel";
  EXPECT_EQ(q.size(), 1u);
  EXPECT_FALSE(q.Cancel(far));
  EXPECT_EQ(q.NextDue(), absl::InfiniteFuture());

  EXPECT_TRUE(q.Cancel(forever));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.RunDue(absl::InfiniteFuture()), 0u);
}

TEST(TimerQueueTest, ArmAndCancelReuseNodes) {
  TimerQueue q;
  q.RunDue(kT0);
  q.Schedule(kT0 + absl::Hours(1), [] {});  // keeps the queue non-empty
  size_t nodes = 0;
  for (int round = 0; round < 30; ++round) {
    std::vector<TimerQueue::TimerId> ids;
    for (int i = 0; i < 10'000; ++i) {
      ids.push_back(q.Schedule(
          kT0 + (round + 1) * absl::Hours(24) + absl::Seconds(i % 600), [] {}));
    }
    for (const auto& id : ids) ASSERT_TRUE(q.Cancel(id));
    ASSERT_EQ(q.size(), 1u);
    if (round == 0) nodes = q.stats().nodes;
    ASSERT_EQ(q.stats().nodes, nodes) << "round " << round;
  }
  EXPECT_GE(nodes, 10'001u);
  // Storage beyond the first allocation goes back once nothing is armed.
  EXPECT_EQ(q.RunDue(kT0 + absl::Hours(1)), 1u);
  EXPECT_LT(q.stats().nodes, nodes);
}

TEST(TimerQueueTest, StaleIdsCancelNothing) {
  TimerQueue q;
  int ran = 0;
  const TimerQueue::TimerId old = q.Schedule(kT0, [&] { ++ran; });
  EXPECT_EQ(q.RunDue(kT0), 1u);
  // The next timer reuses the node; the old id must not reach it.
  const TimerQueue::TimerId now = q.Schedule(kT0, [&] { ++ran; });
  EXPECT_FALSE(q.Cancel(old));
  EXPECT_FALSE(q.Cancel({now.first + absl::Nanoseconds(1), now.second}));
  EXPECT_FALSE(q.Cancel({now.first, now.second + (uint64_t{1} << 32)}));
  EXPECT_FALSE(q.Cancel({now.first, now.second + 12345}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.RunDue(kT0), 1u);
  EXPECT_EQ(ran, 2);
}

TEST(TimerQueueTest, OrderAcrossLevelBoundaries) {
  TimerQueue q;
  q.RunDue(kT0);
  // Times around the next multiple of each level's span (64^L ms) and around
  // millisecond edges; several timers per time, armed in shuffled order.
  const int64_t t0_ms = absl::ToUnixMillis(kT0);
  std::vector<absl::Time> times;
  for (int64_t span = 64; span <= (int64_t{1} << 36); span *= 64) {
    const absl::Time edge = absl::FromUnixMillis((t0_ms / span + 1) * span);
    for (absl::Duration d :
         {-absl::Milliseconds(1), -absl::Nanoseconds(1), absl::ZeroDuration(),
          absl::Nanoseconds(1), absl::Microseconds(999),
          absl::Milliseconds(1)}) {
      times.push_back(edge + d);
    }
  }
  Rng rng;
  std::vector<std::pair<absl::Time, int>> armed;  // (due, label)
  for (int i = 0; i < 3 * static_cast<int>(times.size()); ++i) {
    armed.emplace_back(times[rng.Below(times.size())], i);
  }
  std::vector<int> ran;
  for (const auto& [due, label] : armed) {
    q.Schedule(due, [&ran, label = label] { ran.push_back(label); });
  }
  std::map<absl::Time, std::vector<int>> by_time;  // labels in arming order
  for (const auto& [due, label] : armed) by_time[due].push_back(label);

  for (const auto& [due, labels] : by_time) {
    ASSERT_EQ(q.NextDue(), due);
    ASSERT_EQ(q.RunDue(due - absl::Nanoseconds(1)), 0u)
        << "a timer ran before " << due;
    ran.clear();
    ASSERT_EQ(q.RunDue(due), labels.size());
    ASSERT_EQ(ran, labels) << "at " << due;
  }
  EXPECT_EQ(q.size(), 0u);
  EXPECT_GT(q.stats().timers_cascaded, 0u);
}

TEST(TimerQueueTest, ACascadedTimerKeepsItsPlace) {
  TimerQueue q;
  q.RunDue(kT0);
  const absl::Time t = kT0 + absl::Hours(5) + absl::Microseconds(300);
  std::vector<std::string> ran;
  q.Schedule(t, [&] { ran.push_back("armed 5h ahead"); });
  q.Schedule(t + absl::Milliseconds(70), [&] { ran.push_back("after"); });
  // A timer due 100 ms before t brings the wheel next to t (the wheel moves
  // only to run something): the first timer moves down from a high level.
  q.Schedule(t - absl::Milliseconds(100), [&] { ran.push_back("pacer"); });
  const uint64_t cascaded = q.stats().timers_cascaded;
  EXPECT_EQ(q.RunDue(t - absl::Milliseconds(100)), 1u);
  EXPECT_GT(q.stats().timers_cascaded, cascaded);
  q.Schedule(t, [&] { ran.push_back("armed 100ms ahead"); });
  q.Schedule(t - absl::Nanoseconds(1), [&] { ran.push_back("earlier"); });

  EXPECT_EQ(q.RunDue(t - absl::Nanoseconds(2)), 0u);
  EXPECT_EQ(q.NextDue(), t - absl::Nanoseconds(1));
  EXPECT_EQ(q.RunDue(t), 3u);
  EXPECT_EQ(ran, (std::vector<std::string>{"pacer", "earlier",
                                           "armed 5h ahead",
                                           "armed 100ms ahead"}));
  EXPECT_EQ(q.RunDue(t + absl::Milliseconds(70) - absl::Nanoseconds(1)), 0u);
  EXPECT_EQ(q.RunDue(t + absl::Milliseconds(70)), 1u);
}

TEST(TimerQueueTest, AClockJumpVisitsOnlyOccupiedSlots) {
  TimerQueue q;
  q.RunDue(kT0);
  constexpr int kTimers = 5'000;
  Rng rng;
  std::vector<absl::Time> due(kTimers);
  for (int i = 0; i < kTimers; ++i) {
    // Over 30 days, at sub-millisecond precision; every 8th shares a time.
    due[i] = i % 8 == 7 ? due[i - 1]
                        : kT0 + absl::Milliseconds(rng.Below(30LL * 86'400'000)) +
                              absl::Nanoseconds(rng.Below(1'000'000));
  }
  std::vector<int> order;
  for (int i = 0; i < kTimers; ++i) {
    q.Schedule(due[i], [&order, i] { order.push_back(i); });
  }
  const TimerQueue::Stats before = q.stats();
  ASSERT_EQ(q.RunDue(kT0 + absl::Hours(24 * 31)), static_cast<size_t>(kTimers));
  for (size_t k = 1; k < order.size(); ++k) {
    const int a = order[k - 1], b = order[k];
    ASSERT_TRUE(due[a] < due[b] || (due[a] == due[b] && a < b))
        << a << " ran before " << b;
  }
  // 2.7e9 ticks passed; the work is bounded by the timers (each runs once and
  // moves down at most 10 levels), not by the ticks.
  const TimerQueue::Stats after = q.stats();
  EXPECT_LE(after.slots_run - before.slots_run, uint64_t{kTimers});
  EXPECT_LE(after.slots_cascaded - before.slots_cascaded, 10u * kTimers);
  EXPECT_LE(after.timers_cascaded - before.timers_cascaded, 10u * kTimers);

  // Ten years with one timer ahead and nothing due: a handful of slots.
  q.Schedule(kT0 + 20 * kYear, [] {});
  const TimerQueue::Stats idle = q.stats();
  EXPECT_EQ(q.RunDue(kT0 + 10 * kYear), 0u);
  EXPECT_EQ(q.RunDue(kT0 + 20 * kYear), 1u);
  EXPECT_LE(q.stats().slots_run + q.stats().slots_cascaded -
                idle.slots_run - idle.slots_cascaded,
            11u);
}

TEST(TimerQueueTest, CallbacksMayScheduleAndCancel) {
  TimerQueue q;
  std::vector<std::string> ran;
  TimerQueue::TimerId self;
  const TimerQueue::TimerId victim =
      q.Schedule(kT0 + absl::Seconds(2), [&] { ran.push_back("victim"); });
  const TimerQueue::TimerId far =
      q.Schedule(kT0 + kYear, [&] { ran.push_back("far"); });
  self = q.Schedule(kT0, [&] {
    ran.push_back("first");
    EXPECT_FALSE(q.Cancel(self));  // running: no longer armed
    EXPECT_TRUE(q.Cancel(victim));
    EXPECT_TRUE(q.Cancel(far));
    q.Schedule(kT0 + absl::Seconds(1), [&] { ran.push_back("re-armed"); });
  });
  EXPECT_EQ(q.RunDue(kT0), 1u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.NextDue(), kT0 + absl::Seconds(1));

  // A periodic timer that re-arms itself 10 ms later, 100 times: a clock jump
  // of a second runs the whole chain in one RunDue.
  int ticks = 0;
  std::function<void()> tick = [&] {
    if (++ticks < 100) {
      q.Schedule(kT0 + absl::Seconds(1) + ticks * absl::Milliseconds(10), tick);
    }
  };
  q.Schedule(kT0 + absl::Seconds(1), tick);
  EXPECT_EQ(q.RunDue(kT0 + absl::Seconds(2)), 101u);
  EXPECT_EQ(ticks, 100);
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "re-armed"}));
  EXPECT_EQ(q.RunDue(kT0 + 2 * kYear), 0u);
  EXPECT_EQ(q.size(), 0u);
}

// Random arms, cancels and clock moves (forward by any amount, sometimes
// back), checked step by step against an ordered map of (due, arming order).
TEST(TimerQueueTest, AgreesWithAnOrderedMap) {
  TimerQueue q;
  Rng rng;
  std::map<std::pair<absl::Time, int>, int> model;
  std::vector<std::pair<TimerQueue::TimerId, std::pair<absl::Time, int>>> ids;
  std::vector<int> ran;
  absl::Time now = kT0;
  int next_label = 0;
  auto random_span = [&rng]() -> absl::Duration {
    switch (rng.Below(6)) {
      case 0: return absl::Nanoseconds(rng.Below(2'000'000));
      case 1: return absl::Milliseconds(rng.Below(300));
      case 2: return absl::Milliseconds(rng.Below(300'000));
      case 3: return absl::Seconds(rng.Below(30 * 86'400));
      case 4: return absl::Hours(rng.Below(24 * 365 * 50));
      default: return absl::ZeroDuration();
    }
  };
  for (int step = 0; step < 20'000; ++step) {
    const int64_t op = rng.Below(100);
    if (op < 50) {
      absl::Time due;
      switch (rng.Below(20)) {
        case 0: due = absl::InfinitePast(); break;
        case 1: due = absl::InfiniteFuture(); break;
        case 2: due = now + 1000 * kYear; break;
        case 3: due = now - random_span(); break;
        default: due = now + random_span(); break;
      }
      const int label = next_label++;
      ids.push_back(
          {q.Schedule(due, [&ran, label] { ran.push_back(label); }),
           {due, label}});
      model.emplace(std::make_pair(due, label), label);
    } else if (op < 70 && !ids.empty()) {
      const auto& [id, key] = ids[rng.Below(ids.size())];
      ASSERT_EQ(q.Cancel(id), model.erase(key) > 0) << "step " << step;
    } else {
      if (op < 97) {
        now += rng.Below(4) == 0 ? random_span() : absl::Milliseconds(rng.Below(50));
      } else {
        now -= absl::Milliseconds(rng.Below(5'000));
      }
      std::vector<int> want;
      while (!model.empty() && model.begin()->first.first <= now) {
        want.push_back(model.begin()->second);
        model.erase(model.begin());
      }
      ran.clear();
      ASSERT_EQ(q.RunDue(now), want.size()) << "step " << step;
      ASSERT_EQ(ran, want) << "step " << step;
    }
    ASSERT_EQ(q.size(), model.size()) << "step " << step;
    ASSERT_EQ(q.NextDue(), model.empty() ? absl::InfiniteFuture()
                                         : model.begin()->first.first)
        << "step " << step;
  }
}

TEST(TimerQueueTest, ConcurrentArmCancelAndRun) {
  TimerQueue q;
  std::atomic<int> ran{0};
  std::atomic<int> cancelled{0};
  constexpr int kPerThread = 20'000;
  auto arm_and_cancel = [&](int seed) {
    Rng rng;
    for (int i = 0; i < seed; ++i) rng.Next();
    for (int i = 0; i < kPerThread; ++i) {
      const auto id = q.Schedule(kT0 + absl::Milliseconds(rng.Below(5'000)),
                                 [&ran] { ++ran; });
      if (i % 3 == 0 && q.Cancel(id)) ++cancelled;
    }
  };
  std::thread a(arm_and_cancel, 1), b(arm_and_cancel, 2);
  for (int ms = 0; ms <= 5'000; ms += 7) q.RunDue(kT0 + absl::Milliseconds(ms));
  a.join();
  b.join();
  q.RunDue(absl::InfiniteFuture());
  EXPECT_EQ(ran + cancelled, 2 * kPerThread);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, WaitForWorkEndsWhenAnEarlierTimerIsArmed) {
  TimerQueue q;
  q.Schedule(absl::InfiniteFuture(), [] {});
  const absl::Time start = absl::Now();
  std::thread waiter([&q, start] { q.WaitForWork(start + absl::Seconds(120)); });
  while (q.stats().waiters == 0) std::this_thread::yield();
  q.Schedule(absl::InfinitePast(), [] {});
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
}

TEST(TimerQueueTest, WaitForWorkSeesADueTimerOnAHighLevel) {
  TimerQueue q;  // the wheel stands at InfinitePast: this timer is far ahead
  q.Schedule(absl::Now() - absl::Seconds(1), [] {});
  const absl::Time start = absl::Now();
  q.WaitForWork(start + absl::Seconds(120));
  EXPECT_LT(absl::Now() - start, absl::Seconds(60));
}

}  // namespace
}  // namespace taskd
