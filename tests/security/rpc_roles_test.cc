// Every RPC x every role through the real auth processor and handlers
// (tokens over loopback), asserting the exact status code; then tokens
// scoped to queues, in and out of their scope. Prints the matrix.
#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/connection.h"
#include "gtest/gtest.h"
#include "services/auth/token_hash.h"
#include "services/metrics/http_get.h"
#include "tests/security/security_test_util.h"

namespace taskd::testing {
namespace {

using grpc::StatusCode;
using Code = StatusCode;

const char* CodeName(StatusCode code) {
  switch (code) {
    case Code::OK: return "OK";
    case Code::NOT_FOUND: return "NOT_FOUND";
    case Code::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case Code::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case Code::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case Code::UNAVAILABLE: return "UNAVAILABLE";
    default: return "OTHER";
  }
}

// The channel and stubs of one caller.
struct Caller {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::TaskService::Stub> tasks;
  std::unique_ptr<v1::WorkerService::Stub> workers;
  std::unique_ptr<v1::QueueService::Stub> queues;
  std::unique_ptr<v1::ScheduleService::Stub> schedules;
};

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return context;
}

// Fixtures the calls refer to (made by the admin before the table runs).
struct Fixtures {
  std::string images_task;   // pending, queue images
  std::string billing_task;  // pending, queue billing
  std::string done_task;     // cancelled, queue images
};

StatusCode Health(Caller& c, const Fixtures&) {
  grpc::GenericStub stub(c.channel);
  auto context = Context();
  grpc::Slice empty("");  // an empty HealthCheckRequest
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(context.get(),
                                    "/grpc.health.v1.Health/Check", request,
                                    &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  return status.error_code();
}

// A Work stream: hello for `queues`, half-close, read to the end.
StatusCode Work(Caller& c, std::vector<std::string> queues) {
  auto context = Context();
  auto stream = c.workers->Work(context.get());
  v1::WorkRequest hello;
  hello.mutable_hello()->set_worker_id("w");
  for (const auto& q : queues) hello.mutable_hello()->add_queues(q);
  stream->Write(hello);
  stream->WritesDone();
  v1::WorkResponse response;
  for (int i = 0; i < 100 && stream->Read(&response); ++i) {
  }
  return stream->Finish().error_code();
}

StatusCode StreamIds(Caller& c, const std::vector<std::string>& ids,
                     const std::string& queue) {
  auto context = Context();
  v1::StreamRequest request;
  for (const auto& id : ids) request.add_ids(id);
  request.set_queue(queue);
  auto reader = c.tasks->Stream(context.get(), request);
  v1::TaskEvent event;
  for (int i = 0; i < 100 && reader->Read(&event); ++i) {
  }
  return reader->Finish().error_code();
}

StatusCode SubmitTo(Caller& c, const std::string& queue) {
  auto context = Context();
  v1::SubmitTaskRequest request;
  request.mutable_task()->set_type("t");
  request.mutable_task()->set_queue(queue);
  v1::SubmitTaskResponse response;
  return c.tasks->SubmitTask(context.get(), request, &response).error_code();
}

StatusCode GetTask(Caller& c, const std::string& id) {
  auto context = Context();
  v1::GetTaskRequest request;
  request.set_id(id);
  v1::Task task;
  return c.tasks->GetTask(context.get(), request, &task).error_code();
}

StatusCode AwaitTask(Caller& c, const std::string& id) {
  auto context = Context();
  v1::AwaitRequest request;
  request.add_ids(id);
  request.mutable_timeout()->set_nanos(10'000'000);
  v1::AwaitResponse response;
  return c.tasks->Await(context.get(), request, &response).error_code();
}

StatusCode CancelTask(Caller& c, const std::string& id) {
  auto context = Context();
  v1::CancelRequest request;
  request.set_id(id);
  v1::Task task;
  return c.tasks->Cancel(context.get(), request, &task).error_code();
}

StatusCode ListTasks(Caller& c, const std::string& queue) {
  auto context = Context();
  v1::ListTasksRequest request;
  request.set_queue(queue);
  v1::ListTasksResponse response;
  return c.tasks->ListTasks(context.get(), request, &response).error_code();
}

StatusCode PauseQueue(Caller& c, const std::string& queue) {
  auto context = Context();
  v1::PauseQueueRequest request;
  request.set_queue(queue);
  v1::Queue response;
  return c.queues->PauseQueue(context.get(), request, &response).error_code();
}

StatusCode CreateSchedule(Caller& c, const std::string& id,
                          const std::string& queue) {
  auto context = Context();
  v1::CreateScheduleRequest request;
  request.mutable_schedule()->set_id(id);
  request.mutable_schedule()->mutable_interval()->set_seconds(3600);
  request.mutable_schedule()->mutable_template_()->set_type("t");
  request.mutable_schedule()->mutable_template_()->set_queue(queue);
  v1::Schedule response;
  return c.schedules->CreateSchedule(context.get(), request, &response)
      .error_code();
}

template <class Request>
Request WithQueue(const std::string& queue) {
  Request r;
  r.set_queue(queue);
  return r;
}
template <class Request>
Request WithId(const std::string& id) {
  Request r;
  r.set_id(id);
  return r;
}

struct Rpc {
  std::string name;
  // "open", "submit", "read", "work" or "admin": what the caller needs.
  std::string role;
  // What a caller with the role gets (the handler's own answer).
  StatusCode allowed;
  std::function<StatusCode(Caller&, const Fixtures&)> call;
};

std::vector<Rpc> AllRpcs() {
  int n = 0;
  auto unique = [&n] { return absl::StrCat("s", ++n); };
  return {
      {"Health.Check", "open", Code::OK, Health},
      {"TaskService.SubmitTask", "submit", Code::OK,
       [](Caller& c, const Fixtures&) { return SubmitTo(c, "images"); }},
      {"TaskService.SubmitTasks", "submit", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::SubmitTasksRequest request;
         request.add_tasks()->set_type("t");
         v1::SubmitTasksResponse response;
         return c.tasks->SubmitTasks(context.get(), request, &response)
             .error_code();
       }},
      {"TaskService.Cancel", "submit", Code::OK,
       [](Caller& c, const Fixtures& f) {
         return CancelTask(c, f.done_task);
       }},
      {"TaskService.GetTask", "read", Code::OK,
       [](Caller& c, const Fixtures& f) { return GetTask(c, f.images_task); }},
      {"TaskService.ListTasks", "read", Code::OK,
       [](Caller& c, const Fixtures&) { return ListTasks(c, "images"); }},
      {"TaskService.Await", "read", Code::OK,
       [](Caller& c, const Fixtures& f) {
         return AwaitTask(c, f.images_task);
       }},
      {"TaskService.Stream", "read", Code::OK,
       [](Caller& c, const Fixtures& f) {
         return StreamIds(c, {f.done_task}, "");
       }},
      {"WorkerService.Work", "work", Code::OK,
       [](Caller& c, const Fixtures&) { return Work(c, {"images"}); }},
      {"QueueService.ListQueues", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::ListQueuesResponse response;
         return c.queues
             ->ListQueues(context.get(), v1::ListQueuesRequest(), &response)
             .error_code();
       }},
      {"QueueService.GetQueue", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::Queue response;
         return c.queues
             ->GetQueue(context.get(), WithQueue<v1::GetQueueRequest>("images"),
                        &response)
             .error_code();
       }},
      {"QueueService.PauseQueue", "admin", Code::OK,
       [](Caller& c, const Fixtures&) { return PauseQueue(c, "images"); }},
      {"QueueService.ResumeQueue", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::Queue response;
         return c.queues
             ->ResumeQueue(context.get(),
                           WithQueue<v1::ResumeQueueRequest>("images"),
                           &response)
             .error_code();
       }},
      {"QueueService.PurgeQueue", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::PurgeQueueResponse response;
         return c.queues
             ->PurgeQueue(context.get(),
                          WithQueue<v1::PurgeQueueRequest>("scratch"),
                          &response)
             .error_code();
       }},
      {"QueueService.UpdateQueue", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         auto request = WithQueue<v1::UpdateQueueRequest>("images");
         request.set_max_concurrency(100);
         v1::Queue response;
         return c.queues->UpdateQueue(context.get(), request, &response)
             .error_code();
       }},
      {"ScheduleService.CreateSchedule", "admin", Code::OK,
       [unique](Caller& c, const Fixtures&) mutable {
         return CreateSchedule(c, unique(), "images");
       }},
      {"ScheduleService.GetSchedule", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::Schedule response;
         return c.schedules
             ->GetSchedule(context.get(),
                           WithId<v1::GetScheduleRequest>("fixed"), &response)
             .error_code();
       }},
      {"ScheduleService.ListSchedules", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::ListSchedulesResponse response;
         return c.schedules
             ->ListSchedules(context.get(), v1::ListSchedulesRequest(),
                             &response)
             .error_code();
       }},
      {"ScheduleService.PauseSchedule", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::Schedule response;
         return c.schedules
             ->PauseSchedule(context.get(),
                             WithId<v1::PauseScheduleRequest>("fixed"),
                             &response)
             .error_code();
       }},
      {"ScheduleService.ResumeSchedule", "admin", Code::OK,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::Schedule response;
         return c.schedules
             ->ResumeSchedule(context.get(),
                              WithId<v1::ResumeScheduleRequest>("fixed"),
                              &response)
             .error_code();
       }},
      {"ScheduleService.DeleteSchedule", "admin", Code::NOT_FOUND,
       [](Caller& c, const Fixtures&) {
         auto context = Context();
         v1::DeleteScheduleResponse response;
         return c.schedules
             ->DeleteSchedule(context.get(),
                              WithId<v1::DeleteScheduleRequest>("missing"),
                              &response)
             .error_code();
       }},
  };
}

class RpcRolesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    tokens_path_ = absl::StrCat(tmp ? tmp : "/tmp", "/tokens.txt");
    std::string file = "# name roles [queues]\n";
    for (const auto& [name, line] : std::vector<std::pair<std::string,
                                                         std::string>>{
             {"submit", "submit"},
             {"read", "read"},
             {"work", "work"},
             {"admin", "admin"},
             {"read-images", "read queues=images"},
             {"work-images", "work queues=images"},
             {"submit-build", "submit queues=build-*"},
             {"admin-images", "admin queues=images"},
         }) {
      absl::StrAppend(&file, auth::HashLine("tok-" + name), " ", name, " ",
                      line, "\n");
    }
    ReplaceFile(tokens_path_, file);
    auth::SecurityOptions security;
    security.auth_tokens = tokens_path_;
    security.on_denied = [this](absl::string_view reason) {
      absl::MutexLock lock(&mu_);
      ++denied_[std::string(reason)];
    };
    // /metrics only where it is checked: stopping its listener takes ~2 s.
    const bool metrics = std::string(::testing::UnitTest::GetInstance()
                                         ->current_test_info()
                                         ->name()) == "EveryRpcTimesEveryRole";
    server_ = StartSecureServer(security, "127.0.0.1:0",
                                metrics ? "127.0.0.1:0" : "");
    ASSERT_NE(server_, nullptr);
    EXPECT_EQ(server_->security_summary(),
              absl::StrCat("plain TCP, loopback peers only, tokens from ",
                           tokens_path_));

    Caller admin = Connect("tok-admin");
    auto submit = [&](const std::string& queue) {
      auto context = Context();
      v1::SubmitTaskRequest request;
      request.mutable_task()->set_type("t");
      request.mutable_task()->set_queue(queue);
      v1::SubmitTaskResponse response;
      EXPECT_TRUE(
          admin.tasks->SubmitTask(context.get(), request, &response).ok());
      return response.task().id();
    };
    fixtures_.images_task = submit("images");
    fixtures_.billing_task = submit("billing");
    fixtures_.done_task = submit("images");
    submit("scratch");
    ASSERT_EQ(CancelTask(admin, fixtures_.done_task), Code::OK);
    ASSERT_EQ(CreateSchedule(admin, "fixed", "images"), Code::OK);
  }

  // A caller with `token` ("" for none).
  Caller Connect(const std::string& token) {
    ChannelSecurity security;
    security.token = token;
    Caller c;
    c.channel =
        *NewChannel(absl::StrCat("127.0.0.1:", server_->port()), security);
    c.tasks = v1::TaskService::NewStub(c.channel);
    c.workers = v1::WorkerService::NewStub(c.channel);
    c.queues = v1::QueueService::NewStub(c.channel);
    c.schedules = v1::ScheduleService::NewStub(c.channel);
    return c;
  }

  std::string tokens_path_;
  // on_denied runs on the server's threads: declared before server_, so the
  // server (and its threads) go before the mutex and map it writes to.
  absl::Mutex mu_;
  std::map<std::string, int> denied_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<TaskdServer> server_;
  Fixtures fixtures_;
};

TEST_F(RpcRolesTest, EveryRpcTimesEveryRole) {
  const std::vector<std::string> callers = {"none", "unknown", "submit",
                                            "read", "work", "admin"};
  std::map<std::string, Caller> connected;
  for (const std::string& who : callers) {
    connected[who] = Connect(who == "none"      ? ""
                             : who == "unknown" ? "tdk_not-a-known-token"
                                                : "tok-" + who);
  }
  std::string table = absl::StrCat("\n", std::string(32, ' '));
  for (const auto& who : callers) absl::StrAppendFormat(&table, "%-18s", who);
  table += "\n";
  int checked = 0;
  for (const Rpc& rpc : AllRpcs()) {
    absl::StrAppendFormat(&table, "%-32s", rpc.name);
    for (const std::string& who : callers) {
      StatusCode want;
      if (rpc.role == "open") {
        want = rpc.allowed;
      } else if (who == "none" || who == "unknown") {
        want = Code::UNAUTHENTICATED;
      } else if (who == rpc.role || who == "admin") {
        want = rpc.allowed;
      } else {
        want = Code::PERMISSION_DENIED;
      }
      StatusCode got = rpc.call(connected[who], fixtures_);
      EXPECT_EQ(got, want) << rpc.name << " as " << who << ": got "
                           << CodeName(got) << ", want " << CodeName(want);
      absl::StrAppendFormat(&table, "%-18s", CodeName(got));
      ++checked;
    }
    table += "\n";
  }
  std::printf("%s", table.c_str());
  EXPECT_EQ(checked, 21 * 6);
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(denied_["missing_token"], 20);
  EXPECT_EQ(denied_["unknown_token"], 20);
  const int missing_role = denied_["missing_role"];
  // submit lacks 4 read + 1 work + 12 admin RPCs, read 3 + 1 + 12, work
  // 3 + 4 + 12; admin lacks none.
  EXPECT_EQ(missing_role, 17 + 16 + 19);
  absl::StatusOr<std::string> scrape =
      taskd::metrics::testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_TRUE(scrape.ok()) << scrape.status();
  for (const std::string& line :
       {std::string("taskd_auth_denied_total{reason=\"missing_token\"} 20"),
        std::string("taskd_auth_denied_total{reason=\"unknown_token\"} 20"),
        absl::StrCat("taskd_auth_denied_total{reason=\"missing_role\"} ",
                     missing_role)}) {
    EXPECT_NE(scrape->find(line), std::string::npos) << line;
  }
  for (const char* token : {"tok-admin", "tok-submit", "tok-read"}) {
    EXPECT_EQ(scrape->find(token), std::string::npos);
  }
}

TEST_F(RpcRolesTest, ReadTokenScopedToAQueueSeesOnlyItsTasks) {
  Caller c = Connect("tok-read-images");
  EXPECT_EQ(GetTask(c, fixtures_.images_task), Code::OK);
  EXPECT_EQ(GetTask(c, fixtures_.billing_task), Code::NOT_FOUND);
  EXPECT_EQ(AwaitTask(c, fixtures_.images_task), Code::OK);
  EXPECT_EQ(AwaitTask(c, fixtures_.billing_task), Code::NOT_FOUND);
  EXPECT_EQ(ListTasks(c, "images"), Code::OK);
  EXPECT_EQ(ListTasks(c, "billing"), Code::PERMISSION_DENIED);
  EXPECT_EQ(ListTasks(c, ""), Code::PERMISSION_DENIED);
  EXPECT_EQ(StreamIds(c, {fixtures_.done_task}, ""), Code::OK);
  EXPECT_EQ(StreamIds(c, {fixtures_.billing_task}, ""), Code::NOT_FOUND);
  EXPECT_EQ(StreamIds(c, {}, "billing"), Code::PERMISSION_DENIED);
  EXPECT_EQ(StreamIds(c, {}, ""), Code::PERMISSION_DENIED);
  EXPECT_EQ(SubmitTo(c, "images"), Code::PERMISSION_DENIED);  // no role
}

TEST_F(RpcRolesTest, WorkerTokenScopedToAQueueServesOnlyIt) {
  Caller c = Connect("tok-work-images");
  EXPECT_EQ(Work(c, {"images"}), Code::OK);
  EXPECT_EQ(Work(c, {"billing"}), Code::PERMISSION_DENIED);
  EXPECT_EQ(Work(c, {"images", "billing"}), Code::PERMISSION_DENIED);
  EXPECT_EQ(Work(c, {}), Code::PERMISSION_DENIED);  // the default queue
}

TEST_F(RpcRolesTest, SubmitTokenScopedToAPattern) {
  Caller c = Connect("tok-submit-build");
  EXPECT_EQ(SubmitTo(c, "build-linux"), Code::OK);
  EXPECT_EQ(SubmitTo(c, "images"), Code::PERMISSION_DENIED);
  EXPECT_EQ(SubmitTo(c, ""), Code::PERMISSION_DENIED);
  EXPECT_EQ(CancelTask(c, fixtures_.images_task), Code::NOT_FOUND);
  auto context = Context();
  v1::SubmitTasksRequest batch;
  batch.add_tasks()->set_queue("build-a");
  batch.mutable_tasks(0)->set_type("t");
  batch.add_tasks()->set_queue("images");
  batch.mutable_tasks(1)->set_type("t");
  v1::SubmitTasksResponse response;
  grpc::Status status = c.tasks->SubmitTasks(context.get(), batch, &response);
  EXPECT_EQ(status.error_code(), Code::PERMISSION_DENIED);
  EXPECT_NE(status.error_message().find("tasks[1].queue"), std::string::npos)
      << status.error_message();
}

TEST_F(RpcRolesTest, AdminTokenScopedToAQueue) {
  Caller c = Connect("tok-admin-images");
  EXPECT_EQ(PauseQueue(c, "images"), Code::OK);
  EXPECT_EQ(PauseQueue(c, "billing"), Code::PERMISSION_DENIED);
  EXPECT_EQ(CreateSchedule(c, "mine", "images"), Code::OK);
  EXPECT_EQ(CreateSchedule(c, "theirs", "billing"), Code::PERMISSION_DENIED);
  auto context = Context();
  v1::ListQueuesResponse queues;
  EXPECT_EQ(c.queues->ListQueues(context.get(), {}, &queues).error_code(),
            Code::PERMISSION_DENIED);  // spans every queue
  EXPECT_EQ(GetTask(c, fixtures_.billing_task), Code::NOT_FOUND);
  EXPECT_EQ(GetTask(c, fixtures_.images_task), Code::OK);
}

// Calls with different tokens on one connection (per-call credentials) are
// told apart: gRPC 1.51 hands the auth processor the connection's
// AuthContext, so an identity kept there would leak between calls.
TEST_F(RpcRolesTest, PerCallTokensOnOneConnectionAreKeptApart) {
  // One channel, no token of its own; local credentials carry call ones.
  auto channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server_->port()),
      grpc::experimental::LocalCredentials(LOCAL_TCP));
  auto tasks = v1::TaskService::NewStub(channel);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const bool scoped = t % 2 == 0;
      for (int i = 0; i < 50; ++i) {
        auto context = Context();
        context->set_credentials(grpc::AccessTokenCredentials(
            scoped ? "tok-read-images" : "tok-read"));
        v1::GetTaskRequest request;
        request.set_id(fixtures_.billing_task);
        v1::Task task;
        StatusCode got =
            tasks->GetTask(context.get(), request, &task).error_code();
        if (got != (scoped ? Code::NOT_FOUND : Code::OK)) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(RpcRolesTest, TokenIsNotVisibleAsMetadataAndBadSchemesAreRefused) {
  // A Basic credential is no bearer token.
  auto context = Context();
  context->AddMetadata("authorization", "Basic dG9rLWFkbWluOg==");
  grpc::GenericStub stub(Connect("").channel);
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(
      context.get(), "/taskd.v1.QueueService/ListQueues", request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  EXPECT_EQ(status.error_code(), Code::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message().find("dG9r"), std::string::npos);
}

}  // namespace
}  // namespace taskd::testing
