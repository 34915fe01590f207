// SIGTERM against the real `services/taskd` binary (tests/taskd_process.h).
//
// IdleClientsDoNotHoldShutdown: with only idle clients connected — a
// channel idle after one call, a worker's Work stream with nothing to do, a
// Stream of events with nothing to send, an Await of a task nobody runs —
// taskd exits cleanly at once, far inside its --shutdown-grace of 30 s: the
// open calls are ended with UNAVAILABLE and the idle connection is closed
// by the server. The idle channel's client never reads its socket (the
// BUILD target turns gRPC's backup poller off, which would read it every
// 5 s), as a client that is paused or behind a dead network path would;
// taskd used to wait for such a client to answer its GOAWAY until the grace
// ran out.
//
// AcknowledgedSubmitsSurviveSigterm: clients keep submitting while taskd is
// stopped with SIGTERM (sync and async durability); every acknowledged task
// is there after a restart on the same data directory, and no call in
// flight is cut (each call is answered OK or refused UNAVAILABLE).
//
// Times are printed, not asserted: the only bound is an exit well before
// the grace, so a loaded machine cannot make the tests flaky.
#include <grpcpp/grpcpp.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/metrics/http_get.h"
#include "tests/taskd_process.h"

namespace taskd {
namespace {

using ::taskd::testing::DescribeWaitStatus;
using ::taskd::testing::FindTaskdBinary;
using ::taskd::testing::TaskdProcess;

constexpr char kGrace[] = "--shutdown-grace=30s";
// How long a SIGTERM may take before the test fails: a bound far below the
// grace, not a measurement.
constexpr absl::Duration kExitBound = absl::Seconds(10);
// No wait of this test is longer.
constexpr absl::Duration kWaitLimit = absl::Seconds(30);

absl::StatusOr<std::unique_ptr<TaskdProcess>> StartTaskd(
    std::vector<std::string> flags, const std::string& name = "taskd") {
  absl::StatusOr<std::string> binary = FindTaskdBinary("", "");
  if (!binary.ok()) return binary.status();
  TaskdProcess::Options options;
  options.binary = *binary;
  options.flags = {"--listen=127.0.0.1:0", "--threads=2", kGrace};
  options.flags.insert(options.flags.end(), flags.begin(), flags.end());
  options.name = name;
  options.echo_stderr = true;
  options.exit_limit = kExitBound;
  return TaskdProcess::Start(std::move(options));
}

// A channel on a connection of its own (gRPC shares connections between
// channels with the same arguments otherwise).
std::shared_ptr<grpc::Channel> OwnConnection(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

// The port of "taskd: metrics on ... (port N)", which taskd logs right
// after the line Start() waits for; 0 if it does not come.
int MetricsPort(const TaskdProcess& server) {
  const absl::Time deadline = absl::Now() + kWaitLimit;
  while (absl::Now() < deadline) {
    const std::string line = server.LastLineContaining("metrics on");
    const size_t at = line.rfind("(port ");
    int port = 0;
    if (at != std::string::npos &&
        absl::SimpleAtoi(absl::StripSuffix(line.substr(at + 6), ")"), &port)) {
      return port;
    }
    absl::SleepFor(absl::Milliseconds(5));  // a log line has no event
  }
  return 0;
}

// Scrapes until every series has its value (e.g. {"taskd_awaits", 1}).
bool WaitForSeries(int metrics_port,
                   const absl::flat_hash_map<std::string, double>& wanted) {
  const absl::Time deadline = absl::Now() + kWaitLimit;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> text =
        metrics::testing::HttpGet(metrics_port, "/metrics");
    if (!text.ok()) return false;
    size_t matched = 0;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      for (const auto& [series, value] : wanted) {
        double v;
        if (absl::ConsumePrefix(&line, series + " ") &&
            absl::SimpleAtod(line, &v) && v == value) {
          ++matched;
        }
      }
    }
    if (matched == wanted.size()) return true;
  }
  return false;
}

// One call held open on a thread of its own; its status once it ended.
class OpenCall {
 public:
  explicit OpenCall(std::function<grpc::Status(grpc::ClientContext*)> run)
      : thread_([this, run = std::move(run)] {
          context_.set_deadline(absl::ToChronoTime(absl::Now() + kWaitLimit));
          status_ = run(&context_);
          ended_.Notify();
        }) {}
  ~OpenCall() {
    if (!ended_.WaitForNotificationWithTimeout(kWaitLimit)) {
      context_.TryCancel();
    }
    thread_.join();
  }

  // The call's status once it ended; DEADLINE_EXCEEDED (ours) if it did not
  // within kWaitLimit.
  grpc::Status Ended() {
    if (!ended_.WaitForNotificationWithTimeout(kWaitLimit)) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          "the call did not end");
    }
    return status_;
  }

 private:
  grpc::ClientContext context_;
  grpc::Status status_;
  absl::Notification ended_;
  std::thread thread_;  // last: started once the rest exists
};

// N of "taskd: recovered N tasks (...)"; -1 if `line` is not that.
int64_t RecoveredTasks(absl::string_view line) {
  const size_t at = line.find("recovered ");
  if (at == absl::string_view::npos) return -1;
  line.remove_prefix(at + 10);
  int64_t n = -1;
  return absl::SimpleAtoi(line.substr(0, line.find(' ')), &n) ? n : -1;
}

v1::TaskSpec Spec(const std::string& queue, const std::string& type) {
  v1::TaskSpec spec;
  spec.set_queue(queue);
  spec.set_type(type);
  return spec;
}

TEST(ShutdownTest, IdleClientsDoNotHoldShutdown) {
  auto server = StartTaskd(
      {"--durability=memory", "--metrics-listen=127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.status();
  const int metrics_port = MetricsPort(**server);
  ASSERT_GT(metrics_port, 0);
  const std::string target = (*server)->target();

  // An idle channel: one call, then nothing.
  auto idle = OwnConnection(target);
  std::string waiting_id;
  {
    grpc::ClientContext ctx;
    v1::SubmitTaskRequest request;
    *request.mutable_task() = Spec("nobody-serves", "never-runs");
    v1::SubmitTaskResponse response;
    grpc::Status s =
        v1::TaskService::NewStub(idle)->SubmitTask(&ctx, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    waiting_id = response.task().id();
  }

  // An Await of that task, which no worker serves.
  auto await_channel = OwnConnection(target);
  OpenCall await([&](grpc::ClientContext* ctx) {
    v1::AwaitRequest request;
    request.add_ids(waiting_id);
    v1::AwaitResponse response;
    return v1::TaskService::NewStub(await_channel)
        ->Await(ctx, request, &response);
  });

  // A Stream of the events of a queue where nothing happens.
  auto stream_channel = OwnConnection(target);
  OpenCall stream([&](grpc::ClientContext* ctx) {
    v1::StreamRequest request;
    request.set_queue("quiet");
    auto reader = v1::TaskService::NewStub(stream_channel)->Stream(ctx, request);
    v1::TaskEvent event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  });

  // A worker with nothing to do.
  auto work_channel = OwnConnection(target);
  OpenCall work([&](grpc::ClientContext* ctx) {
    auto stream = v1::WorkerService::NewStub(work_channel)->Work(ctx);
    v1::WorkRequest hello;
    hello.mutable_hello()->set_worker_id("idle-worker");
    hello.mutable_hello()->add_queues("idle");
    hello.mutable_hello()->set_concurrency(4);
    if (stream->Write(hello)) {
      v1::WorkResponse message;
      while (stream->Read(&message)) {
      }
    }
    return stream->Finish();
  });

  ASSERT_TRUE(WaitForSeries(metrics_port, {{"taskd_awaits", 1},
                                           {"taskd_streams", 1},
                                           {"taskd_workers{queue=\"idle\"}", 1}}))
      << "the Await, Stream and Work calls did not all reach the server";

  const absl::Time sent = absl::Now();
  absl::StatusOr<int> exit_status = (*server)->Kill(SIGTERM);
  const absl::Duration took = absl::Now() - sent;
  std::fprintf(stderr,
               "shutdown_test: SIGTERM to exit with idle clients (idle "
               "channel, Await, Stream, Work): %s (grace 30s)\n",
               absl::FormatDuration(took).c_str());
  ASSERT_TRUE(exit_status.ok())
      << exit_status.status() << " (SIGTERM with only idle clients)";
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << DescribeWaitStatus(*exit_status);

  const std::pair<const char*, OpenCall*> calls[] = {
      {"Await", &await}, {"Stream", &stream}, {"Work", &work}};
  for (const auto& [name, call] : calls) {
    grpc::Status s = call->Ended();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE)
        << name << ": " << s.error_message();
  }
}

// Submits from `threads` threads, each until one of its calls fails;
// keeps what was acknowledged and how each thread's last call ended.
class Submitters {
 public:
  Submitters(const std::string& target, int threads) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, channel = OwnConnection(target), i] {
        Run(v1::TaskService::NewStub(channel), i);
      });
    }
  }
  ~Submitters() { Join(); }

  // Waits until `n` submits were acknowledged; false after kWaitLimit.
  bool WaitAcked(size_t n) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    wanted_ = n;
    return mu_.AwaitWithTimeout(
        absl::Condition(this, &Submitters::EnoughLocked), kWaitLimit);
  }

  // Waits for every thread (each ends with a failed call).
  void Join() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  std::vector<std::string> acked() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  std::vector<grpc::Status> ended() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  void Run(std::unique_ptr<v1::TaskService::Stub> stub, int thread) {
    for (int i = 0;; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWaitLimit));
      v1::SubmitTaskRequest request;
      *request.mutable_task() =
          Spec("sigterm", absl::StrCat("t", thread, "-", i));
      request.mutable_task()->set_payload(std::string(256, 'p'));
      v1::SubmitTaskResponse response;
      grpc::Status s = stub->SubmitTask(&ctx, request, &response);
      absl::MutexLock lock(&mu_);
      if (!s.ok()) {
        ended_.push_back(s);
        return;
      }
      acked_.push_back(response.task().id());
    }
  }

  bool EnoughLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return acked_.size() >= wanted_;
  }

  mutable absl::Mutex mu_;
  size_t wanted_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> acked_ ABSL_GUARDED_BY(mu_);
  std::vector<grpc::Status> ended_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;  // last: started once the rest exists
};

class DurableShutdownTest : public ::testing::TestWithParam<const char*> {};

TEST_P(DurableShutdownTest, AcknowledgedSubmitsSurviveSigterm) {
  const std::string mode = GetParam();
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/sigterm-", mode);
  const std::vector<std::string> flags = {
      absl::StrCat("--durability=", mode), absl::StrCat("--data-dir=", dir),
      "--metrics-listen="};
  auto server = StartTaskd(flags, absl::StrCat("taskd-", mode));
  ASSERT_TRUE(server.ok()) << server.status();

  Submitters submitters((*server)->target(), 8);
  ASSERT_TRUE(submitters.WaitAcked(200));
  const absl::Time sent = absl::Now();
  const size_t acked_before = submitters.acked().size();
  absl::StatusOr<int> exit_status = (*server)->Kill(SIGTERM);
  const absl::Duration took = absl::Now() - sent;
  submitters.Join();
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << DescribeWaitStatus(*exit_status);
  const std::vector<std::string> acked = submitters.acked();
  const std::vector<grpc::Status> ended = submitters.ended();
  const size_t cancelled = std::count_if(
      ended.begin(), ended.end(), [](const grpc::Status& s) {
        return s.error_code() == grpc::StatusCode::CANCELLED;
      });
  std::fprintf(stderr,
               "shutdown_test: %s: SIGTERM to exit with 8 clients submitting: "
               "%s; %zu submits acknowledged, %zu of them after the SIGTERM "
               "was sent; of the 8 calls refused, %zu CANCELLED\n",
               mode.c_str(), absl::FormatDuration(took).c_str(), acked.size(),
               acked.size() - acked_before, cancelled);
  // The calls that failed were refused: UNAVAILABLE, or CANCELLED for one
  // that reached the server after it stopped taking calls (gRPC's answer).
  for (const grpc::Status& s : ended) {
    EXPECT_TRUE(s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                s.error_code() == grpc::StatusCode::CANCELLED)
        << s.error_code() << ": " << s.error_message();
  }

  server = StartTaskd(flags, absl::StrCat("taskd-", mode, "-restarted"));
  ASSERT_TRUE(server.ok()) << server.status();
  // A call the server took was answered, not cut off: every task it made
  // was acknowledged (taskd logs "recovered N tasks" before it serves).
  const std::string recovered = (*server)->LastLineContaining("recovered ");
  const int64_t tasks = RecoveredTasks(recovered);
  EXPECT_EQ(tasks, static_cast<int64_t>(acked.size())) << recovered;
  auto stub = v1::TaskService::NewStub(OwnConnection((*server)->target()));
  size_t lost = 0;
  for (const std::string& id : acked) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWaitLimit));
    v1::GetTaskRequest request;
    request.set_id(id);
    v1::Task task;
    grpc::Status s = stub->GetTask(&ctx, request, &task);
    if (!s.ok()) {
      ++lost;
      ADD_FAILURE() << "acknowledged task " << id << " after a restart: "
                    << s.error_message();
      if (lost > 5) break;
    }
  }
  EXPECT_EQ(lost, 0u);
}

INSTANTIATE_TEST_SUITE_P(Modes, DurableShutdownTest,
                         ::testing::Values("sync", "async"));

}  // namespace
}  // namespace taskd
