// Races between operations on the same task, with real threads. Each
// iteration starts its threads together and joins them; no sleeps. The
// assertions hold for every interleaving, so a failure is a real bug.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "scheduler/clock.h"
#include "scheduler/engine.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/task_state.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

using ::taskd::testing::AllEvents;
using ::taskd::testing::CompleteMsg;
using ::taskd::testing::ConnectWorker;
using ::taskd::testing::FailMsg;
using ::taskd::testing::IsTerminalEvent;
using ::taskd::testing::MakeSpec;
using ::taskd::testing::RecordingSink;
using ::taskd::testing::TestOptions;

constexpr int kIterations = 2000;

// Runs every function on its own thread, releasing them together, and joins.
void RunConcurrently(const std::vector<std::function<void()>>& fns) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(fns.size());
  for (const auto& fn : fns) {
    threads.emplace_back([&ready, &go, &fn] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      fn();
    });
  }
  while (ready.load() < static_cast<int>(fns.size())) std::this_thread::yield();
  go.store(true);
  for (auto& t : threads) t.join();
}

// Terminal events per task id over the whole retained log.
absl::flat_hash_map<std::string, std::vector<v1::EventType>> TerminalEvents(
    Engine& engine) {
  absl::flat_hash_map<std::string, std::vector<v1::EventType>> out;
  for (const auto& e : AllEvents(engine)) {
    if (IsTerminalEvent(e.type())) out[e.task().id()].push_back(e.type());
  }
  return out;
}

v1::EventType EventFor(v1::TaskState state) {
  switch (state) {
    case v1::TASK_STATE_SUCCEEDED:
      return v1::EVENT_TYPE_SUCCEEDED;
    case v1::TASK_STATE_FAILED:
      return v1::EVENT_TYPE_FAILED;
    case v1::TASK_STATE_CANCELLED:
      return v1::EVENT_TYPE_CANCELLED;
    default:
      return v1::EVENT_TYPE_UNSPECIFIED;
  }
}

class EngineRaceTest : public ::testing::Test {
 protected:
  EngineRaceTest() {
    EngineOptions options = TestOptions();
    options.event_log_capacity = 1 << 17;  // keeps every event of a test
    engine_ = std::make_unique<Engine>(options, &clock_);
  }
  void TearDown() override {
    EXPECT_EQ(engine_->illegal_transitions(), 0u);
    // Every event was retained, so the per-task checks saw everything.
    EXPECT_EQ(engine_->events().first_retained(), 1u);
  }

  // Every task reached exactly one terminal state, and its one terminal
  // event agrees with it.
  void ExpectOneTerminalEventEach(const std::vector<std::string>& ids) {
    auto terminal = TerminalEvents(*engine_);
    for (const std::string& id : ids) {
      auto task = engine_->Get(id);
      ASSERT_TRUE(task.ok()) << task.status();
      ASSERT_TRUE(IsTerminal(task->state())) << id;
      const auto& events = terminal[id];
      ASSERT_EQ(events.size(), 1u) << "task " << id;
      EXPECT_EQ(events[0], EventFor(task->state())) << "task " << id;
    }
  }

  FakeClock clock_;
  RecordingSink sink_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineRaceTest, CancelVersusComplete) {
  // Concurrency 1: if either path leaked the worker's credit, the next
  // iteration's task would not be assigned.
  auto worker = ConnectWorker(*engine_, &sink_, "w", {}, {}, 1);
  ASSERT_NE(worker, nullptr);
  std::vector<std::string> ids;
  int cancel_won = 0, complete_won = 0;
  for (int i = 0; i < kIterations; ++i) {
    auto submitted = engine_->Submit(MakeSpec());
    ASSERT_TRUE(submitted.ok());
    const std::string id = submitted->task.id();
    ids.push_back(id);
    auto a = sink_.AssignmentFor(id);
    ASSERT_TRUE(a.has_value()) << "iteration " << i;

    absl::StatusOr<v1::Task> cancelled = absl::UnknownError("not run");
    absl::Status completed = absl::UnknownError("not run");
    RunConcurrently({
        [&] { cancelled = engine_->Cancel(id, "race"); },
        [&] { completed = engine_->Complete(*worker, CompleteMsg(*a, "res")); },
    });
    ASSERT_TRUE(cancelled.ok()) << cancelled.status();
    ASSERT_TRUE(completed.ok()) << completed;

    auto final_task = engine_->Get(id);
    ASSERT_TRUE(final_task.ok());
    if (cancelled->state() == v1::TASK_STATE_SUCCEEDED) {
      // Complete won; Cancel saw a terminal task and left it alone.
      ++complete_won;
      EXPECT_FALSE(cancelled->cancel_requested());
      EXPECT_EQ(final_task->state(), v1::TASK_STATE_SUCCEEDED);
      EXPECT_EQ(final_task->result(), "res");
      EXPECT_FALSE(final_task->cancel_requested());
    } else {
      // Cancel won; the worker's result was discarded.
      ++cancel_won;
      ASSERT_EQ(cancelled->state(), v1::TASK_STATE_RUNNING);
      EXPECT_TRUE(cancelled->cancel_requested());
      EXPECT_EQ(final_task->state(), v1::TASK_STATE_CANCELLED) << i;
      EXPECT_EQ(final_task->error().code(), "cancelled");
      EXPECT_TRUE(final_task->result().empty());
    }
  }
  EXPECT_EQ(cancel_won + complete_won, kIterations);
  ExpectOneTerminalEventEach(ids);
  // One cancel notice per task whose cancel came first, none otherwise.
  EXPECT_EQ(static_cast<int>(sink_.Cancels().size()), cancel_won);
  ::testing::Test::RecordProperty("cancel_won", cancel_won);
  ::testing::Test::RecordProperty("complete_won", complete_won);
}

TEST_F(EngineRaceTest, CancelPendingVersusDispatch) {
  // The worker's only slot is taken by a blocker; completing the blocker
  // dispatches `id` while a client cancels it.
  auto worker = ConnectWorker(*engine_, &sink_, "w", {}, {}, 1);
  ASSERT_NE(worker, nullptr);
  std::vector<std::string> ids;
  int cancelled_pending = 0, dispatched_first = 0;
  for (int i = 0; i < kIterations; ++i) {
    auto blocker = engine_->Submit(MakeSpec("blocker"));
    ASSERT_TRUE(blocker.ok());
    auto blocker_a = sink_.AssignmentFor(blocker->task.id());
    ASSERT_TRUE(blocker_a.has_value()) << "iteration " << i;
    auto target = engine_->Submit(MakeSpec("target"));
    ASSERT_TRUE(target.ok());
    ASSERT_EQ(target->task.state(), v1::TASK_STATE_PENDING);
    const std::string id = target->task.id();
    ids.push_back(blocker->task.id());
    ids.push_back(id);
    ASSERT_FALSE(sink_.AssignmentFor(id).has_value());

    absl::StatusOr<v1::Task> cancelled = absl::UnknownError("not run");
    RunConcurrently({
        [&] { cancelled = engine_->Cancel(id, "race"); },
        [&] {
          ASSERT_TRUE(
              engine_->Complete(*worker, CompleteMsg(*blocker_a, "")).ok());
        },
    });
    ASSERT_TRUE(cancelled.ok()) << cancelled.status();
    auto assigned = sink_.AssignmentFor(id);
    if (cancelled->state() == v1::TASK_STATE_CANCELLED) {
      // Cancelled while PENDING: never handed to a worker.
      ++cancelled_pending;
      EXPECT_FALSE(assigned.has_value()) << "iteration " << i;
    } else {
      // Dispatched first: the worker is told and its stop ends the task.
      ++dispatched_first;
      ASSERT_EQ(cancelled->state(), v1::TASK_STATE_RUNNING);
      ASSERT_TRUE(assigned.has_value());
      bool notified = false;
      for (const auto& c : sink_.Cancels()) {
        notified |= c.task_id() == id && c.lease_id() == assigned->lease_id();
      }
      EXPECT_TRUE(notified) << "iteration " << i;
      ASSERT_TRUE(engine_
                      ->Fail(*worker, FailMsg(*assigned, "stopped", "", true))
                      .ok());
    }
    auto final_task = engine_->Get(id);
    ASSERT_TRUE(final_task.ok());
    ASSERT_EQ(final_task->state(), v1::TASK_STATE_CANCELLED) << i;
  }
  EXPECT_EQ(cancelled_pending + dispatched_first, kIterations);
  ExpectOneTerminalEventEach(ids);
  ::testing::Test::RecordProperty("cancelled_pending", cancelled_pending);
  ::testing::Test::RecordProperty("dispatched_first", dispatched_first);
}

TEST_F(EngineRaceTest, AwaitRegisteredWhileTasksComplete) {
  auto worker = ConnectWorker(*engine_, &sink_, "w", {}, {}, 2);
  ASSERT_NE(worker, nullptr);
  for (int i = 0; i < kIterations; ++i) {
    auto t1 = engine_->Submit(MakeSpec());
    auto t2 = engine_->Submit(MakeSpec());
    ASSERT_TRUE(t1.ok() && t2.ok());
    auto a1 = sink_.AssignmentFor(t1->task.id());
    auto a2 = sink_.AssignmentFor(t2->task.id());
    ASSERT_TRUE(a1.has_value() && a2.has_value()) << "iteration " << i;
    const bool any = i % 2 == 1;
    const std::vector<std::string> ids = {t2->task.id(), t1->task.id()};

    std::atomic<int> calls{0};
    absl::Mutex mu;
    absl::StatusOr<v1::AwaitResponse> answer = absl::UnknownError("none");
    absl::StatusOr<AwaitHandle> handle = absl::UnknownError("not run");
    RunConcurrently({
        [&] {
          handle = engine_->Await(
              ids, any, absl::InfiniteFuture(),
              [&](absl::StatusOr<v1::AwaitResponse> r) {
                calls.fetch_add(1);
                absl::MutexLock lock(&mu);
                answer = std::move(r);
              });
        },
        [&] { ASSERT_TRUE(engine_->Complete(*worker, CompleteMsg(*a1, "1")).ok()); },
        [&] { ASSERT_TRUE(engine_->Complete(*worker, CompleteMsg(*a2, "2")).ok()); },
    });
    ASSERT_TRUE(handle.ok()) << handle.status();
    ASSERT_EQ(calls.load(), 1) << "iteration " << i << (any ? " ANY" : " ALL");
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_TRUE(answer->done());
    ASSERT_EQ(answer->tasks_size(), 2);
    EXPECT_EQ(answer->tasks(0).id(), ids[0]);
    EXPECT_EQ(answer->tasks(1).id(), ids[1]);
    int terminal = 0;
    for (const auto& t : answer->tasks()) terminal += IsTerminal(t.state());
    EXPECT_GE(terminal, any ? 1 : 2) << "iteration " << i;
    // Fired exactly once: it cannot be withdrawn any more.
    EXPECT_FALSE(engine_->CancelAwait(*handle));
  }
  EXPECT_EQ(engine_->illegal_transitions(), 0u);
}

TEST_F(EngineRaceTest, LeaseExpiryVersusLateComplete) {
  auto worker = ConnectWorker(*engine_, &sink_, "w", {}, {}, 1);
  ASSERT_NE(worker, nullptr);
  v1::TaskSpec spec = MakeSpec();
  *spec.mutable_heartbeat_timeout() = FromDuration(absl::Seconds(1));
  spec.mutable_retry()->set_max_attempts(1);  // expiry is final: FAILED
  std::vector<std::string> ids;
  int expired = 0, completed = 0;
  for (int i = 0; i < kIterations; ++i) {
    auto submitted = engine_->Submit(spec);
    ASSERT_TRUE(submitted.ok());
    const std::string id = submitted->task.id();
    ids.push_back(id);
    auto a = sink_.AssignmentFor(id);
    ASSERT_TRUE(a.has_value()) << "iteration " << i;
    clock_.Advance(absl::Seconds(1));  // the lease is due to expire

    RunConcurrently({
        [&] { engine_->ProcessTimers(); },
        [&] { ASSERT_TRUE(engine_->Complete(*worker, CompleteMsg(*a, "res")).ok()); },
    });
    auto final_task = engine_->Get(id);
    ASSERT_TRUE(final_task.ok());
    if (final_task->state() == v1::TASK_STATE_SUCCEEDED) {
      ++completed;
      EXPECT_EQ(final_task->result(), "res");
      EXPECT_FALSE(final_task->has_error());
    } else {
      ++expired;
      ASSERT_EQ(final_task->state(), v1::TASK_STATE_FAILED) << i;
      EXPECT_EQ(final_task->error().code(), "lease_expired");
      EXPECT_TRUE(final_task->result().empty());  // the late result is ignored
      bool notified = false;
      for (const auto& c : sink_.Cancels()) {
        notified |= c.task_id() == id && c.lease_id() == a->lease_id();
      }
      EXPECT_TRUE(notified) << "iteration " << i;
    }
    // Whatever won, another late Complete changes nothing.
    const std::string before = final_task->SerializeAsString();
    ASSERT_TRUE(engine_->Complete(*worker, CompleteMsg(*a, "again")).ok());
    engine_->ProcessTimers();
    EXPECT_EQ(engine_->Get(id)->SerializeAsString(), before);
  }
  EXPECT_EQ(expired + completed, kIterations);
  ExpectOneTerminalEventEach(ids);
  ::testing::Test::RecordProperty("expired", expired);
  ::testing::Test::RecordProperty("completed", completed);
}

TEST_F(EngineRaceTest, ConcurrentSubmitsWithOneIdempotencyKey) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 1000;
  for (int i = 0; i < kRounds; ++i) {
    const size_t count_before = engine_->task_count();
    v1::TaskSpec spec = MakeSpec();
    spec.set_idempotency_key(absl::StrCat("key-", i));
    spec.set_queue(i % 2 == 0 ? "default" : "other");
    std::vector<absl::StatusOr<SubmitResult>> results(
        kThreads, absl::UnknownError("not run"));
    absl::StatusOr<std::vector<v1::Task>> batch =
        absl::UnknownError("not run");
    std::vector<std::function<void()>> fns;
    for (int t = 0; t < kThreads; ++t) {
      fns.push_back([&, t] { results[t] = engine_->Submit(spec); });
    }
    fns.push_back([&] {
      google::protobuf::RepeatedPtrField<v1::TaskSpec> specs;
      *specs.Add() = spec;
      *specs.Add() = spec;
      batch = engine_->SubmitBatch(specs);
    });
    RunConcurrently(fns);

    std::string id;
    int created = 0;
    for (const auto& r : results) {
      ASSERT_TRUE(r.ok()) << r.status();
      if (!r->deduplicated) ++created;
      if (id.empty()) id = r->task.id();
      EXPECT_EQ(r->task.id(), id) << "round " << i;
    }
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->size(), 2u);
    EXPECT_EQ((*batch)[0].id(), id);
    EXPECT_EQ((*batch)[1].id(), id);
    // Exactly one task exists; if the batch created it, no Submit did.
    EXPECT_LE(created, 1) << "round " << i;
    EXPECT_EQ(engine_->task_count(), count_before + 1) << "round " << i;
  }
  // One SUBMITTED event per key, and every task is distinct.
  absl::flat_hash_map<std::string, int> submitted;
  for (const auto& e : AllEvents(*engine_)) {
    if (e.type() == v1::EVENT_TYPE_SUBMITTED) ++submitted[e.task().id()];
  }
  EXPECT_EQ(submitted.size(), static_cast<size_t>(kRounds));
  for (const auto& [id, n] : submitted) EXPECT_EQ(n, 1) << id;
}

}  // namespace
}  // namespace taskd
