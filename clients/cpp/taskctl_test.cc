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
                    "--payload=abc", "--wait", "--timeout", "30s",
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
  EXPECT_FALSE(Parse({"submit", "a", "--timeout", "5s"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--wait", "--timeout", "soon"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--priority", "high"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--payload"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--wait=maybe"}).ok());
  EXPECT_FALSE(Parse({"submit", "a", "--queue", "x", "--queue", "y"}).ok());
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
