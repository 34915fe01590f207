#include "clients/cpp/worker_cli.h"

#include "gtest/gtest.h"

namespace taskd {
namespace {

TEST(WorkerCliTest, ParsesEverything) {
  auto c = ParseWorkerArgs(
      {"--server", "h:1", "--queue", "a,b", "--queue=c", "--handler",
       "echo=cat", "--handler", "sum=awk '{s+=$1} END {print s}'",
       "--concurrency", "4", "--grace", "2s", "--worker-id", "w7",
       "--heartbeat", "1s"},
      "env:2");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "h:1");
  EXPECT_EQ(c->queues, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_EQ(c->handlers.size(), 2u);
  EXPECT_EQ(c->handlers[1].first, "sum");
  EXPECT_EQ(c->handlers[1].second, "awk '{s+=$1} END {print s}'");
  EXPECT_EQ(c->concurrency, 4);
  EXPECT_EQ(c->grace, absl::Seconds(2));
  EXPECT_EQ(c->heartbeat, absl::Seconds(1));
  EXPECT_EQ(c->worker_id, "w7");
}

TEST(WorkerCliTest, Defaults) {
  auto c = ParseWorkerArgs({"--handler", "t=x=y"}, "env:2");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "env:2");
  EXPECT_EQ(c->handlers[0].second, "x=y");
  EXPECT_EQ(c->concurrency, 1);
  EXPECT_TRUE(c->queues.empty());
}

TEST(WorkerCliTest, Errors) {
  EXPECT_FALSE(ParseWorkerArgs({}, nullptr).ok());
  EXPECT_FALSE(ParseWorkerArgs({"--handler", "noequals"}, nullptr).ok());
  EXPECT_FALSE(ParseWorkerArgs({"--handler", "=cmd"}, nullptr).ok());
  EXPECT_FALSE(ParseWorkerArgs({"--handler", "t="}, nullptr).ok());
  EXPECT_FALSE(
      ParseWorkerArgs({"--handler", "t=a", "--handler", "t=b"}, nullptr).ok());
  EXPECT_FALSE(
      ParseWorkerArgs({"--handler", "t=a", "--concurrency", "0"}, nullptr).ok());
  EXPECT_FALSE(
      ParseWorkerArgs({"--handler", "t=a", "--grace", "later"}, nullptr).ok());
  EXPECT_FALSE(ParseWorkerArgs({"--handler", "t=a", "stray"}, nullptr).ok());
  EXPECT_TRUE(ParseWorkerArgs({"--help"}, nullptr)->help);
}

}  // namespace
}  // namespace taskd
