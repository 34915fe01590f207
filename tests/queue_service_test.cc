// QueueService through gRPC: pause/resume, max_concurrency enforced across
// the workers, purge, listing, and clear errors.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/client.h"
#include "clients/cpp/worker.h"
#include "gtest/gtest.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

using ::taskd::testing::Eventually;

class QueueServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::StartServer();
    auto channel = grpc::CreateChannel(testing::Target(*server_),
                                       grpc::InsecureChannelCredentials());
    queues_ = v1::QueueService::NewStub(channel);
    client_ = std::make_unique<TaskClient>(channel);
  }

  absl::StatusOr<v1::Queue> Get(const std::string& queue) {
    grpc::ClientContext ctx;
    v1::GetQueueRequest req;
    req.set_queue(queue);
    v1::Queue out;
    grpc::Status s = queues_->GetQueue(&ctx, req, &out);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          s.error_message());
    }
    return out;
  }

  std::string Submit(const std::string& queue) {
    v1::TaskSpec spec;
    spec.set_type("job");
    spec.set_queue(queue);
    auto r = client_->Submit(spec);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->task().id() : "";
  }

  std::unique_ptr<Worker> StartWorker(const std::string& queue, int concurrency,
                                      Worker::Handler handler) {
    Worker::Options options;
    options.target = testing::Target(*server_);
    options.queues = {queue};
    options.concurrency = concurrency;
    auto worker = std::make_unique<Worker>(options);
    EXPECT_TRUE(worker->RegisterHandler("job", std::move(handler)).ok());
    EXPECT_TRUE(worker->Start().ok());
    EXPECT_TRUE(worker->WaitConnected(absl::Seconds(20)));
    return worker;
  }

  std::unique_ptr<TaskdServer> server_;
  std::unique_ptr<v1::QueueService::Stub> queues_;
  std::unique_ptr<TaskClient> client_;
};

TEST_F(QueueServiceTest, PausedQueueHoldsTasksUntilResumed) {
  {
    grpc::ClientContext ctx;
    v1::PauseQueueRequest req;
    req.set_queue("mail");
    v1::Queue q;
    ASSERT_TRUE(queues_->PauseQueue(&ctx, req, &q).ok());
    EXPECT_TRUE(q.paused());
  }
  auto worker = StartWorker("mail", 4, [](TaskContext&) {
    return absl::StatusOr<std::string>("sent");
  });
  std::string id = Submit("mail");
  ASSERT_TRUE(Eventually([&] {
    auto q = Get("mail");
    return q.ok() && q->workers() == 1;
  }));
  auto q = Get("mail");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->pending(), 1);
  EXPECT_EQ(q->running(), 0);
  EXPECT_EQ(client_->Get(id)->state(), v1::TASK_STATE_PENDING);
  {
    grpc::ClientContext ctx;
    v1::ResumeQueueRequest req;
    req.set_queue("mail");
    v1::Queue resumed;
    ASSERT_TRUE(queues_->ResumeQueue(&ctx, req, &resumed).ok());
    EXPECT_FALSE(resumed.paused());
  }
  auto done = client_->Await({id}, v1::AWAIT_MODE_ALL, absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  EXPECT_EQ(done->tasks(0).state(), v1::TASK_STATE_SUCCEEDED);
  worker->Stop();
}

TEST_F(QueueServiceTest, MaxConcurrencyIsEnforcedAcrossWorkers) {
  {
    grpc::ClientContext ctx;
    v1::UpdateQueueRequest req;
    req.set_queue("heavy");
    req.set_max_concurrency(1);
    v1::Queue q;
    ASSERT_TRUE(queues_->UpdateQueue(&ctx, req, &q).ok());
    EXPECT_EQ(q.max_concurrency(), 1);
    EXPECT_EQ(q.max_dispatch_per_second(), 0);  // unset: unchanged
  }
  absl::Notification release;
  std::atomic<int> running{0}, peak{0};
  auto handler = [&](TaskContext&) -> absl::StatusOr<std::string> {
    int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    release.WaitForNotificationWithTimeout(absl::Seconds(30));
    --running;
    return std::string("ok");
  };
  auto a = StartWorker("heavy", 4, handler);
  auto b = StartWorker("heavy", 4, handler);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Submit("heavy"));
  // One task runs; the other two wait although 7 worker slots are free.
  ASSERT_TRUE(Eventually([&] { return running.load() == 1; }));
  auto q = Get("heavy");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->running(), 1);
  EXPECT_EQ(q->pending(), 2);
  EXPECT_EQ(q->workers(), 2);
  release.Notify();
  auto done = client_->Await(ids, v1::AWAIT_MODE_ALL, absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  EXPECT_EQ(peak.load(), 1);
  a->Stop();
  b->Stop();
}

TEST_F(QueueServiceTest, PurgeListAndErrors) {
  Submit("bulk");
  Submit("bulk");
  Submit("keep");
  {
    grpc::ClientContext ctx;
    v1::PurgeQueueRequest req;
    req.set_queue("bulk");
    v1::PurgeQueueResponse resp;
    ASSERT_TRUE(queues_->PurgeQueue(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.purged(), 2);
  }
  EXPECT_EQ(Get("bulk")->cancelled(), 2);
  EXPECT_EQ(Get("keep")->pending(), 1);
  {
    grpc::ClientContext ctx;
    v1::ListQueuesResponse resp;
    ASSERT_TRUE(queues_->ListQueues(&ctx, v1::ListQueuesRequest(), &resp).ok());
    std::vector<std::string> names;
    for (const auto& q : resp.queues()) names.push_back(q.queue());
    EXPECT_EQ(names, (std::vector<std::string>{"bulk", "keep"}));
  }
  EXPECT_EQ(Get("never-used").status().code(), absl::StatusCode::kNotFound);
  auto bad = Get("no spaces");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "queue"));
  {
    grpc::ClientContext ctx;
    v1::UpdateQueueRequest req;
    req.set_queue("keep");
    req.set_max_dispatch_per_second(-3);
    v1::Queue q;
    grpc::Status s = queues_->UpdateQueue(&ctx, req, &q);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(s.error_message(), "max_dispatch_per_second"));
  }
}

}  // namespace
}  // namespace taskd
