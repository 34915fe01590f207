// Tests TaskClient and TaskFuture against an in-process fake TaskService.
#include "clients/cpp/client.h"

#include <coroutine>
#include <exception>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

class FakeTaskService final : public v1::TaskService::Service {
 public:
  grpc::Status SubmitTask(grpc::ServerContext*,
                          const v1::SubmitTaskRequest* request,
                          v1::SubmitTaskResponse* response) override {
    if (request->task().type().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "task.type: required");
    }
    v1::Task* task = response->mutable_task();
    task->set_id("t1");
    *task->mutable_spec() = request->task();
    task->set_state(v1::TASK_STATE_PENDING);
    return grpc::Status::OK;
  }

  grpc::Status SubmitTasks(grpc::ServerContext*,
                           const v1::SubmitTasksRequest* request,
                           v1::SubmitTasksResponse* response) override {
    for (int i = 0; i < request->tasks_size(); ++i) {
      response->add_tasks()->set_id("b" + std::to_string(i));
    }
    return grpc::Status::OK;
  }

  grpc::Status GetTask(grpc::ServerContext*, const v1::GetTaskRequest* request,
                       v1::Task* task) override {
    if (request->id() == "slow") {
      release_slow_.WaitForNotification();
      return grpc::Status::OK;
    }
    if (request->id() != "t1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "task " + request->id() + " not found");
    }
    task->set_id("t1");
    return grpc::Status::OK;
  }

  // Answers done = false `not_done_rounds_` times, then SUCCEEDED.
  grpc::Status Await(grpc::ServerContext*, const v1::AwaitRequest* request,
                     v1::AwaitResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++await_calls_;
    last_await_ = *request;
    for (const std::string& id : request->ids()) {
      v1::Task* task = response->add_tasks();
      task->set_id(id);
      task->set_state(not_done_rounds_ > 0 ? v1::TASK_STATE_RUNNING
                                           : v1::TASK_STATE_SUCCEEDED);
      if (not_done_rounds_ == 0) task->set_result("42");
    }
    response->set_done(not_done_rounds_ == 0);
    if (not_done_rounds_ > 0) --not_done_rounds_;
    return grpc::Status::OK;
  }

  grpc::Status Cancel(grpc::ServerContext*, const v1::CancelRequest* request,
                      v1::Task* task) override {
    task->set_id(request->id());
    task->set_state(v1::TASK_STATE_CANCELLED);
    task->mutable_error()->set_message(request->reason());
    return grpc::Status::OK;
  }

  grpc::Status Stream(grpc::ServerContext* context,
                      const v1::StreamRequest* request,
                      grpc::ServerWriter<v1::TaskEvent>* writer) override {
    for (uint64_t seq = request->from_sequence(); seq < 5; ++seq) {
      v1::TaskEvent event;
      event.set_sequence(seq);
      if (!writer->Write(event)) break;
    }
    if (request->queue() == "endless") {  // until the client goes away
      while (!context->IsCancelled()) {
        v1::TaskEvent event;
        if (!writer->Write(event)) break;
      }
    }
    if (request->queue() == "broken") {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too slow");
    }
    return grpc::Status::OK;
  }

  void set_not_done_rounds(int n) {
    absl::MutexLock lock(&mu_);
    not_done_rounds_ = n;
  }
  int await_calls() {
    absl::MutexLock lock(&mu_);
    return await_calls_;
  }
  v1::AwaitRequest last_await() {
    absl::MutexLock lock(&mu_);
    return last_await_;
  }
  absl::Notification release_slow_;

 private:
  absl::Mutex mu_;
  int not_done_rounds_ ABSL_GUARDED_BY(mu_) = 0;
  int await_calls_ ABSL_GUARDED_BY(mu_) = 0;
  v1::AwaitRequest last_await_ ABSL_GUARDED_BY(mu_);
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    client_ = std::make_unique<TaskClient>(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override {
    service_.release_slow_.Notify();
    server_->Shutdown();
  }

  FakeTaskService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<TaskClient> client_;
};

TEST_F(ClientTest, SubmitReturnsTask) {
  v1::TaskSpec spec;
  spec.set_type("echo");
  absl::StatusOr<v1::SubmitTaskResponse> r = client_->Submit(spec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->task().id(), "t1");
  EXPECT_EQ(r->task().spec().type(), "echo");
}

TEST_F(ClientTest, ErrorsKeepCodeAndMessage) {
  absl::StatusOr<v1::SubmitTaskResponse> r = client_->Submit(v1::TaskSpec());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "task.type: required");
  absl::StatusOr<v1::Task> g = client_->Get("nope");
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(g.status().message(), "task nope not found");
}

TEST_F(ClientTest, PerCallDeadline) {
  CallOptions options;
  options.timeout = absl::Milliseconds(50);
  absl::StatusOr<v1::Task> g = client_->Get("slow", options);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, SubmitBatchKeepsOrder) {
  absl::StatusOr<std::vector<v1::Task>> r =
      client_->SubmitBatch(std::vector<v1::TaskSpec>(3));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[2].id(), "b2");
}

TEST_F(ClientTest, AwaitSendsModeAndTimeout) {
  service_.set_not_done_rounds(1);
  absl::StatusOr<v1::AwaitResponse> r =
      client_->Await({"a", "b"}, v1::AWAIT_MODE_ANY, absl::Milliseconds(1500));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->done());
  v1::AwaitRequest sent = service_.last_await();
  EXPECT_EQ(sent.ids_size(), 2);
  EXPECT_EQ(sent.mode(), v1::AWAIT_MODE_ANY);
  EXPECT_EQ(sent.timeout().seconds(), 1);
  EXPECT_EQ(sent.timeout().nanos(), 500000000);
}

TEST_F(ClientTest, FutureGetLoopsUntilDone) {
  service_.set_not_done_rounds(3);
  v1::TaskSpec spec;
  spec.set_type("echo");
  absl::StatusOr<TaskFuture> future = client_->SubmitAsync(spec);
  ASSERT_TRUE(future.ok()) << future.status();
  EXPECT_EQ(future->id(), "t1");
  absl::StatusOr<v1::Task> task = future->Get();
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(task->result(), "42");
  EXPECT_EQ(service_.await_calls(), 4);
}

TEST_F(ClientTest, FutureGetTimesOut) {
  service_.set_not_done_rounds(1000000);
  absl::StatusOr<v1::Task> task =
      client_->FutureFor("x").Get(absl::ZeroDuration());
  EXPECT_EQ(task.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, CancelPassesReason) {
  absl::StatusOr<v1::Task> task = client_->Cancel("t9", "no longer needed");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(task->error().message(), "no longer needed");
}

TEST_F(ClientTest, StreamDeliversAllEvents) {
  v1::StreamRequest request;
  request.set_from_sequence(1);
  std::vector<uint64_t> seen;
  absl::Status s = client_->Stream(request, [&](const v1::TaskEvent& e) {
    seen.push_back(e.sequence());
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST_F(ClientTest, StreamStopsWhenCallbackReturnsFalse) {
  v1::StreamRequest request;
  request.set_queue("endless");
  int seen = 0;
  absl::Status s = client_->Stream(request, [&](const v1::TaskEvent&) {
    return ++seen < 10;
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(seen, 10);
}

TEST_F(ClientTest, StreamReturnsServerError) {
  v1::StreamRequest request;
  request.set_queue("broken");
  absl::Status s =
      client_->Stream(request, [](const v1::TaskEvent&) { return true; });
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "too slow");
}

// A minimal eager coroutine type whose completion can be waited on.
struct DetachedTask {
  struct promise_type {
    DetachedTask get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

DetachedTask AwaitTwice(TaskFuture future, absl::StatusOr<v1::Task>* first,
                        absl::StatusOr<v1::Task>* second,
                        absl::Notification* done) {
  *first = co_await future;
  *second = co_await future.WaitFor(absl::Seconds(30));
  done->Notify();
}

TEST_F(ClientTest, FutureIsAwaitableFromCoroutine) {
  service_.set_not_done_rounds(2);
  absl::StatusOr<v1::Task> first = absl::UnknownError("unset");
  absl::StatusOr<v1::Task> second = absl::UnknownError("unset");
  absl::Notification done;
  AwaitTwice(client_->FutureFor("co"), &first, &second, &done);
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id(), "co");
  EXPECT_EQ(first->state(), v1::TASK_STATE_SUCCEEDED);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->result(), "42");
}

}  // namespace
}  // namespace taskd
