#include "clients/cpp/taskctl.h"

#include <sstream>

#include "gtest/gtest.h"

namespace taskd {
namespace {

using Command = TaskctlInvocation::Command;

absl::StatusOr<TaskctlInvocation> Parse(std::vector<std::string> args,
                                        const char* env = nullptr) {
  return ParseTaskctl(args, env);
}

TEST(TaskctlParseTest, SubmitWithFlagsAnywhere) {
  auto inv = Parse({"--json", "submit", "--queue", "q1", "resize",
                    "--payload=abc", "--wait", "--wait-timeout", "30s",
                    "--server", "h:1", "--priority", "7", "--delay", "1.5s",
                    "--idempotency-key", "k"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kSubmit);
  EXPECT_TRUE(inv->json);
  EXPECT_EQ(inv->server, "h:1");
  EXPECT_EQ(inv->spec.type(), "resize");
  EXPECT_EQ(inv->spec.queue(), "q1");
  EXPECT_EQ(inv->spec.payload(), "abc");
  EXPECT_EQ(inv->spec.priority(), 7);
  EXPECT_EQ(inv->spec.delay().seconds(), 1);
  EXPECT_EQ(inv->spec.delay().nanos(), 500000000);
  EXPECT_EQ(inv->spec.idempotency_key(), "k");
  EXPECT_TRUE(inv->wait);
  EXPECT_EQ(inv->timeout, absl::Seconds(30));
}

TEST(TaskctlParseTest, ServerPrecedence) {
  EXPECT_EQ(Parse({"get", "x"})->server, kDefaultServer);
  EXPECT_EQ(Parse({"get", "x"}, "env:5")->server, "env:5");
  EXPECT_EQ(Parse({"get", "x"}, "")->server, kDefaultServer);
  EXPECT_EQ(Parse({"--server=flag:6", "get", "x"}, "env:5")->server, "flag:6");
}

TEST(TaskctlParseTest, SubmitErrors) {
  EXPECT_FALSE(Parse({"submit"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "b"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--payload", "x", "--payload-file", "f"})
                   .ok());
  EXPECT_FALSE(Parse({"submit", "a", "--wait-timeout", "5s"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--wait", "--timeout", "soon"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--priority", "high"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--payload"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--wait=maybe"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--queue", "x", "--queue", "y"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--retries", "-1"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--retries", "many"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--timeout", "-5s"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--timeout", "inf"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--key", "k", "--idempotency-key", "j"})
                   .ok());
  EXPECT_FALSE(Parse({"submit", "a", "--key", "k", "--key", "j"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--after", ""}).ok());
}

TEST(TaskctlParseTest, SubmitTimeoutRetriesKeyAfter) {
  auto inv = Parse({"submit", "resize", "--timeout", "1m30s", "--retries",
                    "5", "--key", "order-1", "--after", "A", "--after=B"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->spec.timeout().seconds(), 90);
  EXPECT_EQ(inv->spec.retry().max_attempts(), 5);
  EXPECT_EQ(inv->spec.idempotency_key(), "order-1");
  EXPECT_EQ(std::vector<std::string>(inv->spec.depends_on().begin(),
                                     inv->spec.depends_on().end()),
            (std::vector<std::string>{"A", "B"}));
  EXPECT_FALSE(inv->wait);
  EXPECT_EQ(inv->timeout, absl::InfiniteDuration());  // not the wait bound

  inv = Parse({"submit", "t"});
  ASSERT_TRUE(inv.ok());
  EXPECT_FALSE(inv->spec.has_timeout());
  EXPECT_FALSE(inv->spec.has_retry());
  EXPECT_EQ(inv->spec.depends_on_size(), 0);
  EXPECT_EQ(Parse({"submit", "t", "--idempotency-key", "k"})
                ->spec.idempotency_key(),
            "k");
}

TEST(TaskctlParseTest, QueueCommands) {
  auto inv = Parse({"queues"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kQueues);
  EXPECT_FALSE(Parse({"queues", "extra"}).ok());

  inv = Parse({"pause", "emails"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kPauseQueue);
  EXPECT_EQ(inv->queue, "emails");
  EXPECT_EQ(Parse({"resume", "emails"})->command, Command::kResumeQueue);
  EXPECT_FALSE(Parse({"pause"}).ok());
  EXPECT_FALSE(Parse({"resume", "a", "b"}).ok());

  inv = Parse({"purge", "emails", "--reason", "bad batch"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kPurgeQueue);
  EXPECT_EQ(inv->queue, "emails");
  EXPECT_EQ(inv->reason, "bad batch");
  EXPECT_FALSE(Parse({"pause", "q", "--reason", "x"}).ok());

  inv = Parse({"queue-limit", "emails", "--max-concurrency", "4",
               "--max-rate", "2.5"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kQueueLimit);
  EXPECT_EQ(inv->max_concurrency, 4);
  EXPECT_EQ(inv->max_dispatch_per_second, 2.5);
  inv = Parse({"queue-limit", "emails", "--max-rate=0"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_FALSE(inv->max_concurrency.has_value());
  EXPECT_EQ(inv->max_dispatch_per_second, 0.0);
  EXPECT_FALSE(Parse({"queue-limit", "emails"}).ok());  // nothing to change
  EXPECT_FALSE(Parse({"queue-limit", "q", "--max-concurrency", "-1"}).ok());
  EXPECT_FALSE(Parse({"queue-limit", "q", "--max-rate", "fast"}).ok());
  EXPECT_FALSE(Parse({"queue-limit", "q", "--max-rate", "nan"}).ok());
}

TEST(TaskctlParseTest, ScheduleCommands) {
  auto inv = Parse({"schedule", "create", "nightly", "--cron", "0 3 * * *",
                    "report", "--payload", "p", "--queue", "q",
                    "--priority", "2", "--json"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kScheduleCreate);
  EXPECT_TRUE(inv->json);
  EXPECT_EQ(inv->schedule.id(), "nightly");
  EXPECT_EQ(inv->schedule.cron(), "0 3 * * *");
  EXPECT_EQ(inv->schedule.template_().type(), "report");
  EXPECT_EQ(inv->schedule.template_().payload(), "p");
  EXPECT_EQ(inv->schedule.template_().queue(), "q");
  EXPECT_EQ(inv->schedule.template_().priority(), 2);

  inv = Parse({"schedule", "create", "tick", "--every", "1m30s", "ping"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->schedule.interval().seconds(), 90);
  EXPECT_FALSE(inv->schedule.has_template_() &&
               inv->schedule.template_().has_timeout());

  EXPECT_FALSE(Parse({"schedule", "create", "x", "t"}).ok());  // no trigger
  EXPECT_FALSE(Parse({"schedule", "create", "x", "t", "--cron", "* * * * *",
                      "--every", "1m"})
                   .ok());
  EXPECT_FALSE(Parse({"schedule", "create", "x", "--every", "1m"}).ok());
  EXPECT_FALSE(Parse({"schedule", "create", "x", "t", "--every", "0s"}).ok());
  EXPECT_FALSE(Parse({"schedule", "create", "x", "t", "--every", "soon"}).ok());
  EXPECT_FALSE(
      Parse({"schedule", "create", "x", "t", "--every", "1m", "--priority",
             "hi"})
          .ok());

  EXPECT_EQ(Parse({"schedule", "list"})->command, Command::kScheduleList);
  EXPECT_FALSE(Parse({"schedule", "list", "x"}).ok());
  const std::pair<const char*, Command> verbs[] = {
      {"get", Command::kScheduleGet},
      {"delete", Command::kScheduleDelete},
      {"pause", Command::kSchedulePause},
      {"resume", Command::kScheduleResume}};
  for (const auto& [verb, command] : verbs) {
    inv = Parse({"schedule", verb, "nightly"});
    ASSERT_TRUE(inv.ok()) << verb << ": " << inv.status();
    EXPECT_EQ(inv->command, command) << verb;
    EXPECT_EQ(inv->ids, (std::vector<std::string>{"nightly"})) << verb;
    EXPECT_FALSE(Parse({"schedule", verb}).ok()) << verb;
  }
  EXPECT_FALSE(Parse({"schedule"}).ok());
  EXPECT_FALSE(Parse({"schedule", "frobnicate"}).ok());
  EXPECT_EQ(Parse({"--server", "h:1", "schedule", "get", "x"})->server, "h:1");
}

TEST(TaskctlParseTest, AwaitAndCancel) {
  auto inv = Parse({"await", "a", "b", "--any", "--timeout=2m"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(inv->any);
  EXPECT_EQ(inv->timeout, absl::Minutes(2));
  EXPECT_EQ(Parse({"await", "a"})->timeout, absl::InfiniteDuration());
  EXPECT_FALSE(Parse({"await"}).ok());
  EXPECT_FALSE(Parse({"await", "a", "--timeout", "-1s"}).ok());

  inv = Parse({"cancel", "a", "--reason", "not needed"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->reason, "not needed");
  EXPECT_FALSE(Parse({"cancel"}).ok());
  EXPECT_FALSE(Parse({"cancel", "a", "--any"}).ok());  // not a cancel flag
}

TEST(TaskctlParseTest, WatchAndList) {
  auto inv = Parse({"watch", "a", "--from", "42", "--queue", "q"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->from_sequence, 42u);
  EXPECT_EQ(inv->queue, "q");
  EXPECT_FALSE(Parse({"watch", "--from", "-1"}).ok());

  inv = Parse({"list", "--state", "pending,Running", "--state",
               "TASK_STATE_FAILED", "--limit", "0"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->states,
            (std::vector<v1::TaskState>{v1::TASK_STATE_PENDING,
                                        v1::TASK_STATE_RUNNING,
                                        v1::TASK_STATE_FAILED}));
  EXPECT_EQ(inv->limit, 0);
  EXPECT_EQ(Parse({"list"})->limit, 100);
  EXPECT_FALSE(Parse({"list", "--state", "bogus"}).ok());
  EXPECT_FALSE(Parse({"list", "--state", "unspecified"}).ok());
  EXPECT_FALSE(Parse({"list", "--limit", "-3"}).ok());
  EXPECT_FALSE(Parse({"list", "extra"}).ok());
}

TEST(TaskctlParseTest, HelpAndUnknowns) {
  EXPECT_EQ(Parse({"--help"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"-h"})->command, Command::kHelp);
  EXPECT_EQ(Parse({"get", "--help"})->command, Command::kHelp);
  EXPECT_FALSE(Parse({}).ok());
  EXPECT_FALSE(Parse({"frobnicate"}).ok());
  EXPECT_FALSE(Parse({"--bogus", "get", "x"}).ok());
  EXPECT_FALSE(Parse({"--json", "get", "x", "--json"}).ok());
  // "--" ends flags: an id may start with a dash.
  EXPECT_EQ(Parse({"get", "--", "-odd"})->ids,
            (std::vector<std::string>{"-odd"}));
}

TEST(TaskctlRunTest, UsageErrorExitsTwo) {
  std::ostringstream out, err;
  EXPECT_EQ(RunTaskctl({"get"}, nullptr, out, err), 2);
  EXPECT_NE(err.str().find("taskctl: get needs exactly one ID"),
            std::string::npos);
  EXPECT_NE(err.str().find("usage: taskctl"), std::string::npos);
  std::ostringstream out2, err2;
  EXPECT_EQ(RunTaskctl({"--help"}, nullptr, out2, err2), 0);
  EXPECT_NE(out2.str().find("usage: taskctl"), std::string::npos);
}

TEST(TaskctlRunTest, RpcErrorExitsOneWithCode) {
  std::ostringstream out, err;
  // Nothing listens on port 1: the call fails at once with UNAVAILABLE.
  EXPECT_EQ(RunTaskctl({"--server", "127.0.0.1:1", "get", "x"}, nullptr, out,
                       err),
            1);
  EXPECT_EQ(err.str().rfind("taskctl: UNAVAILABLE: ", 0), 0u) << err.str();
}

TEST(TaskctlRunTest, MissingPayloadFileIsReported) {
  std::ostringstream out, err;
  EXPECT_EQ(RunTaskctl({"submit", "t", "--payload-file", "/nonexistent/x"},
                       nullptr, out, err),
            1);
  EXPECT_EQ(err.str().rfind("taskctl: NOT_FOUND: cannot open /nonexistent/x",
                            0),
            0u)
      << err.str();
}

TEST(TaskctlFormatTest, QueueAndScheduleLines) {
  v1::Queue q;
  q.set_queue("emails");
  q.set_pending(3);
  q.set_running(1);
  q.set_workers(2);
  EXPECT_EQ(FormatQueue(q),
            "emails pending=3 scheduled=0 running=1 succeeded=0 failed=0 "
            "cancelled=0 workers=2");
  q.set_paused(true);
  q.set_max_concurrency(5);
  q.set_max_dispatch_per_second(2.5);
  q.mutable_oldest_pending_age()->set_seconds(90);
  EXPECT_EQ(FormatQueue(q),
            "emails pending=3 scheduled=0 running=1 succeeded=0 failed=0 "
            "cancelled=0 workers=2 paused max_concurrency=5 max_rate=2.5/s "
            "oldest_pending=1m30s");

  v1::Schedule s;
  s.set_id("nightly");
  s.set_cron("0 3 * * *");
  s.mutable_template_()->set_type("report");
  s.mutable_next_fire_time()->set_seconds(1'700'000'000);
  EXPECT_EQ(FormatSchedule(s),
            "nightly cron=\"0 3 * * *\" type=report "
            "next=2023-11-14T22:13:20+00:00");
  s.mutable_interval()->set_seconds(60);
  s.mutable_template_()->set_queue("q");
  s.set_paused(true);
  s.clear_next_fire_time();
  s.mutable_last_fire_time()->set_seconds(1'700'000'000);
  s.set_last_task_id("01J");
  EXPECT_EQ(FormatSchedule(s),
            "nightly every=1m type=report queue=q paused "
            "last=2023-11-14T22:13:20+00:00 last_task=01J");
}

TEST(TaskctlRunTest, ScheduleRpcErrorExitsOne) {
  std::ostringstream out, err;
  EXPECT_EQ(RunTaskctl({"--server", "127.0.0.1:1", "schedule", "list"},
                       nullptr, out, err),
            1);
  EXPECT_EQ(err.str().rfind("taskctl: UNAVAILABLE: ", 0), 0u) << err.str();
  std::ostringstream out2, err2;
  EXPECT_EQ(RunTaskctl({"--server", "127.0.0.1:1", "queues"}, nullptr, out2,
                       err2),
            1);
  EXPECT_EQ(err2.str().rfind("taskctl: UNAVAILABLE: ", 0), 0u) << err2.str();
}

TEST(TaskctlFormatTest, HumanLines) {
  v1::Task task;
  task.set_id("01J");
  task.set_state(v1::TASK_STATE_SUCCEEDED);
  task.set_attempt(1);
  task.mutable_spec()->set_type("echo");
  task.set_result("hi\n");
  EXPECT_EQ(FormatTask(task),
            "01J SUCCEEDED type=echo attempt=1 result=\"hi\\n\"");
  task.set_state(v1::TASK_STATE_FAILED);
  task.clear_result();
  task.mutable_error()->set_code("exit_3");
  task.mutable_error()->set_message("boom");
  EXPECT_EQ(FormatTask(task), "01J FAILED type=echo attempt=1 error=exit_3: boom");
  v1::TaskEvent event;
  event.set_sequence(9);
  event.set_type(v1::EVENT_TYPE_FAILED);
  *event.mutable_task() = task;
  EXPECT_EQ(FormatEvent(event),
            "9 FAILED 01J FAILED type=echo attempt=1 error=exit_3: boom");
}

}  // namespace
}  // namespace taskd
