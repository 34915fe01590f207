// Await calls whose own timeout races the client's deadline or a client
// cancel. The server once freed the call while the engine was finishing it
// (use-after-free, seen under ASan); under the asan config this test fails
// on that defect, and in every build the server must answer every call and
// keep serving.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

using ::taskd::testing::StartServer;
using ::taskd::testing::Target;

struct PendingAwait {
  grpc::ClientContext ctx;
  v1::AwaitResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::AwaitResponse>> rpc;
};

TEST(AwaitRaceTest, TimeoutDeadlineAndCancelRacesAreAllAnswered) {
  auto server = StartServer();
  auto channel =
      grpc::CreateChannel(Target(*server), grpc::InsecureChannelCredentials());
  auto stub = v1::TaskService::NewStub(channel);

  // Many ids make the engine's answer slow to build, which widens the
  // window in which a racing client cancel used to free the call.
  v1::SubmitTasksRequest submit;
  for (int i = 0; i < 1000; ++i) submit.add_tasks()->set_type("never-runs");
  v1::SubmitTasksResponse submitted;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->SubmitTasks(&ctx, submit, &submitted).ok());
  }
  std::vector<std::string> ids;
  for (const auto& t : submitted.tasks()) ids.push_back(t.id());
  const std::string id = ids.front();

  // Bounded: kCalls calls, kInFlight at a time, each over within ~ms.
  constexpr int kCalls = 1500;
  constexpr int kInFlight = 64;
  grpc::CompletionQueue cq;
  int started = 0, answered = 0, timed_out_ok = 0, deadline = 0, cancelled = 0;
  auto start_one = [&](int i) {
    auto* call = new PendingAwait;
    // The server's own timeout and the client's deadline fall due together;
    // every third call is also cancelled by the client at once.
    const absl::Duration wait = absl::Milliseconds(1 + i % 3);
    call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + wait));
    v1::AwaitRequest request;
    for (const std::string& each : ids) request.add_ids(each);
    // The request reaches the server a little after the client started the
    // deadline's clock: shorten the server's timeout by 0..900 us so that
    // either side wins, in every proportion.
    const absl::Duration timeout = wait - absl::Microseconds(100 * (i % 10));
    request.mutable_timeout()->set_nanos(
        static_cast<int32_t>(absl::ToInt64Nanoseconds(timeout)));
    call->rpc = stub->AsyncAwait(&call->ctx, request, &cq);
    call->rpc->Finish(&call->response, &call->status, call);
    if (i % 3 == 0) call->ctx.TryCancel();
    ++started;
  };
  for (int i = 0; i < kInFlight && started < kCalls; ++i) start_one(started);
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (answered < kCalls && absl::Now() < give_up) {
    void* tag = nullptr;
    bool ok = false;
    auto next = cq.AsyncNext(&tag, &ok, absl::ToChronoTime(give_up));
    if (next != grpc::CompletionQueue::GOT_EVENT) break;
    std::unique_ptr<PendingAwait> call(static_cast<PendingAwait*>(tag));
    ++answered;
    switch (call->status.error_code()) {
      case grpc::StatusCode::OK:
        EXPECT_FALSE(call->response.done());
        ++timed_out_ok;
        break;
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        ++deadline;
        break;
      case grpc::StatusCode::CANCELLED:
        ++cancelled;
        break;
      default:
        ADD_FAILURE() << "unexpected status " << call->status.error_code()
                      << ": " << call->status.error_message();
    }
    if (started < kCalls) start_one(started);
  }
  EXPECT_EQ(answered, kCalls);
  std::printf("await races: %d answered (ok/done=false %d, deadline %d, "
              "cancelled %d)\n",
              answered, timed_out_ok, deadline, cancelled);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) delete static_cast<PendingAwait*>(tag);

  // The server is intact and forgot every withdrawn Await.
  v1::GetTaskRequest get;
  get.set_id(id);
  v1::Task task;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->GetTask(&ctx, get, &task).ok());
  EXPECT_EQ(task.state(), v1::TASK_STATE_PENDING);
  EXPECT_TRUE(testing::Eventually(
      [&] { return server->engine().pending_awaits() == 0; }));
}

}  // namespace
}  // namespace taskd
