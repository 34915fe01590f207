// QueueService semantics in the engine: counts per state, pause/resume,
// max_concurrency across workers, token-bucket rate limits, purge, durable
// settings.
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "scheduler/engine.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/journal.h"
#include "scheduler/storage/memory_storage.h"

namespace taskd {
namespace {

using ::taskd::testing::CompleteMsg;
using ::taskd::testing::ConnectWorker;
using ::taskd::testing::MakeSpec;
using ::taskd::testing::RecordingSink;
using ::taskd::testing::TestOptions;

// Without a journal the engine answers on the calling thread.
v1::Queue Sync(const std::function<void(Engine::QueueCallback)>& call) {
  absl::StatusOr<v1::Queue> out = absl::UnknownError("no answer");
  call([&](absl::StatusOr<v1::Queue> q) { out = std::move(q); });
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : v1::Queue();
}

class QueueTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(engine_.illegal_transitions(), 0u); }
  std::string Submit(const std::string& queue = "") {
    auto r = engine_.Submit(MakeSpec("work", queue));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->task.id() : "";
  }
  v1::Queue Pause(bool paused) {
    return Sync([&](Engine::QueueCallback cb) {
      engine_.PauseQueueAsync("default", paused, std::move(cb));
    });
  }
  v1::Queue Limit(std::optional<int> conc, std::optional<double> rate) {
    return Sync([&](Engine::QueueCallback cb) {
      engine_.UpdateQueueAsync("default", conc, rate, std::move(cb));
    });
  }

  FakeClock clock_;
  Engine engine_{TestOptions(), &clock_};
};

TEST_F(QueueTest, CountsPerStateAndOldestPendingAge) {
  Submit();
  Submit();
  std::string c = Submit();
  Submit("other");
  ASSERT_TRUE(engine_.Cancel(c, "").ok());
  clock_.Advance(absl::Seconds(10));
  auto q = engine_.GetQueue("default");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->pending(), 2);
  EXPECT_EQ(q->cancelled(), 1);
  EXPECT_EQ(q->running(), 0);
  EXPECT_EQ(ToDuration(q->oldest_pending_age()), absl::Seconds(10));
  auto all = engine_.ListQueues();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].queue(), "default");
  EXPECT_EQ(all[1].queue(), "other");
  EXPECT_EQ(engine_.GetQueue("nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine_.GetQueue("bad queue").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(QueueTest, PausedQueueAcceptsButDoesNotDispatch) {
  EXPECT_TRUE(Pause(true).paused());
  RecordingSink sink;
  auto worker = ConnectWorker(engine_, &sink);
  std::string id = Submit();
  EXPECT_EQ(engine_.Get(id)->state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(sink.AssignmentCount(), 0u);
  EXPECT_FALSE(Pause(false).paused());
  EXPECT_TRUE(sink.AssignmentFor(id).has_value());
}

TEST_F(QueueTest, MaxConcurrencyHoldsAcrossWorkers) {
  Limit(2, std::nullopt);
  RecordingSink a_sink, b_sink;
  auto a = ConnectWorker(engine_, &a_sink, "a", {}, {}, 5);
  auto b = ConnectWorker(engine_, &b_sink, "b", {}, {}, 5);
  for (int i = 0; i < 5; ++i) Submit();
  EXPECT_EQ(a_sink.AssignmentCount() + b_sink.AssignmentCount(), 2u);
  EXPECT_EQ(engine_.GetQueue("default")->running(), 2);
  auto first = a_sink.AssignmentCount() > 0 ? a_sink.LastAssignment()
                                            : b_sink.LastAssignment();
  auto& holder = a_sink.AssignmentCount() > 0 ? a : b;
  ASSERT_TRUE(engine_.Complete(*holder, CompleteMsg(*first, "")).ok());
  EXPECT_EQ(a_sink.AssignmentCount() + b_sink.AssignmentCount(), 3u);
  Limit(0, std::nullopt);  // no limit: the rest go at once
  EXPECT_EQ(a_sink.AssignmentCount() + b_sink.AssignmentCount(), 5u);
}

TEST_F(QueueTest, TokenBucketPacesDispatches) {
  Limit(std::nullopt, 2.0);  // 2 per second, burst 2
  RecordingSink sink;
  auto worker = ConnectWorker(engine_, &sink, "w", {}, {}, 100);
  for (int i = 0; i < 10; ++i) Submit();
  EXPECT_EQ(sink.AssignmentCount(), 2u);  // the burst
  clock_.Advance(absl::Milliseconds(499));
  engine_.ProcessTimers();
  EXPECT_EQ(sink.AssignmentCount(), 2u);
  clock_.Advance(absl::Milliseconds(1));
  engine_.ProcessTimers();
  EXPECT_EQ(sink.AssignmentCount(), 3u);  // one token per 500 ms
  clock_.Advance(absl::Seconds(1));
  engine_.ProcessTimers();
  EXPECT_EQ(sink.AssignmentCount(), 5u);
  auto q = Limit(std::nullopt, std::nullopt);
  EXPECT_EQ(q.max_dispatch_per_second(), 2.0);  // unset fields unchanged
}

TEST_F(QueueTest, LimitsAreValidated) {
  absl::Status status;
  engine_.UpdateQueueAsync("default", -1, std::nullopt,
                           [&](absl::StatusOr<v1::Queue> q) { status = q.status(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("max_concurrency"), std::string::npos);
  engine_.UpdateQueueAsync("default", std::nullopt, -0.5,
                           [&](absl::StatusOr<v1::Queue> q) { status = q.status(); });
  EXPECT_NE(status.message().find("max_dispatch_per_second"), std::string::npos);
  engine_.PauseQueueAsync("", true,
                          [&](absl::StatusOr<v1::Queue> q) { status = q.status(); });
  EXPECT_NE(status.message().find("queue"), std::string::npos);
}

TEST_F(QueueTest, PurgeCancelsPendingAndScheduledOnly) {
  RecordingSink sink;
  auto worker = ConnectWorker(engine_, &sink, "w", {}, {}, 1);
  std::string running = Submit();
  std::string pending = Submit();
  v1::TaskSpec later = MakeSpec("work");
  *later.mutable_delay() = FromDuration(absl::Hours(1));
  std::string scheduled = engine_.Submit(later)->task.id();
  std::string elsewhere = Submit("other");
  absl::StatusOr<int64_t> purged = absl::UnknownError("");
  engine_.PurgeQueueAsync("default", "", [&](absl::StatusOr<int64_t> n) { purged = n; });
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 2);
  EXPECT_EQ(engine_.Get(running)->state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(engine_.Get(pending)->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(engine_.Get(scheduled)->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(engine_.Get(elsewhere)->state(), v1::TASK_STATE_PENDING);
}

TEST(QueueDurabilityTest, SettingsSurviveARestart) {
  auto storage = NewMemoryStorage();
  FakeClock clock;
  {
    Journal journal(storage.get(), nullptr);
    EngineOptions options = TestOptions();
    options.journal = &journal;
    Engine engine(options, &clock);
    ASSERT_TRUE(engine.Recover(*storage).ok());
    absl::Notification done;
    engine.UpdateQueueAsync("emails", 3, 7.5,
                            [&](absl::StatusOr<v1::Queue>) { done.Notify(); });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    absl::Notification paused;
    engine.PauseQueueAsync("emails", true,
                           [&](absl::StatusOr<v1::Queue>) { paused.Notify(); });
    ASSERT_TRUE(paused.WaitForNotificationWithTimeout(absl::Seconds(10)));
    journal.Stop();  // before the engine goes: its callbacks use the engine
  }
  Journal journal(storage.get(), nullptr);
  EngineOptions options = TestOptions();
  options.journal = &journal;
  Engine engine(options, &clock);
  ASSERT_TRUE(engine.Recover(*storage).ok());
  auto q = engine.GetQueue("emails");
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE(q->paused());
  EXPECT_EQ(q->max_concurrency(), 3);
  EXPECT_EQ(q->max_dispatch_per_second(), 7.5);
  journal.Stop();
}

}  // namespace
}  // namespace taskd
