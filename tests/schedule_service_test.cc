// ScheduleService through gRPC against a real taskd server: a schedule's
// firing submits a task; get/list/pause/resume/delete; status codes
// (ALREADY_EXISTS, INVALID_ARGUMENT naming the field, NOT_FOUND); schedules
// survive a restart in durable mode. Waits are bounded (gRPC deadlines).
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

using ::taskd::testing::Eventually;
using ::taskd::testing::StartServer;
using ::taskd::testing::Target;

std::chrono::system_clock::time_point In(int seconds) {
  return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
}

v1::Schedule Every(const std::string& id, int64_t seconds,
                   const std::string& queue = "beat") {
  v1::Schedule s;
  s.set_id(id);
  s.mutable_interval()->set_seconds(seconds);
  s.mutable_template_()->set_type("tick");
  s.mutable_template_()->set_queue(queue);
  return s;
}

class ScheduleServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Connect(StartServer(Options())); }

  virtual ServerOptions Options() { return {}; }

  void Connect(std::unique_ptr<TaskdServer> server) {
    server_ = std::move(server);
    auto channel = grpc::CreateChannel(Target(*server_),
                                       grpc::InsecureChannelCredentials());
    schedules_ = v1::ScheduleService::NewStub(channel);
    tasks_ = v1::TaskService::NewStub(channel);
  }

  grpc::Status Create(const v1::Schedule& schedule, v1::Schedule* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20));
    v1::CreateScheduleRequest request;
    *request.mutable_schedule() = schedule;
    return schedules_->CreateSchedule(&ctx, request, out);
  }
  grpc::Status Create(const v1::Schedule& schedule) {
    v1::Schedule out;
    return Create(schedule, &out);
  }
  grpc::Status Get(const std::string& id, v1::Schedule* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20));
    v1::GetScheduleRequest request;
    request.set_id(id);
    return schedules_->GetSchedule(&ctx, request, out);
  }
  grpc::Status Pause(const std::string& id, v1::Schedule* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20));
    v1::PauseScheduleRequest request;
    request.set_id(id);
    return schedules_->PauseSchedule(&ctx, request, out);
  }
  grpc::Status Resume(const std::string& id, v1::Schedule* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20));
    v1::ResumeScheduleRequest request;
    request.set_id(id);
    return schedules_->ResumeSchedule(&ctx, request, out);
  }
  grpc::Status Delete(const std::string& id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20));
    v1::DeleteScheduleRequest request;
    request.set_id(id);
    v1::DeleteScheduleResponse response;
    return schedules_->DeleteSchedule(&ctx, request, &response);
  }
  grpc::Status List(int page_size, const std::string& token,
                    v1::ListSchedulesResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(20));
    v1::ListSchedulesRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    return schedules_->ListSchedules(&ctx, request, out);
  }

  static void ExpectInvalid(const grpc::Status& status,
                            const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << field << ": " << status.error_message();
    EXPECT_TRUE(absl::StartsWith(status.error_message(), field))
        << "message \"" << status.error_message() << "\" should name "
        << field;
  }

  std::unique_ptr<TaskdServer> server_;
  std::unique_ptr<v1::ScheduleService::Stub> schedules_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
};

TEST_F(ScheduleServiceTest, FiringSubmitsATask) {
  v1::Schedule created;
  ASSERT_TRUE(Create(Every("every-second", 1), &created).ok());
  EXPECT_EQ(created.id(), "every-second");
  EXPECT_TRUE(created.has_next_fire_time());
  EXPECT_TRUE(created.has_create_time());

  // Replays the queue's events from the server's first one, so a firing
  // before the stream starts is seen too.
  grpc::ClientContext ctx;
  ctx.set_deadline(In(20));
  v1::StreamRequest request;
  request.set_queue("beat");
  request.set_from_sequence(1);
  auto stream = tasks_->Stream(&ctx, request);
  v1::TaskEvent event;
  ASSERT_TRUE(stream->Read(&event)) << "no task within the deadline";
  EXPECT_EQ(event.type(), v1::EVENT_TYPE_SUBMITTED);
  EXPECT_EQ(event.task().spec().type(), "tick");
  EXPECT_TRUE(absl::StartsWith(event.task().spec().idempotency_key(),
                               "schedule:every-second:"))
      << event.task().spec().idempotency_key();
  ctx.TryCancel();

  v1::Schedule got;
  ASSERT_TRUE(Eventually([&] {
    return Get("every-second", &got).ok() && !got.last_task_id().empty();
  }));
  EXPECT_TRUE(got.has_last_fire_time());
  ASSERT_TRUE(Delete("every-second").ok());
}

TEST_F(ScheduleServiceTest, GetListPauseResumeDelete) {
  for (const char* id : {"b", "a", "c"}) {
    ASSERT_TRUE(Create(Every(id, 3600)).ok());
  }
  v1::Schedule got;
  ASSERT_TRUE(Get("a", &got).ok());
  EXPECT_EQ(got.interval().seconds(), 3600);
  EXPECT_EQ(got.template_().type(), "tick");

  std::vector<std::string> ids;
  std::string token;
  int pages = 0;
  do {
    v1::ListSchedulesResponse page;
    ASSERT_TRUE(List(2, token, &page).ok());
    for (const auto& s : page.schedules()) ids.push_back(s.id());
    token = page.next_page_token();
  } while (!token.empty() && ++pages < 10);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c"}));

  v1::Schedule paused;
  ASSERT_TRUE(Pause("b", &paused).ok());
  EXPECT_TRUE(paused.paused());
  EXPECT_FALSE(paused.has_next_fire_time());
  v1::Schedule resumed;
  ASSERT_TRUE(Resume("b", &resumed).ok());
  EXPECT_FALSE(resumed.paused());
  EXPECT_TRUE(resumed.has_next_fire_time());

  ASSERT_TRUE(Delete("b").ok());
  EXPECT_EQ(Get("b", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Delete("b").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ScheduleServiceTest, StatusCodes) {
  ASSERT_TRUE(Create(Every("taken", 60)).ok());
  EXPECT_EQ(Create(Every("taken", 120)).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);

  v1::Schedule generated;
  ASSERT_TRUE(Create(Every("", 60), &generated).ok());
  EXPECT_FALSE(generated.id().empty());

  v1::Schedule out;
  for (const char* id : {"unknown", ""}) {
    EXPECT_EQ(Get(id, &out).error_code(), grpc::StatusCode::NOT_FOUND) << id;
    EXPECT_EQ(Pause(id, &out).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(Resume(id, &out).error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(Delete(id).error_code(), grpc::StatusCode::NOT_FOUND);
  }

  {
    grpc::ClientContext ctx;
    v1::CreateScheduleRequest request;  // no schedule at all
    ExpectInvalid(schedules_->CreateSchedule(&ctx, request, &out), "schedule");
  }
  v1::Schedule bad_cron = Every("x", 60);
  bad_cron.set_cron("* * *");
  ExpectInvalid(Create(bad_cron), "schedule.cron");
  bad_cron.set_cron("0 25 * * *");
  ExpectInvalid(Create(bad_cron), "schedule.cron: hour");

  v1::Schedule neither = Every("x", 60);
  neither.clear_interval();
  ExpectInvalid(Create(neither), "schedule.cron");

  // cron and interval are a oneof: a client cannot send both; setting one
  // clears the other, so the last one set is what the server sees.
  v1::Schedule both = Every("both", 60);
  both.set_cron("*/5 * * * *");
  EXPECT_FALSE(both.has_interval());
  ASSERT_TRUE(Create(both, &out).ok());
  EXPECT_EQ(out.cron(), "*/5 * * * *");

  ExpectInvalid(Create(Every("x", 0)), "schedule.interval");
  v1::Schedule negative = Every("x", 60);
  negative.mutable_interval()->set_seconds(-1);
  ExpectInvalid(Create(negative), "schedule.interval");

  v1::Schedule no_type = Every("x", 60);
  no_type.mutable_template_()->clear_type();
  ExpectInvalid(Create(no_type), "schedule.template.type");
  v1::Schedule keyed = Every("x", 60);
  keyed.mutable_template_()->set_idempotency_key("k");
  ExpectInvalid(Create(keyed), "schedule.template.idempotency_key");
  v1::Schedule delayed = Every("x", 60);
  delayed.mutable_template_()->mutable_delay()->set_seconds(5);
  ExpectInvalid(Create(delayed), "schedule.template.delay");
  v1::Schedule bad_id = Every("no spaces", 60);
  ExpectInvalid(Create(bad_id), "schedule.id");

  v1::ListSchedulesResponse page;
  ExpectInvalid(List(-1, "", &page), "page_size");
  EXPECT_EQ(Get("x", &out).error_code(), grpc::StatusCode::NOT_FOUND);
}

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

class DurableScheduleServiceTest : public ScheduleServiceTest {
 protected:
  ServerOptions Options() override {
    ServerOptions options;
    options.durability = "sync";
    options.data_dir =
        absl::StrCat(TempDir(), "/schedule-data-", ::getpid());
    return options;
  }
};

TEST_F(DurableScheduleServiceTest, SchedulesSurviveARestart) {
  v1::Schedule created;
  ASSERT_TRUE(Create(Every("nightly", 86400), &created).ok());
  v1::Schedule paused;
  ASSERT_TRUE(Create(Every("paused", 86400)).ok());
  ASSERT_TRUE(Pause("paused", &paused).ok());
  ASSERT_TRUE(Create(Every("deleted", 86400)).ok());
  ASSERT_TRUE(Delete("deleted").ok());

  server_->Shutdown();
  server_.reset();
  Connect(StartServer(Options()));

  v1::Schedule got;
  ASSERT_TRUE(Get("nightly", &got).ok());
  EXPECT_EQ(got.next_fire_time().seconds(),
            created.next_fire_time().seconds());
  EXPECT_EQ(got.create_time().seconds(), created.create_time().seconds());
  ASSERT_TRUE(Get("paused", &got).ok());
  EXPECT_TRUE(got.paused());
  EXPECT_EQ(Get("deleted", &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace taskd
