// A broken worker cannot take down its own stream (issue 10, defects 3-4):
// text that is not UTF-8 and results beyond the server's limit fail only the
// task that produced them; the same worker goes on serving.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "api/strings/utf8.h"
#include "clients/cpp/client.h"
#include "clients/cpp/task_failure.h"
#include "clients/cpp/worker.h"
#include "gtest/gtest.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

using ::taskd::testing::StartServer;
using ::taskd::testing::Target;

v1::TaskSpec Spec(const std::string& type, const std::string& payload = "") {
  v1::TaskSpec spec;
  spec.set_type(type);
  spec.set_payload(payload);
  spec.mutable_retry()->set_max_attempts(1);
  return spec;
}

class WorkerHardeningTest : public ::testing::Test {
 protected:
  void StartAll(int64_t max_payload_bytes = 1 << 20) {
    ServerOptions options;
    options.engine.limits.max_payload_bytes = max_payload_bytes;
    server_ = StartServer(options);
    client_ = std::make_unique<TaskClient>(Target(*server_));
    Worker::Options w;
    w.target = Target(*server_);
    w.concurrency = 2;
    w.worker_id = "hardening";
    worker_ = std::make_unique<Worker>(w);
    // "bad-text": fails with bytes that are not UTF-8 everywhere it can.
    ASSERT_TRUE(worker_
                    ->RegisterHandler("bad-text",
                                      [](TaskContext& ctx)
                                          -> absl::StatusOr<std::string> {
                                        ctx.ReportProgress(
                                               50, std::string(2000, '\xff'))
                                            .IgnoreError();
                                        return TaskFailure(
                                            "code\xc3", "stderr: \xff\xfe tail",
                                            false, std::string(20000, '\x80'));
                                      })
                    .ok());
    // "big": a result of the payload's length in bytes.
    ASSERT_TRUE(worker_
                    ->RegisterHandler("big",
                                      [](TaskContext& ctx)
                                          -> absl::StatusOr<std::string> {
                                        return std::string(
                                            std::stoul(ctx.payload()), 'r');
                                      })
                    .ok());
    ASSERT_TRUE(worker_
                    ->RegisterHandler("echo",
                                      [](TaskContext& ctx)
                                          -> absl::StatusOr<std::string> {
                                        return ctx.payload();
                                      })
                    .ok());
    ASSERT_TRUE(worker_->Start().ok());
    ASSERT_TRUE(worker_->WaitConnected(absl::Seconds(20)));
  }

  v1::Task Run(const v1::TaskSpec& spec) {
    auto submitted = client_->Submit(spec);
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    if (!submitted.ok()) return v1::Task();
    auto done = client_->Await({submitted->task().id()}, v1::AWAIT_MODE_ALL,
                               absl::Seconds(30));
    EXPECT_TRUE(done.ok()) << done.status();
    if (!done.ok() || done->tasks_size() != 1) return v1::Task();
    EXPECT_TRUE(done->done());
    return done->tasks(0);
  }

  // The worker still holds the stream it started with: a new task runs on it.
  void ExpectWorkerStillServes() {
    v1::Task t = Run(Spec("echo", "still here"));
    EXPECT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED);
    EXPECT_EQ(t.result(), "still here");
    EXPECT_EQ(t.worker_id(), "hardening");
  }

  std::unique_ptr<TaskdServer> server_;
  std::unique_ptr<TaskClient> client_;
  std::unique_ptr<Worker> worker_;
};

TEST_F(WorkerHardeningTest, TextThatIsNotUtf8FailsOnlyItsTask) {
  StartAll();
  v1::Task t = Run(Spec("bad-text"));
  EXPECT_EQ(t.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(t.attempt(), 1);  // not a lost lease: the worker's own failure
  EXPECT_TRUE(IsValidUtf8(t.error().code()));
  EXPECT_TRUE(absl::StartsWith(t.error().code(), "code"));
  EXPECT_TRUE(IsValidUtf8(t.error().message()));
  EXPECT_TRUE(absl::StrContains(t.error().message(), "stderr: "));
  EXPECT_TRUE(IsValidUtf8(t.error().details()));
  EXPECT_LE(t.error().details().size(), 16384u);
  ExpectWorkerStillServes();
}

TEST_F(WorkerHardeningTest, ResultBeyondTheAdvertisedLimitFailsOnlyItsTask) {
  // 64 KiB tasks: the server receives at most ~1.1 MiB per message, so a
  // 2 MiB result sent as is would end the stream.
  StartAll(64 << 10);
  v1::Task t = Run(Spec("big", std::to_string(2 << 20)));
  EXPECT_EQ(t.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(t.error().code(), "result_too_large");
  EXPECT_FALSE(t.error().retryable());
  EXPECT_EQ(t.attempt(), 1);
  // Just over the limit: the same clear failure.
  t = Run(Spec("big", std::to_string((64 << 10) + 1)));
  EXPECT_EQ(t.error().code(), "result_too_large");
  // At the limit: delivered.
  t = Run(Spec("big", std::to_string(64 << 10)));
  EXPECT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(t.result().size(), 64u << 10);
  ExpectWorkerStillServes();
}

}  // namespace
}  // namespace taskd
