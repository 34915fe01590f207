// Tests Future/Promise, their coroutine support, WhenAll and WhenAny,
// without gRPC.
#include "clients/cpp/future.h"

#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "clients/cpp/when.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

TEST(FutureTest, GetReturnsValueOrTimesOut) {
  Promise<int> promise;
  Future<int> future = promise.future();
  EXPECT_FALSE(future.ready());
  EXPECT_EQ(future.Get(absl::Milliseconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(promise.Set(7));
  EXPECT_FALSE(promise.Set(8));  // first value wins
  ASSERT_TRUE(future.ready());
  EXPECT_EQ(*future.Get(), 7);
  EXPECT_EQ(Future<int>().Get().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(FutureTest, ThenRunsOnSettingThreadOrAtOnce) {
  Promise<std::string> promise;
  std::vector<std::string> seen;
  promise.future().Then(
      [&](const absl::StatusOr<std::string>& v) { seen.push_back(*v); });
  EXPECT_TRUE(seen.empty());
  promise.Set("a");
  promise.future().Then(
      [&](const absl::StatusOr<std::string>& v) { seen.push_back(*v + "!"); });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "a!"}));
}

TEST(FutureTest, ExecutorRunsContinuations) {
  std::deque<std::function<void()>> queue;
  Promise<int> promise([&](std::function<void()> fn) {
    queue.push_back(std::move(fn));
  });
  int got = 0;
  promise.future().Then([&](const absl::StatusOr<int>& v) { got = *v; });
  promise.Set(5);
  EXPECT_EQ(got, 0);  // not inline: handed to the executor
  ASSERT_EQ(queue.size(), 1u);
  queue.front()();
  EXPECT_EQ(got, 5);
}

Future<int> AddOne(Future<int> in) {
  absl::StatusOr<int> v = co_await in;
  if (!v.ok()) co_return v.status();
  co_return *v + 1;
}

TEST(FutureTest, CoroutineResumesWhereTheValueIsSet) {
  Promise<int> promise;
  Future<int> out = AddOne(promise.future());
  EXPECT_FALSE(out.ready());
  std::thread::id resumed_on;
  out.Then([&](const absl::StatusOr<int>&) {
    resumed_on = std::this_thread::get_id();
  });
  std::thread setter([&] { promise.Set(41); });
  setter.join();
  ASSERT_TRUE(out.ready());
  EXPECT_EQ(*out.Get(), 42);
  EXPECT_NE(resumed_on, std::this_thread::get_id());
  // Errors pass through; a ready future does not suspend.
  EXPECT_EQ(AddOne(Future<int>::Ready(absl::NotFoundError("x")))
                .Get(absl::ZeroDuration())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(WhenTest, WhenAllKeepsOrderAndErrors) {
  std::vector<Promise<int>> promises(3);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.future());
  Future<std::vector<absl::StatusOr<int>>> all = WhenAll(futures);
  promises[2].Set(2);
  promises[0].Set(absl::CancelledError("c"));
  EXPECT_FALSE(all.ready());
  promises[1].Set(1);
  ASSERT_TRUE(all.ready());
  auto values = *all.Get();
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0].status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(*values[1], 1);
  EXPECT_EQ(*values[2], 2);
  EXPECT_TRUE(WhenAll(std::vector<Future<int>>()).ready());
}

TEST(WhenTest, WhenAnyGivesFirstIndex) {
  std::vector<Promise<int>> promises(3);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.future());
  Future<size_t> any = WhenAny(futures);
  EXPECT_FALSE(any.ready());
  promises[1].Set(1);
  promises[0].Set(0);
  ASSERT_TRUE(any.ready());
  EXPECT_EQ(*any.Get(), 1u);
  EXPECT_EQ(WhenAny(std::vector<Future<int>>()).Get().status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace taskd
