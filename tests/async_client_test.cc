// AsyncTaskClient against a real taskd run as a child process (so that every
// thread in this process is the client's or the test's): 10,000 outstanding
// awaits on a handful of threads, results from a worker, co_await and
// executors, timeouts, per-id errors in a shared batch, and shutdown.
#include "clients/cpp/async_client.h"

#include <dirent.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/create_channel.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "clients/cpp/client.h"
#include "clients/cpp/task_context.h"
#include "clients/cpp/when.h"
#include "clients/cpp/worker.h"
#include "gtest/gtest.h"
#include "tests/memory_taskd.h"

namespace taskd {
namespace {

// Names of this process's threads, from /proc/self/task/*/comm.
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat("/proc/self/task/", entry->d_name, "/comm"));
    std::string name;
    std::getline(comm, name);
    names.push_back(std::move(name));
  }
  closedir(dir);
  return names;
}

int ThreadCount() { return static_cast<int>(ThreadNames().size()); }

// Threads that are not gRPC's runtime: gRPC's timer manager starts more of
// its own when timers pile up (seen under TSan), which is not the client's.
int NonGrpcThreadCount() {
  int n = 0;
  for (const std::string& name : ThreadNames()) {
    const bool grpc = absl::StartsWith(name, "grpc") ||
                      absl::StartsWith(name, "timer_manager") ||
                      absl::StartsWith(name, "default-executo") ||
                      absl::StartsWith(name, "resolver-execut") ||
                      absl::StartsWith(name, "event_engine");
    if (!grpc) ++n;
  }
  return n;
}

// Resident set size in KiB, from /proc/self/status.
long RssKib() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmRSS:") {
      long kib = 0;
      status >> kib;
      return kib;
    }
  }
  return -1;
}

// Polls `condition` (client-side state with no event of its own) until it
// holds, at most `limit`.
bool PollUntil(const std::function<bool()>& condition,
               absl::Duration limit = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + limit;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

v1::TaskSpec Spec(const std::string& queue, const std::string& type,
                  const std::string& payload = "") {
  v1::TaskSpec spec;
  spec.set_queue(queue);
  spec.set_type(type);
  spec.set_payload(payload);
  return spec;
}

class AsyncClientTest : public testing::MemoryTaskdTest {
 protected:
  static std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel(target(), grpc::InsecureChannelCredentials());
  }
};

TEST_F(AsyncClientTest, TenThousandOutstandingAwaitsOnAHandfulOfThreads) {
  constexpr int kTasks = 10000;
  const int threads_before = ThreadCount();
  // gRPC's own runtime threads start with the first channel of the process
  // (whatever client is used) and stop with the last one; one blocking RPC
  // on a plain stub, kept open, starts them, so what the AsyncTaskClient
  // adds is measured on its own.
  auto warm_stub = v1::TaskService::NewStub(Channel());
  {
    auto& stub = warm_stub;
    grpc::ClientContext context;
    v1::GetTaskRequest request;
    request.set_id("00000000000000000000000000");
    v1::Task task;
    stub->GetTask(&context, request, &task);  // NOT_FOUND: only warms up
  }
  const int threads_grpc = ThreadCount();
  const int own_threads_before = NonGrpcThreadCount();
  auto client = std::make_unique<AsyncTaskClient>(Channel());

  // Submit in batches of 1000 (the API's limit), all in flight at once.
  std::vector<std::string> ids;
  {
    std::vector<Future<std::vector<v1::Task>>> batches;
    for (int b = 0; b < kTasks / 1000; ++b) {
      std::vector<v1::TaskSpec> specs(1000, Spec("await-10k", "never-served"));
      batches.push_back(client->SubmitBatch(specs));
    }
    auto submitted = WhenAll(batches).Get(absl::Seconds(60));
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    for (const auto& batch : *submitted) {
      ASSERT_TRUE(batch.ok()) << batch.status();
      for (const v1::Task& task : *batch) ids.push_back(task.id());
    }
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kTasks));
  const long rss_before = RssKib();

  std::vector<Future<v1::Task>> awaits;
  awaits.reserve(ids.size());
  for (const std::string& id : ids) awaits.push_back(client->Await(id));
  Future<std::vector<absl::StatusOr<v1::Task>>> all = WhenAll(awaits);

  // Every await is carried by an Await RPC at the server.
  ASSERT_TRUE(PollUntil([&] {
    return client->await_stats().ids_in_flight == static_cast<size_t>(kTasks);
  })) << "ids in flight: " << client->await_stats().ids_in_flight;
  const AsyncTaskClient::AwaitStats stats = client->await_stats();
  const int threads_during = ThreadCount();
  const int own_threads_during = NonGrpcThreadCount();
  const long rss_during = RssKib();
  const std::string names = absl::StrJoin(ThreadNames(), ", ");
  std::printf(
      "10,000 outstanding awaits: %d threads in the process [%s]: %d of the "
      "test, %d of gRPC's runtime, %d added by the AsyncTaskClient; %zu Await "
      "RPCs in flight (%zu started so far); RSS +%ld KiB for the awaits\n",
      threads_during, names.c_str(), threads_before,
      threads_grpc - threads_before, own_threads_during - own_threads_before,
      stats.calls_in_flight, stats.calls_started, rss_during - rss_before);
  EXPECT_LE(own_threads_during - own_threads_before, 2);
  EXPECT_LE(threads_during - threads_before, 12);
  EXPECT_LE(stats.calls_in_flight, static_cast<size_t>(kTasks / 100 + 2));
  EXPECT_LT(rss_during - rss_before, 256 * 1024);
  EXPECT_FALSE(all.ready());
  int ready = 0;
  for (const auto& f : awaits) ready += f.ready() ? 1 : 0;
  EXPECT_EQ(ready, 0);

  // Release them all: cancel every task (10,000 Cancel RPCs in flight).
  std::vector<Future<v1::Task>> cancels;
  cancels.reserve(ids.size());
  for (const std::string& id : ids) cancels.push_back(client->Cancel(id, "release"));
  auto cancelled = WhenAll(cancels).Get(absl::Seconds(120));
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  for (const auto& c : *cancelled) ASSERT_TRUE(c.ok()) << c.status();

  auto results = all.Get(absl::Seconds(120));
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE((*results)[i].ok()) << i << ": " << (*results)[i].status();
    EXPECT_EQ((*results)[i]->id(), ids[i]);
    EXPECT_EQ((*results)[i]->state(), v1::TASK_STATE_CANCELLED);
  }
  EXPECT_EQ(client->await_stats().awaited_ids, 0u);
  std::printf("all 10,000 resolved; %zu Await RPCs started in all; %d threads "
              "after release\n",
              client->await_stats().calls_started, ThreadCount());
  client.reset();
}

// A coroutine that runs one task and checks where it resumed.
Future<std::string> RunOnce(AsyncTaskClient* client, v1::TaskSpec spec,
                            std::atomic<int>* resumed_on_cq) {
  absl::StatusOr<v1::Task> task = co_await client->SubmitAndAwait(spec);
  if (client->InCompletionThread()) ++*resumed_on_cq;
  if (!task.ok()) co_return task.status();
  co_return task->result();
}

TEST_F(AsyncClientTest, WorkerResultsReachFuturesAndCoroutines) {
  Worker::Options worker_options;
  worker_options.target = target();
  worker_options.queues = {"async-worker"};
  worker_options.concurrency = 8;
  Worker worker(worker_options);
  ASSERT_TRUE(worker
                  .RegisterHandler("twice",
                                   [](TaskContext& ctx)
                                       -> absl::StatusOr<std::string> {
                                     return ctx.payload() + ctx.payload();
                                   })
                  .ok());
  ASSERT_TRUE(worker.Start().ok());

  AsyncTaskClient client(Channel());
  std::atomic<int> resumed_on_cq{0};
  std::vector<Future<std::string>> runs;
  for (int i = 0; i < 200; ++i) {
    runs.push_back(RunOnce(&client,
                           Spec("async-worker", "twice", std::to_string(i)),
                           &resumed_on_cq));
  }
  auto results = WhenAll(runs).Get(absl::Seconds(60));
  ASSERT_TRUE(results.ok()) << results.status();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE((*results)[i].ok()) << (*results)[i].status();
    EXPECT_EQ(*(*results)[i], std::to_string(i) + std::to_string(i));
  }
  EXPECT_EQ(resumed_on_cq.load(), 200);

  // WhenAny over finished and pending tasks picks a finished one.
  auto pending = client.Submit(Spec("nobody-serves-this", "x")).Get();
  ASSERT_TRUE(pending.ok()) << pending.status();
  std::vector<Future<v1::Task>> mixed = {
      client.Await(pending->task().id()),
      client.SubmitAndAwait(Spec("async-worker", "twice", "z"))};
  auto first = WhenAny(mixed).Get(absl::Seconds(60));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(mixed[1].Get()->result(), "zz");
  EXPECT_FALSE(mixed[0].ready());
  worker.Stop();
}

// A one-thread executor; the destructor runs what is queued and joins.
class SerialExecutor {
 public:
  SerialExecutor() : thread_([this] { Loop(); }) {}
  ~SerialExecutor() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  Executor executor() {
    return [this](std::function<void()> fn) {
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(fn));
    };
  }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  void Loop() {
    while (true) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !queue_.empty() || stop_;
        };
        mu_.Await(absl::Condition(&has_work));
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

TEST_F(AsyncClientTest, ExecutorResumesCoroutines) {
  SerialExecutor executor;
  AsyncTaskClient::Options options;
  options.executor = executor.executor();
  AsyncTaskClient client(Channel(), options);
  auto submitted = client.Submit(Spec("executor", "x")).Get();
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  std::thread::id resumed_on;
  auto coro = [&](Future<v1::Task> f) -> Future<int> {
    co_await f;
    resumed_on = std::this_thread::get_id();
    co_return 1;
  };
  Future<int> done = coro(client.Await(submitted->task().id()));
  ASSERT_TRUE(client.Cancel(submitted->task().id()).Get().ok());
  ASSERT_TRUE(done.Get(absl::Seconds(30)).ok());
  EXPECT_EQ(resumed_on, executor.id());
}

TEST_F(AsyncClientTest, TimeoutsAndPerIdErrorsStayPerFuture) {
  AsyncTaskClient client(Channel());
  auto pending = client.Submit(Spec("errors", "x")).Get();
  ASSERT_TRUE(pending.ok()) << pending.status();
  auto done = client.Submit(Spec("errors", "x")).Get();
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_TRUE(client.Cancel(done->task().id()).Get().ok());

  // Added together, so they share a batch: the unknown id must fail alone.
  Future<v1::Task> timed = client.Await(pending->task().id(),
                                        absl::Milliseconds(200));
  Future<v1::Task> malformed = client.Await("no-such-task");
  Future<v1::Task> unknown = client.Await("00000000000000000000000000");
  Future<v1::Task> finished = client.Await(done->task().id());
  auto finished_task = finished.Get(absl::Seconds(30));
  ASSERT_TRUE(finished_task.ok()) << finished_task.status();
  EXPECT_EQ(finished_task->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(unknown.Get(absl::Seconds(30)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(malformed.Get(absl::Seconds(30)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(timed.Get(absl::Seconds(30)).status().code(),
            absl::StatusCode::kDeadlineExceeded);

  // The timed-out await left nothing behind; a new one still works.
  Future<v1::Task> again = client.Await(pending->task().id());
  ASSERT_TRUE(client.Cancel(pending->task().id()).Get().ok());
  auto again_task = again.Get(absl::Seconds(30));
  ASSERT_TRUE(again_task.ok()) << again_task.status();
  EXPECT_EQ(again_task->state(), v1::TASK_STATE_CANCELLED);
}

TEST_F(AsyncClientTest, ShutdownResolvesEverythingPending) {
  std::vector<Future<v1::Task>> awaits;
  Future<v1::Task> after;
  {
    AsyncTaskClient client(Channel());
    std::vector<v1::TaskSpec> specs(300, Spec("shutdown", "x"));
    auto tasks = client.SubmitBatch(specs).Get();
    ASSERT_TRUE(tasks.ok()) << tasks.status();
    for (const v1::Task& t : *tasks) awaits.push_back(client.Await(t.id()));
    ASSERT_TRUE(PollUntil(
        [&] { return client.await_stats().ids_in_flight == 300; }));
  }
  for (const auto& f : awaits) {
    ASSERT_TRUE(f.ready());
    EXPECT_EQ(f.Get().status().code(), absl::StatusCode::kCancelled);
  }
}

TEST_F(AsyncClientTest, LastOwnerMayLetGoOnTheCompletionThread) {
  auto client = std::make_shared<AsyncTaskClient>(Channel());
  absl::Notification released;
  auto submitted = client->Submit(Spec("let-go", "x"));
  // The continuation holds the last reference and drops it on the CQ thread.
  submitted.Then([client = std::move(client), &released](
                     const absl::StatusOr<v1::SubmitTaskResponse>&) mutable {
    client.reset();
    released.Notify();
  });
  ASSERT_TRUE(released.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST_F(AsyncClientTest, BlockingClientRefusesToDeadlockItsOwnThread) {
  TaskClient client(Channel());
  absl::Notification checked;
  absl::StatusCode code = absl::StatusCode::kOk;
  client.async().Submit(Spec("blocking", "x")).Then(
      [&](const absl::StatusOr<v1::SubmitTaskResponse>& r) {
        code = client.Get(r->task().id()).status().code();
        checked.Notify();
      });
  ASSERT_TRUE(checked.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(code, absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace taskd
