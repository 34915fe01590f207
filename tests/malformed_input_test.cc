// Malformed input of every field gets INVALID_ARGUMENT naming the field
// (never INTERNAL, never a crash); unknown ids get NOT_FOUND.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

using ::taskd::testing::StartServer;
using ::taskd::testing::Target;

class MalformedInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.engine.limits.max_payload_bytes = 1024;
    server_ = StartServer(options);
    channel_ = grpc::CreateChannel(Target(*server_),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::TaskService::NewStub(channel_);
    worker_stub_ = v1::WorkerService::NewStub(channel_);
  }

  static v1::TaskSpec Valid() {
    v1::TaskSpec spec;
    spec.set_type("ok");
    return spec;
  }

  grpc::Status Submit(const v1::TaskSpec& spec) {
    grpc::ClientContext ctx;
    v1::SubmitTaskRequest req;
    *req.mutable_task() = spec;
    v1::SubmitTaskResponse resp;
    return stub_->SubmitTask(&ctx, req, &resp);
  }

  static void ExpectInvalid(const grpc::Status& status,
                            const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << field << ": " << status.error_message();
    EXPECT_TRUE(absl::StrContains(status.error_message(), field))
        << "message \"" << status.error_message() << "\" should name "
        << field;
  }

  // Runs a Work stream with `first` and `second` messages and returns the
  // status the server ends it with.
  grpc::Status Work(const v1::WorkRequest& first,
                    const v1::WorkRequest* second = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    auto stream = worker_stub_->Work(&ctx);
    stream->Write(first);
    if (second != nullptr) stream->Write(*second);
    v1::WorkResponse ignored;
    while (stream->Read(&ignored)) {
    }
    return stream->Finish();
  }

  std::unique_ptr<TaskdServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
  std::unique_ptr<v1::WorkerService::Stub> worker_stub_;
};

TEST_F(MalformedInputTest, SubmitTaskFields) {
  {
    grpc::ClientContext ctx;
    v1::SubmitTaskRequest req;  // no task at all
    v1::SubmitTaskResponse resp;
    ExpectInvalid(stub_->SubmitTask(&ctx, req, &resp), "task");
  }
  struct Case {
    std::string field;
    std::function<void(v1::TaskSpec&)> mutate;
  } cases[] = {
      {"task.type", [](v1::TaskSpec& s) { s.clear_type(); }},
      {"task.type", [](v1::TaskSpec& s) { s.set_type("has space"); }},
      {"task.type", [](v1::TaskSpec& s) { s.set_type(std::string(129, 'a')); }},
      {"task.queue", [](v1::TaskSpec& s) { s.set_queue("bad/queue"); }},
      {"task.queue", [](v1::TaskSpec& s) { s.set_queue(std::string(65, 'q')); }},
      {"task.payload",
       [](v1::TaskSpec& s) { s.set_payload(std::string(1025, 'x')); }},
      {"task.priority", [](v1::TaskSpec& s) { s.set_priority(10); }},
      {"task.priority", [](v1::TaskSpec& s) { s.set_priority(-1); }},
      {"task.run_at",
       [](v1::TaskSpec& s) {
         s.mutable_run_at()->set_seconds(1);
         s.mutable_delay()->set_seconds(1);
       }},
      {"task.run_at", [](v1::TaskSpec& s) { s.mutable_run_at()->set_nanos(-5); }},
      {"task.delay", [](v1::TaskSpec& s) { s.mutable_delay()->set_seconds(-1); }},
      {"task.timeout",
       [](v1::TaskSpec& s) { s.mutable_timeout()->set_seconds(-3); }},
      {"task.heartbeat_timeout",
       [](v1::TaskSpec& s) { s.mutable_heartbeat_timeout()->set_nanos(-1); }},
      {"task.result_ttl",
       [](v1::TaskSpec& s) { s.mutable_result_ttl()->set_seconds(-1); }},
      {"task.retry.max_attempts",
       [](v1::TaskSpec& s) { s.mutable_retry()->set_max_attempts(-1); }},
      {"task.retry.max_attempts",
       [](v1::TaskSpec& s) { s.mutable_retry()->set_max_attempts(1000); }},
      {"task.retry.initial_backoff",
       [](v1::TaskSpec& s) {
         s.mutable_retry()->mutable_initial_backoff()->set_seconds(-1);
       }},
      {"task.retry.max_backoff",
       [](v1::TaskSpec& s) {
         s.mutable_retry()->mutable_initial_backoff()->set_seconds(10);
         s.mutable_retry()->mutable_max_backoff()->set_seconds(1);
       }},
      {"task.retry.multiplier",
       [](v1::TaskSpec& s) { s.mutable_retry()->set_multiplier(0.5); }},
      {"task.idempotency_key",
       [](v1::TaskSpec& s) { s.set_idempotency_key(std::string(300, 'k')); }},
      {"task.depends_on[0]",
       [](v1::TaskSpec& s) { s.add_depends_on("not-an-id"); }},
      {"task.labels",
       [](v1::TaskSpec& s) {
         for (int i = 0; i < 65; ++i) {
           (*s.mutable_labels())["k" + std::to_string(i)] = "v";
         }
       }},
      {"task.labels", [](v1::TaskSpec& s) { (*s.mutable_labels())[""] = "v"; }},
  };
  for (const Case& c : cases) {
    v1::TaskSpec spec = Valid();
    c.mutate(spec);
    ExpectInvalid(Submit(spec), c.field);
  }
  EXPECT_TRUE(Submit(Valid()).ok());
}

TEST_F(MalformedInputTest, SubmitTasksBatch) {
  {
    grpc::ClientContext ctx;
    v1::SubmitTasksRequest req;
    v1::SubmitTasksResponse resp;
    ExpectInvalid(stub_->SubmitTasks(&ctx, req, &resp), "tasks");
  }
  {
    grpc::ClientContext ctx;
    v1::SubmitTasksRequest req;
    for (int i = 0; i < 1001; ++i) *req.add_tasks() = Valid();
    v1::SubmitTasksResponse resp;
    ExpectInvalid(stub_->SubmitTasks(&ctx, req, &resp), "tasks");
  }
  {
    grpc::ClientContext ctx;
    v1::SubmitTasksRequest req;
    *req.add_tasks() = Valid();
    *req.add_tasks() = Valid();
    req.add_tasks()->set_priority(42);  // index 2: also lacks a type
    v1::SubmitTasksResponse resp;
    ExpectInvalid(stub_->SubmitTasks(&ctx, req, &resp), "tasks[2]");
    // All or nothing: the two valid specs were not created.
    grpc::ClientContext list_ctx;
    v1::ListTasksRequest list;
    v1::ListTasksResponse listed;
    ASSERT_TRUE(stub_->ListTasks(&list_ctx, list, &listed).ok());
    EXPECT_EQ(listed.tasks_size(), 0);
  }
}

TEST_F(MalformedInputTest, IdsAndPaging) {
  v1::Task task;
  {
    grpc::ClientContext ctx;
    v1::GetTaskRequest req;
    ExpectInvalid(stub_->GetTask(&ctx, req, &task), "id");
  }
  {
    grpc::ClientContext ctx;
    v1::GetTaskRequest req;
    req.set_id("../../etc/passwd");
    ExpectInvalid(stub_->GetTask(&ctx, req, &task), "id");
  }
  {
    grpc::ClientContext ctx;
    v1::GetTaskRequest req;
    req.set_id("00000000000000000000000000");  // well-formed, unknown
    EXPECT_EQ(stub_->GetTask(&ctx, req, &task).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::CancelRequest req;
    req.set_id("x");
    ExpectInvalid(stub_->Cancel(&ctx, req, &task), "id");
  }
  {
    grpc::ClientContext ctx;
    v1::CancelRequest req;
    req.set_id("00000000000000000000000000");
    EXPECT_EQ(stub_->Cancel(&ctx, req, &task).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  v1::ListTasksResponse listed;
  {
    grpc::ClientContext ctx;
    v1::ListTasksRequest req;
    req.set_page_size(-1);
    ExpectInvalid(stub_->ListTasks(&ctx, req, &listed), "page_size");
  }
  {
    grpc::ClientContext ctx;
    v1::ListTasksRequest req;
    req.set_page_token("garbage");
    ExpectInvalid(stub_->ListTasks(&ctx, req, &listed), "page_token");
  }
  {
    grpc::ClientContext ctx;
    v1::ListTasksRequest req;
    req.add_states(static_cast<v1::TaskState>(77));
    ExpectInvalid(stub_->ListTasks(&ctx, req, &listed), "states[0]");
  }
  {
    grpc::ClientContext ctx;
    v1::ListTasksRequest req;
    req.set_queue("no spaces allowed");
    ExpectInvalid(stub_->ListTasks(&ctx, req, &listed), "queue");
  }
}

TEST_F(MalformedInputTest, AwaitAndStream) {
  v1::AwaitResponse resp;
  {
    grpc::ClientContext ctx;
    v1::AwaitRequest req;
    ExpectInvalid(stub_->Await(&ctx, req, &resp), "ids");
  }
  {
    grpc::ClientContext ctx;
    v1::AwaitRequest req;
    for (int i = 0; i < 1001; ++i) req.add_ids("00000000000000000000000000");
    ExpectInvalid(stub_->Await(&ctx, req, &resp), "ids");
  }
  {
    grpc::ClientContext ctx;
    v1::AwaitRequest req;
    req.add_ids("00000000000000000000000000");
    req.set_mode(static_cast<v1::AwaitMode>(9));
    ExpectInvalid(stub_->Await(&ctx, req, &resp), "mode");
  }
  {
    grpc::ClientContext ctx;
    v1::AwaitRequest req;
    req.add_ids("00000000000000000000000000");
    req.mutable_timeout()->set_seconds(-1);
    ExpectInvalid(stub_->Await(&ctx, req, &resp), "timeout");
  }
  {
    grpc::ClientContext ctx;
    v1::AwaitRequest req;
    req.add_ids("bad id");
    ExpectInvalid(stub_->Await(&ctx, req, &resp), "ids[0]");
  }
  {
    grpc::ClientContext ctx;
    v1::AwaitRequest req;
    req.add_ids("00000000000000000000000000");
    EXPECT_EQ(stub_->Await(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  auto stream_status = [&](const v1::StreamRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    auto reader = stub_->Stream(&ctx, req);
    v1::TaskEvent e;
    while (reader->Read(&e)) {
    }
    return reader->Finish();
  };
  {
    v1::StreamRequest req;
    req.add_ids("nope");
    ExpectInvalid(stream_status(req), "ids[0]");
  }
  {
    v1::StreamRequest req;
    req.set_queue("bad queue");
    ExpectInvalid(stream_status(req), "queue");
  }
  {
    v1::StreamRequest req;
    req.add_ids("00000000000000000000000000");
    EXPECT_EQ(stream_status(req).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(MalformedInputTest, WorkStream) {
  v1::WorkRequest heartbeat;
  heartbeat.mutable_heartbeat();
  EXPECT_EQ(Work(heartbeat).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  v1::WorkRequest hello;
  hello.mutable_hello()->set_concurrency(-1);
  ExpectInvalid(Work(hello), "hello.concurrency");

  hello.mutable_hello()->set_concurrency(1);
  hello.mutable_hello()->add_queues("bad queue");
  ExpectInvalid(Work(hello), "hello.queues[0]");

  v1::WorkRequest good;
  good.mutable_hello()->set_worker_id("w");
  v1::WorkRequest progress;
  progress.mutable_progress()->set_percent(101);
  ExpectInvalid(Work(good, &progress), "progress.percent");

  v1::WorkRequest twice = good;
  EXPECT_EQ(Work(good, &twice).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  v1::WorkRequest empty;
  ExpectInvalid(Work(good, &empty), "msg");
}

}  // namespace
}  // namespace taskd
