// Tests the Worker SDK against an in-process fake WorkerService.
#include "clients/cpp/worker.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/task_failure.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

constexpr absl::Duration kWait = absl::Seconds(30);

// Records what the worker sends; sends what the test queues.
class FakeWorkerService final : public v1::WorkerService::Service {
 public:
  grpc::Status Work(grpc::ServerContext* context,
                    grpc::ServerReaderWriter<v1::WorkResponse, v1::WorkRequest>*
                        stream) override {
    std::thread reader([&] {
      v1::WorkRequest request;
      while (stream->Read(&request)) {
        absl::MutexLock lock(&mu_);
        received_.push_back(request);
      }
      absl::MutexLock lock(&mu_);
      client_done_ = true;
    });
    while (true) {
      v1::WorkResponse out;
      {
        absl::MutexLock lock(&mu_);
        auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !outgoing_.empty() || client_done_ || close_;
        };
        mu_.Await(absl::Condition(&wake));
        if (close_) {
          context->TryCancel();
          break;
        }
        if (outgoing_.empty()) break;
        out = std::move(outgoing_.front());
        outgoing_.pop_front();
      }
      stream->Write(out);
    }
    reader.join();
    return grpc::Status::OK;
  }

  void Assign(const std::string& task_id, uint64_t lease_id,
              const std::string& type, const std::string& payload) {
    v1::WorkResponse response;
    v1::Assignment* a = response.mutable_assignment();
    a->set_lease_id(lease_id);
    a->mutable_task()->set_id(task_id);
    a->mutable_task()->set_attempt(1);
    a->mutable_task()->mutable_spec()->set_type(type);
    a->mutable_task()->mutable_spec()->set_payload(payload);
    Push(response);
  }
  void CancelLease(const std::string& task_id, uint64_t lease_id,
                   const std::string& reason) {
    v1::WorkResponse response;
    response.mutable_cancel()->set_task_id(task_id);
    response.mutable_cancel()->set_lease_id(lease_id);
    response.mutable_cancel()->set_reason(reason);
    Push(response);
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    close_ = true;
  }

  // Waits until some received message satisfies `pred`; returns it.
  std::optional<v1::WorkRequest> WaitFor(
      std::function<bool(const v1::WorkRequest&)> pred) {
    absl::MutexLock lock(&mu_);
    const v1::WorkRequest* found = nullptr;
    auto match = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const v1::WorkRequest& r : received_) {
        if (pred(r)) {
          found = &r;
          return true;
        }
      }
      return false;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&match), kWait)) {
      return std::nullopt;
    }
    return *found;
  }
  bool WaitClientDone() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&client_done_), kWait);
  }
  std::vector<v1::WorkRequest> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  void Push(v1::WorkResponse response) {
    absl::MutexLock lock(&mu_);
    outgoing_.push_back(std::move(response));
  }

  absl::Mutex mu_;
  std::vector<v1::WorkRequest> received_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::WorkResponse> outgoing_ ABSL_GUARDED_BY(mu_);
  bool client_done_ ABSL_GUARDED_BY(mu_) = false;
  bool close_ ABSL_GUARDED_BY(mu_) = false;
};

bool IsFailFor(const v1::WorkRequest& r, const std::string& id) {
  return r.has_fail() && r.fail().task_id() == id;
}
bool IsCompleteFor(const v1::WorkRequest& r, const std::string& id) {
  return r.has_complete() && r.complete().task_id() == id;
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.channel = server_->InProcessChannel(grpc::ChannelArguments());
    options_.worker_id = "w1";
    options_.queues = {"q1", "q2"};
    options_.concurrency = 2;
    options_.shutdown_timeout = kWait;
  }
  void TearDown() override {
    worker_.reset();
    server_->Shutdown();
  }
  void StartWorker(
      std::vector<std::pair<std::string, Worker::Handler>> handlers) {
    worker_ = std::make_unique<Worker>(options_);
    for (auto& [type, handler] : handlers) {
      ASSERT_TRUE(worker_->RegisterHandler(type, std::move(handler)).ok());
    }
    ASSERT_TRUE(worker_->Start().ok());
    ASSERT_TRUE(worker_->WaitConnected(kWait));
  }

  FakeWorkerService service_;
  std::unique_ptr<grpc::Server> server_;
  Worker::Options options_;
  std::unique_ptr<Worker> worker_;
};

absl::StatusOr<std::string> Echo(TaskContext& ctx) {
  return ctx.payload() + "!";
}

absl::StatusOr<std::string> UntilCancelled(TaskContext& ctx) {
  ctx.WaitCancelled(kWait);
  return absl::CancelledError("stopped early");
}

TEST_F(WorkerTest, SendsHelloFirstAndCompletes) {
  StartWorker({{"echo", Echo}, {"alpha", Echo}});
  // WaitConnected() means hello left, not that the server has read it.
  ASSERT_TRUE(service_.WaitFor([](auto&) { return true; }).has_value());
  std::vector<v1::WorkRequest> got = service_.received();
  ASSERT_FALSE(got.empty());
  ASSERT_TRUE(got[0].has_hello());
  const v1::Hello& hello = got[0].hello();
  EXPECT_EQ(hello.worker_id(), "w1");
  EXPECT_EQ(std::vector<std::string>(hello.queues().begin(),
                                     hello.queues().end()),
            (std::vector<std::string>{"q1", "q2"}));
  EXPECT_EQ(std::vector<std::string>(hello.types().begin(),
                                     hello.types().end()),
            (std::vector<std::string>{"alpha", "echo"}));
  EXPECT_EQ(hello.concurrency(), 2);

  service_.Assign("t1", 7, "echo", "hi");
  auto done = service_.WaitFor([](auto& r) { return IsCompleteFor(r, "t1"); });
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->complete().lease_id(), 7u);
  EXPECT_EQ(done->complete().result(), "hi!");
}

TEST_F(WorkerTest, HandlerErrorsBecomeTaskErrors) {
  StartWorker({
      {"bad", [](TaskContext&) -> absl::StatusOr<std::string> {
         return absl::InvalidArgumentError("payload is not JSON");
       }},
      {"custom", [](TaskContext&) -> absl::StatusOr<std::string> {
         return TaskFailure("quota", "over quota", true, "tenant 5");
       }},
      {"throws", [](TaskContext&) -> absl::StatusOr<std::string> {
         throw std::runtime_error("boom");
       }},
  });
  service_.Assign("t1", 1, "bad", "");
  service_.Assign("t2", 2, "custom", "");
  service_.Assign("t3", 3, "throws", "");
  service_.Assign("t4", 4, "unregistered", "");
  auto f1 = service_.WaitFor([](auto& r) { return IsFailFor(r, "t1"); });
  ASSERT_TRUE(f1.has_value());
  EXPECT_EQ(f1->fail().lease_id(), 1u);
  EXPECT_EQ(f1->fail().error().code(), "invalid_argument");
  EXPECT_EQ(f1->fail().error().message(), "payload is not JSON");
  EXPECT_FALSE(f1->fail().error().retryable());
  auto f2 = service_.WaitFor([](auto& r) { return IsFailFor(r, "t2"); });
  ASSERT_TRUE(f2.has_value());
  EXPECT_EQ(f2->fail().error().code(), "quota");
  EXPECT_EQ(f2->fail().error().details(), "tenant 5");
  EXPECT_TRUE(f2->fail().error().retryable());
  auto f3 = service_.WaitFor([](auto& r) { return IsFailFor(r, "t3"); });
  ASSERT_TRUE(f3.has_value());
  EXPECT_EQ(f3->fail().error().code(), "handler_exception");
  auto f4 = service_.WaitFor([](auto& r) { return IsFailFor(r, "t4"); });
  ASSERT_TRUE(f4.has_value());
  EXPECT_EQ(f4->fail().error().code(), "unknown_type");
}

TEST_F(WorkerTest, CancelNoticeFailsWithCancelled) {
  StartWorker({{"wait", [](TaskContext& ctx) -> absl::StatusOr<std::string> {
                  ctx.WaitCancelled(kWait);
                  return std::string("finished anyway");
                }}});
  service_.Assign("t1", 11, "wait", "");
  service_.Assign("t2", 12, "wait", "");
  service_.CancelLease("t1", 11, "user asked");
  auto f = service_.WaitFor([](auto& r) { return IsFailFor(r, "t1"); });
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->fail().lease_id(), 11u);
  EXPECT_EQ(f->fail().error().code(), "cancelled");
  EXPECT_EQ(f->fail().error().message(), "user asked");
  EXPECT_FALSE(f->fail().error().retryable());
  // A stale lease id for t2 cancels nothing; the right one does.
  service_.CancelLease("t2", 99, "stale");
  service_.CancelLease("t2", 12, "now");
  auto f2 = service_.WaitFor([](auto& r) { return IsFailFor(r, "t2"); });
  ASSERT_TRUE(f2.has_value());
  EXPECT_EQ(f2->fail().error().message(), "now");
}

// A type whose handlers have been quick runs on the reading thread; when
// one of them blocks, the reading must go on elsewhere: other assignments
// run, and the cancel notice for the blocked task itself gets through.
TEST_F(WorkerTest, BlockingQuickHandlerDoesNotStallReading) {
  absl::Notification blocked;
  StartWorker({{"quick", [&](TaskContext& ctx) -> absl::StatusOr<std::string> {
                  if (ctx.payload() != "block") return std::string("ok");
                  blocked.Notify();
                  ctx.WaitCancelled(kWait);
                  return std::string("finished anyway");
                }}});
  // Enough quick runs for the worker to run this type inline.
  for (int i = 0; i < 40; ++i) {
    const std::string id = absl::StrCat("q", i);
    service_.Assign(id, 1000 + i, "quick", "");
    ASSERT_TRUE(service_.WaitFor([&](auto& r) { return IsCompleteFor(r, id); })
                    .has_value());
  }
  service_.Assign("b", 1, "quick", "block");
  ASSERT_TRUE(blocked.WaitForNotificationWithTimeout(kWait));
  service_.Assign("after", 2, "quick", "");
  EXPECT_TRUE(
      service_.WaitFor([](auto& r) { return IsCompleteFor(r, "after"); })
          .has_value());
  service_.CancelLease("b", 1, "user asked");
  auto f = service_.WaitFor([](auto& r) { return IsFailFor(r, "b"); });
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->fail().error().code(), "cancelled");
  worker_->Stop();  // the handler uses this test's locals
}

// Assignments beyond `concurrency` wait for a running one to finish.
TEST_F(WorkerTest, RunsAtMostConcurrencyHandlersAtOnce) {
  absl::Mutex mu;
  int running = 0;
  int most = 0;
  std::vector<std::string> started;
  StartWorker({{"wait", [&](TaskContext& ctx) -> absl::StatusOr<std::string> {
                  {
                    absl::MutexLock lock(&mu);
                    ++running;
                    most = std::max(most, running);
                    started.push_back(ctx.id());
                  }
                  ctx.WaitCancelled(kWait);
                  absl::MutexLock lock(&mu);
                  --running;
                  return absl::CancelledError("stopped");
                }}});
  service_.Assign("t1", 1, "wait", "");
  service_.Assign("t2", 2, "wait", "");
  service_.Assign("t3", 3, "wait", "");
  auto count_is = [&](size_t n) {
    absl::MutexLock lock(&mu);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return started.size() >= n;
    };
    return mu.AwaitWithTimeout(absl::Condition(&reached), kWait);
  };
  ASSERT_TRUE(count_is(2));
  std::string first;
  {
    absl::MutexLock lock(&mu);
    first = started[0];
  }
  service_.CancelLease(first, first == "t1" ? 1 : first == "t2" ? 2 : 3, "go");
  ASSERT_TRUE(count_is(3));
  worker_->Stop();  // the handlers use this test's locals
  absl::MutexLock lock(&mu);
  EXPECT_EQ(most, 2);
}

TEST_F(WorkerTest, ProgressIsForwarded) {
  StartWorker({{"p", [](TaskContext& ctx) -> absl::StatusOr<std::string> {
                  EXPECT_FALSE(ctx.ReportProgress(101, "x").ok());
                  EXPECT_TRUE(ctx.ReportProgress(50, "half").ok());
                  return std::string("ok");
                }}});
  service_.Assign("t1", 5, "p", "");
  auto p = service_.WaitFor([](auto& r) { return r.has_progress(); });
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->progress().task_id(), "t1");
  EXPECT_EQ(p->progress().lease_id(), 5u);
  EXPECT_EQ(p->progress().percent(), 50);
  EXPECT_EQ(p->progress().message(), "half");
  EXPECT_TRUE(service_.WaitFor([](auto& r) { return IsCompleteFor(r, "t1"); })
                  .has_value());
}

TEST_F(WorkerTest, SendsHeartbeats) {
  options_.heartbeat_interval = absl::Milliseconds(5);
  StartWorker({{"echo", Echo}});
  EXPECT_TRUE(service_.WaitFor([](auto& r) { return r.has_heartbeat(); })
                  .has_value());
}

TEST_F(WorkerTest, StopIsIdempotentAndClosesStream) {
  StartWorker({{"wait", UntilCancelled}});
  service_.Assign("t1", 1, "wait", "");
  worker_->Stop();
  worker_->Stop();
  EXPECT_TRUE(service_.WaitClientDone());
  // Whether t1 was still queued or already running, it is handed back.
  for (const v1::WorkRequest& r : service_.received()) {
    if (IsFailFor(r, "t1")) {
      EXPECT_EQ(r.fail().error().code(), "worker_stopped");
      EXPECT_TRUE(r.fail().error().retryable());
    }
    EXPECT_FALSE(IsCompleteFor(r, "t1"));
  }
}

TEST_F(WorkerTest, StopAfterTaskStartedReportsWorkerStopped) {
  absl::Notification started;
  StartWorker({{"wait", [&](TaskContext& ctx) -> absl::StatusOr<std::string> {
                  started.Notify();
                  return UntilCancelled(ctx);
                }}});
  service_.Assign("t1", 1, "wait", "");
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  worker_->Stop();
  auto f = service_.WaitFor([](auto& r) { return IsFailFor(r, "t1"); });
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->fail().error().code(), "worker_stopped");
  EXPECT_TRUE(f->fail().error().retryable());
  EXPECT_TRUE(service_.WaitClientDone());
}

TEST_F(WorkerTest, AbortDropsInFlightOutcomes) {
  absl::Notification started;
  StartWorker({{"wait", [&](TaskContext& ctx) -> absl::StatusOr<std::string> {
                  started.Notify();
                  ctx.WaitCancelled(kWait);
                  return std::string("late result");
                }}});
  service_.Assign("t1", 1, "wait", "");
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  worker_->Abort();
  EXPECT_TRUE(service_.WaitClientDone());
  worker_->Stop();
  for (const v1::WorkRequest& r : service_.received()) {
    EXPECT_FALSE(IsCompleteFor(r, "t1"));
    EXPECT_FALSE(IsFailFor(r, "t1"));
  }
  EXPECT_EQ(worker_->Run().code(), absl::StatusCode::kCancelled);
}

TEST_F(WorkerTest, RunReturnsWhenServerEndsStream) {
  worker_ = std::make_unique<Worker>(options_);
  ASSERT_TRUE(worker_->RegisterHandler("echo", Echo).ok());
  absl::Status status;
  std::thread runner([&] { status = worker_->Run(); });
  ASSERT_TRUE(worker_->WaitConnected(kWait));
  service_.Close();
  runner.join();
  EXPECT_FALSE(status.ok());
}

TEST_F(WorkerTest, RunReturnsOkAfterStop) {
  worker_ = std::make_unique<Worker>(options_);
  ASSERT_TRUE(worker_->RegisterHandler("echo", Echo).ok());
  absl::Status status = absl::UnknownError("unset");
  std::thread runner([&] { status = worker_->Run(); });
  ASSERT_TRUE(worker_->WaitConnected(kWait));
  worker_->Stop();
  runner.join();
  EXPECT_TRUE(status.ok()) << status;
}

TEST(WorkerValidationTest, RegisterAndStartErrors) {
  Worker::Options options;
  options.target = "127.0.0.1:1";
  Worker worker(options);
  EXPECT_EQ(worker.Start().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(worker.RegisterHandler("", Echo).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(worker.RegisterHandler("x", nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(worker.RegisterHandler("x", Echo).ok());
  EXPECT_EQ(worker.RegisterHandler("x", Echo).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(worker.worker_id().empty());

  Worker::Options bad;
  bad.concurrency = 0;
  Worker bad_worker(bad);
  ASSERT_TRUE(bad_worker.RegisterHandler("x", Echo).ok());
  EXPECT_EQ(bad_worker.Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WorkerValidationTest, StopBeforeConnectIsPrompt) {
  Worker::Options options;
  options.target = "127.0.0.1:1";  // nothing listens; wait_for_ready blocks
  Worker worker(options);
  ASSERT_TRUE(worker.RegisterHandler("x", Echo).ok());
  ASSERT_TRUE(worker.Start().ok());
  EXPECT_FALSE(worker.WaitConnected(absl::Milliseconds(10)));
  worker.Stop();
}

TEST(TaskContextTest, CancelCallbacksRunOnceAndUnregister) {
  TaskContext ctx(v1::Task(), 1, absl::InfiniteFuture(), nullptr);
  int calls = 0;
  {
    TaskContext::CancelCallback unregistered = ctx.OnCancel([&] { ++calls; });
  }
  TaskContext::CancelCallback reg = ctx.OnCancel([&] { ++calls; });
  EXPECT_FALSE(ctx.WaitCancelled(absl::ZeroDuration()));
  ctx.Cancel(TaskContext::CancelCause::kCancelNotice, "r1");
  ctx.Cancel(TaskContext::CancelCause::kWorkerStopping, "r2");
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(ctx.cancelled());
  EXPECT_EQ(ctx.cancel_cause(), TaskContext::CancelCause::kCancelNotice);
  EXPECT_EQ(ctx.cancel_reason(), "r1");
  TaskContext::CancelCallback late = ctx.OnCancel([&] { ++calls; });
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace taskd
