#include "scheduler/timer_queue.h"

#include <cstdint>
#include <string>
#include <vector>

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

}  // namespace
}  // namespace taskd
