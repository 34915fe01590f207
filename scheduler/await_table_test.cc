#include "scheduler/await_table.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

class AwaitTableTest : public ::testing::Test {
 protected:
  AwaitTableTest()
      : table_(&timers_, [](const std::string& id) -> absl::StatusOr<v1::Task> {
          if (id == "gone") return absl::NotFoundError("retired");
          v1::Task t;
          t.set_id(id);
          t.mutable_spec()->set_payload("payload");
          return t;
        }) {}

  AwaitTable::Callback Record() {
    return [this](absl::StatusOr<v1::AwaitResponse> r) {
      ++answers_;
      last_ = std::move(r);
    };
  }

  TimerQueue timers_;
  AwaitTable table_;
  int answers_ = 0;
  std::optional<absl::StatusOr<v1::AwaitResponse>> last_;
};

TEST_F(AwaitTableTest, AllFiresOnceWhenEveryTaskIsDone) {
  auto w = table_.Register({"a", "b"}, /*any=*/false, true, 0, Record());
  ASSERT_TRUE(w.ok());
  table_.WaitOn("a", *w);
  table_.WaitOn("b", *w);
  EXPECT_EQ(table_.pending(), 1u);
  for (auto& x : table_.TakeWaitersOf("a")) table_.CountDone(x);
  EXPECT_EQ(answers_, 0);
  for (auto& x : table_.TakeWaitersOf("b")) table_.CountDone(x);
  ASSERT_EQ(answers_, 1);
  ASSERT_TRUE(last_->ok());
  EXPECT_TRUE((*last_)->done());
  ASSERT_EQ((*last_)->tasks_size(), 2);
  EXPECT_EQ((*last_)->tasks(1).id(), "b");
  EXPECT_EQ(table_.pending(), 0u);
  EXPECT_FALSE(table_.Withdraw(*w));  // answered already
}

TEST_F(AwaitTableTest, AnyUnparksFromTheOtherTasks) {
  auto w = table_.Register({"a", "b"}, /*any=*/true, false, 0, Record());
  ASSERT_TRUE(w.ok());
  table_.WaitOn("a", *w);
  table_.WaitOn("b", *w);
  for (auto& x : table_.TakeWaitersOf("a")) table_.CountDone(x);
  ASSERT_EQ(answers_, 1);
  EXPECT_EQ((*last_)->tasks(0).spec().payload(), "");  // not asked for
  EXPECT_TRUE(table_.TakeWaitersOf("b").empty());  // unparked when it fired
  table_.WaitOn("c", *w);                           // after firing: ignored
  EXPECT_TRUE(table_.TakeWaitersOf("c").empty());
}

TEST_F(AwaitTableTest, TimeoutAnswersNotDoneAndWithdrawFreesTheTimer) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  auto timed = table_.Register({"a"}, false, true, 0, Record());
  auto withdrawn = table_.Register({"a"}, false, true, 0, Record());
  ASSERT_TRUE(timed.ok() && withdrawn.ok());
  table_.ArmTimeout(*timed, t0 + absl::Seconds(5));
  table_.ArmTimeout(*withdrawn, t0 + absl::Hours(24 * 365 * 100));
  EXPECT_EQ(timers_.size(), 2u);
  EXPECT_TRUE(table_.Withdraw(*withdrawn));
  EXPECT_EQ(timers_.size(), 1u);
  timers_.RunDue(t0 + absl::Seconds(5));
  ASSERT_EQ(answers_, 1);
  EXPECT_FALSE((*last_)->done());
  EXPECT_EQ(timers_.size(), 0u);
}

TEST_F(AwaitTableTest, AnswerStopsAtTheByteLimitAndShowsRetiredIds) {
  auto big = table_.Register({"a", "b", "c"}, false, true, 20, Record());
  ASSERT_TRUE(big.ok());
  table_.Fire(*big, absl::OkStatus(), true);
  ASSERT_EQ(answers_, 1);
  EXPECT_EQ(last_->status().code(), absl::StatusCode::kResourceExhausted);

  auto retired = table_.Register({"gone"}, false, true, 0, Record());
  ASSERT_TRUE(retired.ok());
  table_.CountDone(*retired);
  ASSERT_EQ(answers_, 2);
  ASSERT_TRUE(last_->ok());
  EXPECT_EQ((*last_)->tasks(0).id(), "gone");
}

TEST_F(AwaitTableTest, ShutdownAnswersUnavailableAndRefusesNew) {
  auto w = table_.Register({"a"}, false, true, 0, Record());
  ASSERT_TRUE(w.ok());
  table_.WaitOn("a", *w);
  table_.Shutdown();
  ASSERT_EQ(answers_, 1);
  EXPECT_EQ(last_->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(table_.Register({"b"}, false, true, 0, Record()).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(table_.TakeWaitersOf("a").empty());
}

}  // namespace
}  // namespace taskd
