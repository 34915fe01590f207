#include "scheduler/task_state.h"

#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

using v1::TaskState;

constexpr TaskState kAllStates[] = {
    v1::TASK_STATE_UNSPECIFIED, v1::TASK_STATE_PENDING,
    v1::TASK_STATE_SCHEDULED,   v1::TASK_STATE_RUNNING,
    v1::TASK_STATE_SUCCEEDED,   v1::TASK_STATE_FAILED,
    v1::TASK_STATE_CANCELLED,
};

// The contract from task_state.h / API.md, written out independently of the
// implementation.
const std::set<std::pair<TaskState, TaskState>>& LegalPairs() {
  static const auto* legal = new std::set<std::pair<TaskState, TaskState>>{
      {v1::TASK_STATE_PENDING, v1::TASK_STATE_RUNNING},
      {v1::TASK_STATE_PENDING, v1::TASK_STATE_CANCELLED},
      {v1::TASK_STATE_SCHEDULED, v1::TASK_STATE_PENDING},
      {v1::TASK_STATE_SCHEDULED, v1::TASK_STATE_CANCELLED},
      {v1::TASK_STATE_RUNNING, v1::TASK_STATE_SUCCEEDED},
      {v1::TASK_STATE_RUNNING, v1::TASK_STATE_FAILED},
      {v1::TASK_STATE_RUNNING, v1::TASK_STATE_CANCELLED},
      {v1::TASK_STATE_RUNNING, v1::TASK_STATE_SCHEDULED},
      {v1::TASK_STATE_RUNNING, v1::TASK_STATE_PENDING},
  };
  return *legal;
}

TEST(TaskStateTest, EveryPairMatchesTheTable) {
  int legal_seen = 0;
  int illegal_seen = 0;
  for (TaskState from : kAllStates) {
    for (TaskState to : kAllStates) {
      SCOPED_TRACE(absl::StrCat(StateName(from), " -> ", StateName(to)));
      absl::Status s = CheckTransition(from, to);
      const bool want_ok = LegalPairs().contains({from, to});
      EXPECT_EQ(s.ok(), want_ok) << s;
      if (want_ok) {
        ++legal_seen;
        continue;
      }
      ++illegal_seen;
      // An illegal transition is an engine bug, never a client error.
      EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
      EXPECT_NE(s.message().find(
                    absl::StrCat(StateName(from), " -> ", StateName(to))),
                absl::string_view::npos)
          << s.message();
    }
  }
  EXPECT_EQ(legal_seen, 9);
  EXPECT_EQ(illegal_seen, 7 * 7 - 9);
}

TEST(TaskStateTest, NoStateMayTransitionToItself) {
  for (TaskState s : kAllStates) {
    EXPECT_FALSE(CheckTransition(s, s).ok()) << StateName(s);
  }
}

TEST(TaskStateTest, NothingLeavesATerminalState) {
  for (TaskState from : kAllStates) {
    if (!IsTerminal(from)) continue;
    for (TaskState to : kAllStates) {
      EXPECT_FALSE(CheckTransition(from, to).ok())
          << StateName(from) << " -> " << StateName(to);
    }
  }
}

TEST(TaskStateTest, NothingEntersUnspecified) {
  for (TaskState from : kAllStates) {
    EXPECT_FALSE(CheckTransition(from, v1::TASK_STATE_UNSPECIFIED).ok());
  }
}

TEST(TaskStateTest, IsTerminal) {
  EXPECT_FALSE(IsTerminal(v1::TASK_STATE_UNSPECIFIED));
  EXPECT_FALSE(IsTerminal(v1::TASK_STATE_PENDING));
  EXPECT_FALSE(IsTerminal(v1::TASK_STATE_SCHEDULED));
  EXPECT_FALSE(IsTerminal(v1::TASK_STATE_RUNNING));
  EXPECT_TRUE(IsTerminal(v1::TASK_STATE_SUCCEEDED));
  EXPECT_TRUE(IsTerminal(v1::TASK_STATE_FAILED));
  EXPECT_TRUE(IsTerminal(v1::TASK_STATE_CANCELLED));
}

TEST(TaskStateTest, StateNames) {
  EXPECT_STREQ(StateName(v1::TASK_STATE_PENDING), "PENDING");
  EXPECT_STREQ(StateName(v1::TASK_STATE_SCHEDULED), "SCHEDULED");
  EXPECT_STREQ(StateName(v1::TASK_STATE_RUNNING), "RUNNING");
  EXPECT_STREQ(StateName(v1::TASK_STATE_SUCCEEDED), "SUCCEEDED");
  EXPECT_STREQ(StateName(v1::TASK_STATE_FAILED), "FAILED");
  EXPECT_STREQ(StateName(v1::TASK_STATE_CANCELLED), "CANCELLED");
  EXPECT_STREQ(StateName(v1::TASK_STATE_UNSPECIFIED), "UNSPECIFIED");
  EXPECT_STREQ(StateName(static_cast<TaskState>(42)), "UNSPECIFIED");
}

}  // namespace
}  // namespace taskd
