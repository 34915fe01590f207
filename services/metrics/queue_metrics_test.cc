// QueueMetricsTable driven by a real Engine on a FakeClock: every counter
// and histogram of the taskd_task* families moves when the engine says.
#include "services/metrics/queue_metrics.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "scheduler/clock.h"
#include "scheduler/engine.h"
#include "services/metrics/test_util.h"

namespace taskd {
namespace metrics {
namespace {

using testing::Sample;
using testing::Value;

class Sink final : public WorkerSink {
 public:
  void Send(v1::WorkResponse message) override {
    absl::MutexLock lock(&mu_);
    if (message.has_assignment()) assignments_.push_back(message.assignment());
  }
  v1::Assignment Last() {
    absl::MutexLock lock(&mu_);
    return assignments_.back();
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return assignments_.size();
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::Assignment> assignments_ ABSL_GUARDED_BY(mu_);
};

v1::TaskSpec Spec(const std::string& queue, int attempts = 1) {
  v1::TaskSpec s;
  s.set_queue(queue);
  s.set_type("t");
  s.mutable_retry()->set_max_attempts(attempts);
  s.mutable_retry()->mutable_initial_backoff()->set_seconds(1);
  return s;
}

class QueueMetricsTest : public ::testing::Test {
 protected:
  QueueMetricsTest() : table_(10) {
    EngineOptions options;
    options.metrics = &table_;
    engine_ = std::make_unique<Engine>(options, &clock_);
  }
  std::vector<prometheus::MetricFamily> Collect() {
    std::vector<prometheus::MetricFamily> out;
    table_.Collect(&out);
    return out;
  }
  std::shared_ptr<WorkerSession> Connect(const std::string& queue) {
    v1::Hello hello;
    hello.add_queues(queue);
    hello.set_concurrency(1);
    auto w = engine_->ConnectWorker(hello, &sink_);
    EXPECT_TRUE(w.ok());
    return *w;
  }

  FakeClock clock_;
  QueueMetricsTable table_;
  std::unique_ptr<Engine> engine_;
  Sink sink_;
};

TEST_F(QueueMetricsTest, CountsSubmitsAndDeduplicatedSubmits) {
  v1::TaskSpec keyed = Spec("q");
  keyed.set_idempotency_key("k");
  ASSERT_TRUE(engine_->Submit(keyed).ok());
  auto again = engine_->Submit(keyed);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->deduplicated);
  ASSERT_TRUE(engine_->Submit(Spec("q")).ok());
  auto f = Collect();
  EXPECT_EQ(Value(f, "taskd_tasks_submitted_total", {{"queue", "q"}}), 2);
  EXPECT_EQ(Value(f, "taskd_tasks_deduplicated_total", {{"queue", "q"}}), 1);
}

TEST_F(QueueMetricsTest, SuccessObservesWaitRunAndTurnaround) {
  auto task = engine_->Submit(Spec("q"));
  ASSERT_TRUE(task.ok());
  clock_.Advance(absl::Seconds(2));
  auto worker = Connect("q");  // dispatches: waited 2 s
  ASSERT_EQ(sink_.size(), 1u);
  clock_.Advance(absl::Seconds(3));
  v1::Complete done;
  done.set_task_id(task->task.id());
  done.set_lease_id(sink_.Last().lease_id());
  ASSERT_TRUE(engine_->Complete(*worker, done).ok());
  auto f = Collect();
  EXPECT_EQ(Value(f, "taskd_task_attempts_total",
                  {{"queue", "q"}, {"outcome", "succeeded"}}),
            1);
  EXPECT_EQ(Value(f, "taskd_tasks_finished_total",
                  {{"queue", "q"}, {"state", "succeeded"}}),
            1);
  EXPECT_EQ(Value(f, "taskd_tasks_finished_total",
                  {{"queue", "q"}, {"state", "failed"}}),
            0);
  auto wait = Sample(f, "taskd_task_wait_seconds", {{"queue", "q"}});
  ASSERT_TRUE(wait);
  EXPECT_EQ(wait->histogram.sample_count, 1u);
  EXPECT_DOUBLE_EQ(wait->histogram.sample_sum, 2.0);
  auto run = Sample(f, "taskd_task_run_seconds", {{"queue", "q"}});
  EXPECT_DOUBLE_EQ(run->histogram.sample_sum, 3.0);
  auto turnaround = Sample(f, "taskd_task_turnaround_seconds", {{"queue", "q"}});
  EXPECT_DOUBLE_EQ(turnaround->histogram.sample_sum, 5.0);
}

TEST_F(QueueMetricsTest, RetryableFailureRetriesThenFails) {
  auto task = engine_->Submit(Spec("q", /*attempts=*/2));
  ASSERT_TRUE(task.ok());
  auto worker = Connect("q");
  v1::Fail fail;
  fail.set_task_id(task->task.id());
  fail.set_lease_id(sink_.Last().lease_id());
  fail.mutable_error()->set_code("boom");
  fail.mutable_error()->set_retryable(true);
  ASSERT_TRUE(engine_->Fail(*worker, fail).ok());
  auto f = Collect();
  EXPECT_EQ(Value(f, "taskd_task_retries_total", {{"queue", "q"}}), 1);
  EXPECT_EQ(Value(f, "taskd_task_attempts_total",
                  {{"queue", "q"}, {"outcome", "failed"}}),
            1);
  // The retry runs after its back-off and fails for good.
  clock_.Advance(absl::Seconds(2));
  engine_->ProcessTimers();
  ASSERT_EQ(sink_.size(), 2u);
  fail.set_lease_id(sink_.Last().lease_id());
  ASSERT_TRUE(engine_->Fail(*worker, fail).ok());
  f = Collect();
  EXPECT_EQ(Value(f, "taskd_task_retries_total", {{"queue", "q"}}), 1);
  EXPECT_EQ(Value(f, "taskd_task_attempts_total",
                  {{"queue", "q"}, {"outcome", "failed"}}),
            2);
  EXPECT_EQ(Value(f, "taskd_tasks_finished_total",
                  {{"queue", "q"}, {"state", "failed"}}),
            1);
}

TEST_F(QueueMetricsTest, TimeoutLeaseExpiryAndCancelHaveTheirOutcomes) {
  v1::TaskSpec timed = Spec("q");
  timed.mutable_timeout()->set_seconds(5);
  auto t1 = engine_->Submit(timed);
  ASSERT_TRUE(t1.ok());
  auto worker = Connect("q");
  clock_.Advance(absl::Seconds(6));
  engine_->ProcessTimers();  // attempt timeout
  auto t2 = engine_->Submit(Spec("q"));
  ASSERT_TRUE(t2.ok());
  ASSERT_TRUE(engine_->Cancel(t2->task.id(), "").ok());  // RUNNING: requested
  engine_->DisconnectWorker(worker);                     // ends it cancelled
  auto t3 = engine_->Submit(Spec("q"));                  // no worker: pending
  ASSERT_TRUE(engine_->Cancel(t3->task.id(), "").ok());
  auto f = Collect();
  EXPECT_EQ(Value(f, "taskd_task_attempts_total",
                  {{"queue", "q"}, {"outcome", "timeout"}}),
            1);
  EXPECT_EQ(Value(f, "taskd_task_attempts_total",
                  {{"queue", "q"}, {"outcome", "cancelled"}}),
            1);
  EXPECT_EQ(Value(f, "taskd_tasks_finished_total",
                  {{"queue", "q"}, {"state", "cancelled"}}),
            2);
  EXPECT_EQ(Value(f, "taskd_tasks_finished_total",
                  {{"queue", "q"}, {"state", "failed"}}),
            1);

  ASSERT_TRUE(engine_->Submit(Spec("q", 1)).ok());
  auto w2 = Connect("q");
  engine_->DisconnectWorker(w2);
  f = Collect();
  EXPECT_EQ(Value(f, "taskd_task_attempts_total",
                  {{"queue", "q"}, {"outcome", "lease_expired"}}),
            1);
}

TEST(QueueMetricsTableTest, QueuesBeyondTheLimitShareOther) {
  QueueMetricsTable table(2);
  QueueCells* a = table.ForQueue("a");
  QueueCells* b = table.ForQueue("b");
  QueueCells* c = table.ForQueue("c");
  QueueCells* d = table.ForQueue("d");
  EXPECT_EQ(a->label(), "a");
  EXPECT_EQ(b->label(), "b");
  EXPECT_EQ(c->label(), "_other");
  EXPECT_EQ(c, d);
  EXPECT_EQ(table.ForQueue("a"), a);  // stable handles
  EXPECT_EQ(table.LabelFor("zzz"), "_other");
  // Many new names: still bounded, still answered.
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(table.ForQueue("n" + std::to_string(i))->label(), "_other");
  }
  c->Submitted();
  std::vector<prometheus::MetricFamily> f;
  table.Collect(&f);
  EXPECT_EQ(Value(f, "taskd_tasks_submitted_total", {{"queue", "_other"}}), 1);
  for (const auto& family : f) {
    if (family.name == "taskd_tasks_submitted_total") {
      EXPECT_EQ(family.metric.size(), 3u);  // a, b, _other
    }
  }
}

TEST(QueueMetricsTableTest, ConcurrentResolutionGivesOneHandlePerName) {
  QueueMetricsTable table(100);
  std::vector<std::thread> threads;
  std::vector<std::vector<QueueCells*>> seen(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        seen[t].push_back(table.ForQueue("q" + std::to_string(i % 50)));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 200; ++i) {
    for (int t = 1; t < 4; ++t) EXPECT_EQ(seen[t][i], seen[0][i]);
  }
}

}  // namespace
}  // namespace metrics
}  // namespace taskd
