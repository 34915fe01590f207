// What a client can ask for is bounded through gRPC (issue 10, defects 6
// and 8): no answer is built beyond a client's default receive limit, no
// request repeats work, and a stream cannot wait for a sequence that does
// not exist.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

class ResponseLimitsTest : public ::testing::Test {
 protected:
  ResponseLimitsTest() {
    server_ = testing::StartServer();
    auto channel = grpc::CreateChannel(testing::Target(*server_),
                                       grpc::InsecureChannelCredentials());
    stub_ = v1::TaskService::NewStub(channel);
  }

  std::string SubmitAndCancel(const std::string& payload) {
    v1::SubmitTaskRequest req;
    req.mutable_task()->set_type("big");
    req.mutable_task()->set_payload(payload);
    v1::SubmitTaskResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub_->SubmitTask(&ctx, req, &resp).ok());
    v1::CancelRequest cancel;
    cancel.set_id(resp.task().id());
    v1::Task t;
    grpc::ClientContext ctx2;
    EXPECT_TRUE(stub_->Cancel(&ctx2, cancel, &t).ok());
    return resp.task().id();
  }

  std::unique_ptr<TaskdServer> server_;
  std::unique_ptr<v1::TaskService::Stub> stub_;
};

TEST_F(ResponseLimitsTest, AwaitWithARepeatedIdIsInvalidArgument) {
  const std::string id = SubmitAndCancel("x");
  v1::AwaitRequest req;
  for (int i = 0; i < 1000; ++i) req.add_ids(id);
  v1::AwaitResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub_->Await(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "ids[1]"))
      << s.error_message();
}

TEST_F(ResponseLimitsTest, AwaitBeyondFourMebibytesIsResourceExhausted) {
  v1::AwaitRequest req;
  for (int i = 0; i < 5; ++i) {
    req.add_ids(SubmitAndCancel(std::string(1 << 20, 'p')));
  }
  {
    v1::AwaitResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Await(&ctx, req, &resp).ok());  // no payloads: small
    EXPECT_EQ(resp.tasks_size(), 5);
    EXPECT_TRUE(resp.tasks(0).spec().payload().empty());
  }
  req.set_include_payloads(true);
  v1::AwaitResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub_->Await(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "await at most"))
      << s.error_message();
}

TEST_F(ResponseLimitsTest, ListTasksPagesFitTheDefaultReceiveLimit) {
  for (int i = 0; i < 6; ++i) SubmitAndCancel(std::string(1 << 20, 'p'));
  v1::ListTasksRequest req;
  req.set_include_payloads(true);
  int seen = 0;
  for (int page = 0; page < 10; ++page) {
    v1::ListTasksResponse resp;
    grpc::ClientContext ctx;  // the stock 4 MiB receive limit
    grpc::Status s = stub_->ListTasks(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    seen += resp.tasks_size();
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(seen, 6);
}

TEST_F(ResponseLimitsTest, StreamFromAFutureSequenceIsOutOfRange) {
  SubmitAndCancel("x");
  v1::StreamRequest req;
  req.set_from_sequence(uint64_t{1} << 60);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto reader = stub_->Stream(&ctx, req);
  v1::TaskEvent event;
  EXPECT_FALSE(reader->Read(&event));
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "from_sequence"))
      << s.error_message();
}

}  // namespace
}  // namespace taskd

namespace taskd {
namespace {

// Issue 10, defect 7: a worker that claims concurrency 10,000 and never
// reads its stream is assigned only what its outbox budget holds; the other
// tasks stay PENDING for workers that do read.
TEST(WorkerOutboxTest, AWorkerThatDoesNotReadIsAssignedABoundedAmount) {
  ServerOptions options;
  options.worker_outbox_bytes = 2 << 20;
  auto server = testing::StartServer(options);
  auto channel = grpc::CreateChannel(testing::Target(*server),
                                     grpc::InsecureChannelCredentials());
  auto tasks = v1::TaskService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);

  grpc::ClientContext work_ctx;
  auto stream = workers->Work(&work_ctx);
  v1::WorkRequest hello;
  hello.mutable_hello()->set_worker_id("never-reads");
  hello.mutable_hello()->set_concurrency(10000);
  ASSERT_TRUE(stream->Write(hello));
  // Connected once the engine counts it (hello is read asynchronously).
  ASSERT_TRUE(testing::Eventually([&] {
    auto q = server->engine().GetQueue("default");
    return q.ok() && q->workers() == 1;
  }));

  constexpr int kTasks = 200;
  const std::string payload(512 << 10, 'p');  // 100 MiB in all
  for (int i = 0; i < kTasks; ++i) {
    v1::SubmitTaskRequest req;
    req.mutable_task()->set_type("t");
    req.mutable_task()->set_payload(payload);
    v1::SubmitTaskResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(tasks->SubmitTask(&ctx, req, &resp).ok());
  }
  auto queue = server->engine().GetQueue("default");
  ASSERT_TRUE(queue.ok());
  const int64_t running = queue->running();
  const int64_t pending = queue->pending();
  std::printf("worker that never reads: %lld of %d tasks assigned\n",
              static_cast<long long>(running), kTasks);
  EXPECT_GT(running, 0);
  EXPECT_LT(running, kTasks / 2);  // bounded by the budget, not by 10,000
  EXPECT_EQ(running + pending, kTasks);
  work_ctx.TryCancel();
}

}  // namespace
}  // namespace taskd
