// TaskdMetrics over an Engine on a FakeClock (scrape-time gauges), and the
// HTTP endpoint serving it.
#include "services/metrics/exporter.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "scheduler/clock.h"
#include "services/metrics/http_get.h"
#include "services/metrics/test_util.h"

namespace taskd {
namespace metrics {
namespace {

using testing::HttpGet;
using testing::Value;

class NullSink final : public WorkerSink {
 public:
  void Send(v1::WorkResponse) override {}
};

v1::TaskSpec Spec(const std::string& queue) {
  v1::TaskSpec s;
  s.set_queue(queue);
  s.set_type("t");
  return s;
}

class ExporterTest : public ::testing::Test {
 protected:
  ExporterTest() : metrics_(std::make_shared<TaskdMetrics>(2, &clock_)) {
    EngineOptions options;
    options.metrics = metrics_->queues();
    options.max_tasks = 777;
    engine_ = std::make_unique<Engine>(options, &clock_);
    ScrapeSources sources;
    sources.engine = engine_.get();
    sources.recovered_tasks = 12;
    sources.recovery_time = absl::Milliseconds(250);
    metrics_->SetSources(sources);
  }

  FakeClock clock_;
  std::shared_ptr<TaskdMetrics> metrics_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ExporterTest, GaugesComeFromTheEngineAtScrapeTime) {
  ASSERT_TRUE(engine_->Submit(Spec("a")).ok());
  ASSERT_TRUE(engine_->Submit(Spec("a")).ok());
  v1::TaskSpec later = Spec("b");
  later.mutable_delay()->set_seconds(60);
  ASSERT_TRUE(engine_->Submit(later).ok());
  ASSERT_TRUE(engine_->Submit(Spec("c")).ok());  // beyond 2 queues: _other
  clock_.Advance(absl::Seconds(7));
  auto f = metrics_->Collect();
  EXPECT_EQ(Value(f, "taskd_tasks", {{"queue", "a"}, {"state", "pending"}}), 2);
  EXPECT_EQ(Value(f, "taskd_tasks", {{"queue", "a"}, {"state", "running"}}), 0);
  EXPECT_EQ(Value(f, "taskd_tasks", {{"queue", "b"}, {"state", "scheduled"}}),
            1);
  EXPECT_EQ(
      Value(f, "taskd_tasks", {{"queue", "_other"}, {"state", "pending"}}), 1);
  EXPECT_EQ(Value(f, "taskd_queue_oldest_pending_age_seconds", {{"queue", "a"}}),
            7);
  EXPECT_EQ(Value(f, "taskd_queue_oldest_pending_age_seconds", {{"queue", "b"}}),
            0);
  EXPECT_EQ(Value(f, "taskd_queue_paused", {{"queue", "a"}}), 0);
  EXPECT_EQ(Value(f, "taskd_max_tasks"), 777);
  EXPECT_EQ(Value(f, "taskd_events_total"), 4);  // four SUBMITTED events
  EXPECT_GT(Value(f, "taskd_event_log_bytes"), 0);
  EXPECT_EQ(Value(f, "taskd_recovered_tasks"), 12);
  EXPECT_DOUBLE_EQ(Value(f, "taskd_recovery_seconds"), 0.25);
  EXPECT_EQ(Value(f, "taskd_awaits"), 0);
  EXPECT_EQ(Value(f, "taskd_storage_bytes"), 0);  // memory mode
  EXPECT_EQ(Value(f, "taskd_build_info"), 1);
  EXPECT_GT(Value(f, "process_resident_memory_bytes"), 0);
}

TEST_F(ExporterTest, WorkersAndSlots) {
  NullSink sink;
  v1::Hello hello;
  hello.add_queues("a");
  hello.set_concurrency(4);
  auto worker = engine_->ConnectWorker(hello, &sink);
  ASSERT_TRUE(worker.ok());
  ASSERT_TRUE(engine_->Submit(Spec("a")).ok());  // dispatched at once
  auto f = metrics_->Collect();
  EXPECT_EQ(Value(f, "taskd_workers", {{"queue", "a"}}), 1);
  EXPECT_EQ(Value(f, "taskd_worker_slots", {{"state", "busy"}}), 1);
  EXPECT_EQ(Value(f, "taskd_worker_slots", {{"state", "free"}}), 3);
  EXPECT_EQ(Value(f, "taskd_tasks", {{"queue", "a"}, {"state", "running"}}), 1);
  engine_->DisconnectWorker(*worker);
}

TEST_F(ExporterTest, JournalCommitsAreCounted) {
  metrics_->journal()->OnCommit(5, absl::Milliseconds(2), true);
  metrics_->journal()->OnCommit(1, absl::Milliseconds(1), true);
  metrics_->journal()->OnCommit(9, absl::Seconds(1), false);  // not a commit
  auto f = metrics_->Collect();
  EXPECT_EQ(Value(f, "taskd_journal_commits_total"), 2);
  auto records = testing::Sample(f, "taskd_journal_commit_records");
  ASSERT_TRUE(records);
  EXPECT_EQ(records->histogram.sample_count, 2u);
  EXPECT_DOUBLE_EQ(records->histogram.sample_sum, 6.0);
}

TEST_F(ExporterTest, EndpointServesTheTextFormat) {
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", metrics_);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  ASSERT_GT((*endpoint)->port(), 0);
  ASSERT_TRUE(engine_->Submit(Spec("a")).ok());
  auto body = HttpGet((*endpoint)->port(), "/metrics");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_TRUE(absl::StrContains(*body, "# TYPE taskd_tasks_submitted_total counter"))
      << *body;
  EXPECT_TRUE(absl::StrContains(*body, "taskd_tasks_submitted_total{queue=\"a\"} 1"))
      << *body;
  EXPECT_TRUE(absl::StrContains(*body, "taskd_build_info{"));
}

TEST_F(ExporterTest, BadOrBusyAddressIsAClearError) {
  auto bad = MetricsEndpoint::Start("no-port", metrics_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "metrics_listen"));
  auto first = MetricsEndpoint::Start("127.0.0.1:0", metrics_);
  ASSERT_TRUE(first.ok());
  auto second = MetricsEndpoint::Start(
      absl::StrCat("127.0.0.1:", (*first)->port()), metrics_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(second.status().message(), "metrics_listen"));
}

}  // namespace
}  // namespace metrics
}  // namespace taskd
