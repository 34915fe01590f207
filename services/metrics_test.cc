// TaskdServer with metrics on: the call handlers count their calls (unary and
// streaming, messages and codes), and /metrics carries every name of API.md
// "Metrics", scraped over HTTP.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/metrics/build_info.h"
#include "services/metrics/http_get.h"
#include "services/server.h"

namespace taskd {
namespace {

using metrics::testing::HttpGet;

ServerOptions Options() {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 1;
  o.durability = "memory";
  o.metrics_listen = "127.0.0.1:0";
  o.shutdown_grace = absl::Seconds(1);
  return o;
}

// The value of the exposition line that starts with `series` ("name{...}").
double SeriesValue(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double v = -1;
      EXPECT_TRUE(absl::SimpleAtod(line.substr(series.size() + 1), &v)) << line;
      return v;
    }
  }
  ADD_FAILURE() << "no series " << series;
  return -1;
}

// One method's grpc_server_* series, as scraped; `labels` are its
// grpc_method, grpc_service and grpc_type, as exposed.
struct MethodSeries {
  MethodSeries(const std::string& text, const std::string& labels)
      : started(SeriesValue(text, "grpc_server_started_total{" + labels + "}")),
        received(SeriesValue(
            text, "grpc_server_msg_received_total{" + labels + "}")),
        sent(SeriesValue(text, "grpc_server_msg_sent_total{" + labels + "}")),
        ok(SeriesValue(text, "grpc_server_handled_total{grpc_code=\"OK\"," +
                                 labels + "}")),
        timed(SeriesValue(
            text, "grpc_server_handling_seconds_count{" + labels + "}")) {}
  double started, received, sent, ok, timed;
};

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<TaskdServer>(Options());
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->metrics_port(), 0);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel_);
  }
  std::string Scrape() {
    auto body = HttpGet(server_->metrics_port(), "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    return body.ok() ? *body : "";
  }
  grpc::Status Submit(const std::string& type) {
    grpc::ClientContext ctx;
    v1::SubmitTaskRequest req;
    req.mutable_task()->set_type(type);
    v1::SubmitTaskResponse resp;
    return tasks_->SubmitTask(&ctx, req, &resp);
  }

  std::unique_ptr<TaskdServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
};

TEST_F(MetricsServerTest, HandlersCountUnaryCalls) {
  ASSERT_TRUE(Submit("a").ok());
  ASSERT_TRUE(Submit("b").ok());
  ASSERT_EQ(Submit("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  {
    grpc::ClientContext ctx;
    v1::GetTaskRequest req;
    req.set_id("0000000000000000000000000000");
    v1::Task task;
    EXPECT_FALSE(tasks_->GetTask(&ctx, req, &task).ok());
  }
  const std::string text = Scrape();
  const std::string submit =
      "grpc_method=\"SubmitTask\",grpc_service=\"taskd.v1.TaskService\","
      "grpc_type=\"unary\"";
  const MethodSeries counts(text, submit);
  EXPECT_EQ(counts.started, 3);
  EXPECT_EQ(counts.received, 3);
  EXPECT_EQ(counts.sent, 2);
  EXPECT_EQ(counts.ok, 2);
  EXPECT_EQ(counts.timed, 3);
  EXPECT_EQ(SeriesValue(text,
                        "grpc_server_handled_total{grpc_code=\"InvalidArgument\"," +
                            submit + "}"),
            1);
  EXPECT_EQ(SeriesValue(text, "taskd_tasks_submitted_total{queue=\"default\"}"),
            2);
  EXPECT_EQ(
      SeriesValue(text, "taskd_tasks{queue=\"default\",state=\"pending\"}"), 2);
}

TEST_F(MetricsServerTest, StreamingMethodsHaveTheirTypes) {
  ASSERT_TRUE(Submit("a").ok());
  grpc::ClientContext ctx;
  v1::ListTasksRequest req;
  v1::ListTasksResponse resp;
  ASSERT_TRUE(tasks_->ListTasks(&ctx, req, &resp).ok());
  const std::string text = Scrape();
  EXPECT_EQ(SeriesValue(text,
                        "grpc_server_started_total{grpc_method=\"ListTasks\","
                        "grpc_service=\"taskd.v1.TaskService\",grpc_type="
                        "\"unary\"}"),
            1);
  EXPECT_EQ(SeriesValue(text,
                        "grpc_server_started_total{grpc_method=\"Stream\","
                        "grpc_service=\"taskd.v1.TaskService\",grpc_type="
                        "\"server_stream\"}"),
            0);
  EXPECT_EQ(SeriesValue(text,
                        "grpc_server_started_total{grpc_method=\"Work\","
                        "grpc_service=\"taskd.v1.WorkerService\",grpc_type="
                        "\"bidi_stream\"}"),
            0);
}

TEST_F(MetricsServerTest, StreamingCallsCountTheirMessages) {
  {
    grpc::ClientContext ctx;
    v1::SubmitTaskRequest req;
    req.mutable_task()->set_queue("streamed");
    req.mutable_task()->set_type("t");
    v1::SubmitTaskResponse resp;
    ASSERT_TRUE(tasks_->SubmitTask(&ctx, req, &resp).ok());
  }
  // A worker: hello, the assignment, complete, then it hangs up.
  auto workers = v1::WorkerService::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = workers->Work(&ctx);
  v1::WorkRequest hello;
  hello.mutable_hello()->set_worker_id("w");
  hello.mutable_hello()->add_queues("streamed");
  ASSERT_TRUE(stream->Write(hello));
  v1::WorkResponse assignment;
  ASSERT_TRUE(stream->Read(&assignment));
  ASSERT_TRUE(assignment.has_assignment());
  v1::WorkRequest complete;
  complete.mutable_complete()->set_task_id(assignment.assignment().task().id());
  complete.mutable_complete()->set_lease_id(
      assignment.assignment().lease_id());
  ASSERT_TRUE(stream->Write(complete));
  ASSERT_TRUE(stream->WritesDone());
  ASSERT_TRUE(stream->Finish().ok());

  const std::string text = Scrape();
  const std::string work =
      "grpc_method=\"Work\",grpc_service=\"taskd.v1.WorkerService\","
      "grpc_type=\"bidi_stream\"";
  const MethodSeries counts(text, work);
  EXPECT_EQ(counts.started, 1);
  EXPECT_EQ(counts.received, 2);  // hello, complete
  EXPECT_EQ(counts.sent, 1);      // the assignment
  EXPECT_EQ(counts.ok, 1);
  EXPECT_EQ(counts.timed, 1);
}

TEST_F(MetricsServerTest, AnAwaitItsClientLeftIsHandledCanceled) {
  ASSERT_TRUE(Submit("never-runs").ok());
  grpc::ClientContext list_ctx;
  v1::ListTasksResponse listed;
  ASSERT_TRUE(
      tasks_->ListTasks(&list_ctx, v1::ListTasksRequest(), &listed).ok());
  ASSERT_EQ(listed.tasks_size(), 1);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(50)));
    v1::AwaitRequest req;
    req.add_ids(listed.tasks(0).id());
    v1::AwaitResponse resp;
    EXPECT_EQ(tasks_->Await(&ctx, req, &resp).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // The server learns of it on its own time: scrape until it has counted.
  const std::string series =
      "grpc_server_handled_total{grpc_code=\"Canceled\",grpc_method="
      "\"Await\",grpc_service=\"taskd.v1.TaskService\",grpc_type="
      "\"unary\"}";
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  std::string text = Scrape();
  while (!absl::StrContains(text, series + " 1") && absl::Now() < deadline) {
    text = Scrape();
  }
  EXPECT_EQ(SeriesValue(text, series), 1);
  EXPECT_EQ(SeriesValue(text,
                        "grpc_server_started_total{grpc_method=\"Await\","
                        "grpc_service=\"taskd.v1.TaskService\",grpc_type="
                        "\"unary\"}"),
            1);
}

TEST_F(MetricsServerTest, EveryCatalogueNameIsExported) {
  ASSERT_TRUE(Submit("a").ok());
  const std::string text = Scrape();
  for (const char* name : {
           "taskd_tasks_submitted_total", "taskd_tasks_deduplicated_total",
           "taskd_tasks_finished_total", "taskd_task_attempts_total",
           "taskd_task_retries_total", "taskd_tasks",
           "taskd_queue_oldest_pending_age_seconds", "taskd_queue_paused",
           "taskd_task_wait_seconds", "taskd_task_run_seconds",
           "taskd_task_turnaround_seconds", "taskd_max_tasks", "taskd_workers",
           "taskd_worker_slots", "taskd_awaits", "taskd_streams",
           "taskd_events_total", "taskd_event_log_bytes", "taskd_schedules",
           "taskd_schedule_firings_total", "taskd_journal_commits_total",
           "taskd_journal_commit_records", "taskd_journal_commit_seconds",
           "taskd_storage_bytes", "taskd_recovery_seconds",
           "taskd_recovered_tasks", "taskd_build_info",
           "grpc_server_started_total", "grpc_server_handled_total",
           "grpc_server_msg_received_total", "grpc_server_msg_sent_total",
           "grpc_server_handling_seconds", "process_resident_memory_bytes",
           "process_virtual_memory_bytes", "process_cpu_seconds_total",
           "process_open_fds", "process_max_fds",
           "process_start_time_seconds"}) {
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("\n# TYPE ", name, " ")))
        << name;
  }
  const BuildInfo& b = GetBuildInfo();
  EXPECT_TRUE(absl::StrContains(
      text, absl::StrCat("taskd_build_info{grpc=\"", b.grpc, "\",protobuf=\"",
                         b.protobuf, "\",rocksdb=\"", b.rocksdb,
                         "\",version=\"", b.version, "\"} 1")))
      << text;
}

TEST(MetricsServerOptionsTest, EmptyListenTurnsMetricsOff) {
  ServerOptions o = Options();
  o.metrics_listen = "";
  TaskdServer server(o);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(server.metrics_port(), 0);
}

TEST(MetricsServerOptionsTest, BusyMetricsPortFailsStart) {
  TaskdServer first(Options());
  ASSERT_TRUE(first.Start().ok());
  ServerOptions o = Options();
  o.metrics_listen = absl::StrCat("127.0.0.1:", first.metrics_port());
  TaskdServer second(o);
  absl::Status s = second.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "metrics_listen")) << s;
}

TEST(MetricsServerOptionsTest, ZeroMaxQueuesIsInvalid) {
  ServerOptions o = Options();
  o.metrics_max_queues = 0;
  TaskdServer server(o);
  absl::Status s = server.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "metrics_max_queues")) << s;
}

}  // namespace
}  // namespace taskd
