// End-to-end behaviour of taskd through gRPC: the real server on a loopback
// port, driven by the C++ client library and worker SDK.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/cpp/worker.h"
#include "gtest/gtest.h"
#include "scheduler/validation.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

using ::taskd::testing::Eventually;
using ::taskd::testing::StartServer;
using ::taskd::testing::Target;

v1::TaskSpec Spec(const std::string& type, const std::string& payload = "",
                  int priority = 0) {
  v1::TaskSpec spec;
  spec.set_type(type);
  spec.set_payload(payload);
  spec.set_priority(priority);
  return spec;
}

std::unique_ptr<Worker> StartWorker(
    const TaskdServer& server, const std::string& type, Worker::Handler handler,
    int concurrency = 1, const std::string& id = "") {
  Worker::Options options;
  options.target = Target(server);
  options.concurrency = concurrency;
  options.worker_id = id;
  options.shutdown_timeout = absl::Seconds(5);
  auto worker = std::make_unique<Worker>(options);
  EXPECT_TRUE(worker->RegisterHandler(type, std::move(handler)).ok());
  EXPECT_TRUE(worker->Start().ok());
  EXPECT_TRUE(worker->WaitConnected(absl::Seconds(20)));
  return worker;
}

TEST(IntegrationTest, SubmitWorkAwait) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  auto worker = StartWorker(*server, "echo", [](TaskContext& ctx) {
    return absl::StatusOr<std::string>("echo:" + ctx.payload());
  });

  auto submitted = client.Submit(Spec("echo", "hello"));
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  EXPECT_FALSE(submitted->deduplicated());
  EXPECT_EQ(submitted->task().spec().queue(), "default");
  EXPECT_EQ(submitted->task().id().size(), 26u);

  auto awaited = client.Await({submitted->task().id()}, v1::AWAIT_MODE_ALL,
                              absl::Seconds(30));
  ASSERT_TRUE(awaited.ok()) << awaited.status();
  ASSERT_TRUE(awaited->done());
  ASSERT_EQ(awaited->tasks_size(), 1);
  const v1::Task& task = awaited->tasks(0);
  EXPECT_EQ(task.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(task.result(), "echo:hello");
  EXPECT_EQ(task.attempt(), 1);
  EXPECT_FALSE(task.worker_id().empty());
  EXPECT_TRUE(task.has_finish_time());

  // The future API sees the same terminal task.
  auto got = client.FutureFor(task.id()).Get(absl::Seconds(10));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->result(), "echo:hello");
  worker->Stop();
}

TEST(IntegrationTest, StrictPriorityThenFifo) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  // Submitted before any worker exists, so the order is the scheduler's.
  std::vector<std::pair<int, std::string>> submitted;
  const int priorities[] = {0, 5, 9, 5, 0, 9, 3};
  for (int p : priorities) {
    auto r = client.Submit(Spec("job", "", p));
    ASSERT_TRUE(r.ok()) << r.status();
    submitted.emplace_back(p, r->task().id());
  }
  absl::Mutex mu;
  std::vector<std::string> order;
  auto worker = StartWorker(*server, "job", [&](TaskContext& ctx) {
    absl::MutexLock lock(&mu);
    order.push_back(ctx.id());
    return absl::StatusOr<std::string>("");
  });
  std::vector<std::string> ids;
  for (auto& [p, id] : submitted) ids.push_back(id);
  auto done = client.Await(ids, v1::AWAIT_MODE_ALL, absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());

  // Expected: by priority descending, FIFO within a priority.
  std::vector<std::pair<int, std::string>> expected = submitted;
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  absl::MutexLock lock(&mu);
  ASSERT_EQ(order.size(), expected.size());
  for (size_t i = 0; i < order.size(); ++i) {
    EXPECT_EQ(order[i], expected[i].second) << "position " << i;
  }
  worker->Stop();
}

TEST(IntegrationTest, CancelPending) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  auto r = client.Submit(Spec("nobody-serves-this"));
  ASSERT_TRUE(r.ok());
  auto cancelled = client.Cancel(r->task().id(), "changed my mind");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(cancelled->error().code(), "cancelled");
  EXPECT_EQ(cancelled->error().message(), "changed my mind");
  // Idempotent on a terminal task.
  auto again = client.Cancel(r->task().id());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(again->finish_time().seconds(), cancelled->finish_time().seconds());
}

TEST(IntegrationTest, CancelRunningReachesHandlerToken) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  absl::Notification started;
  std::atomic<bool> saw_cancel{false};
  auto worker = StartWorker(*server, "long", [&](TaskContext& ctx) {
    started.Notify();
    saw_cancel = ctx.WaitCancelled(absl::Seconds(60));
    return absl::StatusOr<std::string>(absl::CancelledError("stopped"));
  });
  auto r = client.Submit(Spec("long"));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(20)));

  auto c = client.Cancel(r->task().id(), "operator");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state(), v1::TASK_STATE_RUNNING);
  EXPECT_TRUE(c->cancel_requested());

  auto done = client.Await({r->task().id()}, v1::AWAIT_MODE_ALL,
                           absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  EXPECT_TRUE(saw_cancel.load());
  EXPECT_EQ(done->tasks(0).state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(done->tasks(0).error().code(), "cancelled");
  worker->Stop();
}

TEST(IntegrationTest, LostWorkerTaskIsRedeliveredWithNextAttempt) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  absl::Notification started_on_a;
  auto a = StartWorker(
      *server, "fragile",
      [&](TaskContext& ctx) {
        started_on_a.Notify();
        ctx.WaitCancelled(absl::Seconds(60));
        return absl::StatusOr<std::string>("from a");
      },
      1, "worker-a");
  v1::TaskSpec spec = Spec("fragile");
  spec.mutable_retry()->mutable_initial_backoff()->set_nanos(10'000'000);
  auto r = client.Submit(spec);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(started_on_a.WaitForNotificationWithTimeout(absl::Seconds(20)));

  std::atomic<int> attempt_on_b{0};
  auto b = StartWorker(
      *server, "fragile",
      [&](TaskContext& ctx) {
        attempt_on_b = ctx.attempt();
        return absl::StatusOr<std::string>("from b");
      },
      1, "worker-b");
  a->Abort();  // a crashes mid-task: its stream is cut, no result is sent

  auto done = client.Await({r->task().id()}, v1::AWAIT_MODE_ALL,
                           absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  const v1::Task& t = done->tasks(0);
  EXPECT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(t.attempt(), 2);
  EXPECT_EQ(attempt_on_b.load(), 2);
  EXPECT_EQ(t.worker_id(), "worker-b");
  EXPECT_EQ(t.result(), "from b");
  a->Stop();
  b->Stop();
}

TEST(IntegrationTest, ThousandAwaitsReleasedByOneCompletion) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  auto r = client.Submit(Spec("gate"));
  ASSERT_TRUE(r.ok());
  const std::string id = r->task().id();

  constexpr int kAwaits = 1000;
  auto channel = grpc::CreateChannel(Target(*server),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::TaskService::NewStub(channel);
  grpc::CompletionQueue cq;
  struct Pending {
    grpc::ClientContext ctx;
    v1::AwaitResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::AwaitResponse>> call;
  };
  std::vector<std::unique_ptr<Pending>> pending;
  v1::AwaitRequest request;
  request.add_ids(id);
  for (int i = 0; i < kAwaits; ++i) {
    auto p = std::make_unique<Pending>();
    p->ctx.set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(60));
    p->call = stub->AsyncAwait(&p->ctx, request, &cq);
    p->call->Finish(&p->response, &p->status, p.get());
    pending.push_back(std::move(p));
  }
  // Every Await is registered on the server before the task completes.
  ASSERT_TRUE(Eventually(
      [&] { return server->engine().pending_awaits() == kAwaits; }));

  auto worker = StartWorker(*server, "gate", [](TaskContext&) {
    return absl::StatusOr<std::string>("open");
  });
  int released = 0;
  for (int i = 0; i < kAwaits; ++i) {
    void* tag;
    bool ok;
    auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(60);
    ASSERT_EQ(cq.AsyncNext(&tag, &ok, deadline),
              grpc::CompletionQueue::GOT_EVENT);
    auto* p = static_cast<Pending*>(tag);
    ASSERT_TRUE(p->status.ok()) << p->status.error_message();
    ASSERT_TRUE(p->response.done());
    ASSERT_EQ(p->response.tasks(0).state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(p->response.tasks(0).result(), "open");
    ++released;
  }
  EXPECT_EQ(released, kAwaits);
  EXPECT_EQ(server->engine().pending_awaits(), 0u);
  worker->Stop();
}

TEST(IntegrationTest, AwaitAnyAndAwaitTimeout) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  auto worker = StartWorker(*server, "quick", [](TaskContext&) {
    return absl::StatusOr<std::string>("q");
  });
  auto quick = client.Submit(Spec("quick"));
  auto never = client.Submit(Spec("never"));
  ASSERT_TRUE(quick.ok() && never.ok());
  std::vector<std::string> ids = {never->task().id(), quick->task().id()};

  auto any = client.Await(ids, v1::AWAIT_MODE_ANY, absl::Seconds(30));
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_TRUE(any->done());
  ASSERT_EQ(any->tasks_size(), 2);
  EXPECT_EQ(any->tasks(0).id(), ids[0]);  // request order
  EXPECT_EQ(any->tasks(0).state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(any->tasks(1).state(), v1::TASK_STATE_SUCCEEDED);

  // ALL cannot finish: the request's own timeout answers done = false.
  auto all = client.Await(ids, v1::AWAIT_MODE_ALL, absl::Milliseconds(200));
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_FALSE(all->done());

  // The gRPC deadline passing first is DEADLINE_EXCEEDED.
  CallOptions short_deadline;
  short_deadline.timeout = absl::Milliseconds(200);
  auto late = client.Await(ids, v1::AWAIT_MODE_ALL, absl::InfiniteDuration(),
                           short_deadline);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  worker->Stop();
}

TEST(IntegrationTest, StreamReplayAndEndWhenIdsTerminal) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  auto r = client.Submit(Spec("s", "payload-bytes"));
  ASSERT_TRUE(r.ok());
  const std::string id = r->task().id();

  // A live stream opened before any worker: it ends by itself once the
  // task is terminal and its event was sent.
  std::vector<v1::TaskEvent> live;
  absl::Status live_status;
  std::thread watcher([&] {
    v1::StreamRequest req;
    req.add_ids(id);
    live_status = client.Stream(req, [&](const v1::TaskEvent& e) {
      live.push_back(e);
      return true;
    });
  });
  // The stream is registered before the worker starts.
  ASSERT_TRUE(Eventually(
      [&] { return server->engine().events().subscriber_count() == 1; }));
  auto worker = StartWorker(*server, "s", [](TaskContext& ctx) {
    ctx.ReportProgress(50, "half");
    return absl::StatusOr<std::string>("out");
  });
  auto done = client.Await({id}, v1::AWAIT_MODE_ALL, absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  watcher.join();
  EXPECT_TRUE(live_status.ok()) << live_status;
  ASSERT_FALSE(live.empty());
  EXPECT_EQ(live.back().type(), v1::EVENT_TYPE_SUCCEEDED);

  // Replay from sequence 1: the whole history, in order, gap-free.
  std::vector<v1::TaskEvent> replay;
  v1::StreamRequest req;
  req.add_ids(id);
  req.set_from_sequence(1);
  req.set_include_payloads(true);
  absl::Status status = client.Stream(req, [&](const v1::TaskEvent& e) {
    replay.push_back(e);
    return true;
  });
  ASSERT_TRUE(status.ok()) << status;
  std::vector<v1::EventType> types;
  for (size_t i = 0; i < replay.size(); ++i) {
    types.push_back(replay[i].type());
    if (i > 0) {
      EXPECT_GT(replay[i].sequence(), replay[i - 1].sequence());
    }
    EXPECT_EQ(replay[i].task().spec().payload(), "payload-bytes");
  }
  std::vector<v1::EventType> expected = {
      v1::EVENT_TYPE_SUBMITTED, v1::EVENT_TYPE_STARTED,
      v1::EVENT_TYPE_PROGRESS, v1::EVENT_TYPE_SUCCEEDED};
  EXPECT_EQ(types, expected);
  EXPECT_EQ(replay.back().task().result(), "out");

  // Without include_payloads the payload and result are omitted.
  req.set_include_payloads(false);
  std::vector<v1::TaskEvent> bare;
  ASSERT_TRUE(client
                  .Stream(req,
                          [&](const v1::TaskEvent& e) {
                            bare.push_back(e);
                            return true;
                          })
                  .ok());
  ASSERT_FALSE(bare.empty());
  EXPECT_TRUE(bare.back().task().spec().payload().empty());
  EXPECT_TRUE(bare.back().task().result().empty());
  worker->Stop();
}

TEST(IntegrationTest, DependentRunsOnlyAfterItsDependencySucceeds) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  absl::Mutex mu;
  std::vector<std::string> order;
  auto worker = StartWorker(
      *server, "step",
      [&](TaskContext& ctx) {
        absl::MutexLock lock(&mu);
        order.push_back(ctx.payload());
        return absl::StatusOr<std::string>("");
      },
      4);
  auto first = client.Submit(Spec("step", "first"));
  ASSERT_TRUE(first.ok());
  v1::TaskSpec second = Spec("step", "second", /*priority=*/9);
  second.add_depends_on(first->task().id());
  auto dependent = client.Submit(second);
  ASSERT_TRUE(dependent.ok()) << dependent.status();
  auto done = client.Await({dependent->task().id()}, v1::AWAIT_MODE_ALL,
                           absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  EXPECT_EQ(done->tasks(0).state(), v1::TASK_STATE_SUCCEEDED);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<std::string>{"first", "second"}));
  worker->Stop();
}

TEST(IntegrationTest, AttemptTimeoutStopsTheHandlerAndFailsWithTimeout) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  std::atomic<int> stopped{0};
  auto worker = StartWorker(*server, "slow", [&](TaskContext& ctx) {
    if (ctx.WaitCancelled(absl::Seconds(60))) ++stopped;
    return absl::StatusOr<std::string>(absl::CancelledError("told to stop"));
  });
  v1::TaskSpec spec = Spec("slow");
  spec.mutable_timeout()->set_nanos(200'000'000);
  spec.mutable_retry()->set_max_attempts(2);
  spec.mutable_retry()->mutable_initial_backoff()->set_nanos(10'000'000);
  auto r = client.Submit(spec);
  ASSERT_TRUE(r.ok());
  auto done = client.Await({r->task().id()}, v1::AWAIT_MODE_ALL,
                           absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  const v1::Task& t = done->tasks(0);
  EXPECT_EQ(t.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(t.error().code(), "timeout");
  EXPECT_EQ(t.attempt(), 2);  // retried once, then out of attempts
  // The server ends an attempt when its time is up; the handler learns it
  // from the cancel notice a moment later.
  EXPECT_TRUE(Eventually([&] { return stopped.load() == 2; }))
      << stopped.load();
  worker->Stop();
}

TEST(IntegrationTest, ShutdownAnswersPendingAwaitsUnavailable) {
  auto server = StartServer();
  TaskClient client(Target(*server));
  auto r = client.Submit(Spec("never"));
  ASSERT_TRUE(r.ok());
  absl::StatusOr<v1::AwaitResponse> result;
  std::thread waiter([&] {
    result = client.Await({r->task().id()}, v1::AWAIT_MODE_ALL,
                          absl::InfiniteDuration());
  });
  ASSERT_TRUE(
      Eventually([&] { return server->engine().pending_awaits() == 1; }));
  server->Shutdown();
  waiter.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable)
      << result.status();
}

}  // namespace
}  // namespace taskd
