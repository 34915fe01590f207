#include "scheduler/task_store.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "scheduler/task_id.h"

namespace taskd {
namespace {

// Task ids as a generator makes them, by a short name for the test.
std::string Id(const std::string& name) {
  static TaskIdGenerator ids(42);
  static auto* by_name = new std::map<std::string, std::string>();
  auto [it, added] = by_name->try_emplace(name);
  if (added) it->second = ids.Next(absl::FromUnixSeconds(1000));
  return it->second;
}

std::unique_ptr<TaskRecord> Record(const std::string& id,
                                   const std::string& queue,
                                   v1::TaskState state) {
  v1::TaskSpec spec;
  spec.set_type("t");
  auto r = TaskRecord::Make(*TaskKeyOf(Id(id)), spec, queue);
  EXPECT_TRUE(r.ok()) << r.status();
  (*r)->InitState(state);
  return *std::move(r);
}

TEST(TaskStoreTest, MutateTaskFindsChangesAndCounts) {
  TaskStore store(4);
  store.Insert(Record("a", "q", v1::TASK_STATE_PENDING), nullptr);
  store.Insert(Record("b", "q", v1::TASK_STATE_PENDING),
               [](TaskRecord& r) { r.ticket = 7; });
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(store.Contains(Id("a")));
  EXPECT_FALSE(store.Contains(Id("zz")));

  bool ran = false;
  EXPECT_FALSE(store.MutateTask(Id("zz"), [&](TaskRecord&) { ran = true; }));
  EXPECT_FALSE(ran);
  EXPECT_TRUE(store.MutateTask(Id("a"), [&](TaskRecord& r) {
    store.SetState(r, v1::TASK_STATE_RUNNING);
  }));
  uint64_t ticket = 0;
  EXPECT_TRUE(store.Read(Id("b"), [&](const TaskRecord& r) { ticket = r.ticket; }));
  EXPECT_EQ(ticket, 7u);  // Insert's function ran on the stored record

  StateCounts c = store.CountsOf("q");
  EXPECT_EQ(c[v1::TASK_STATE_PENDING], 1);
  EXPECT_EQ(c[v1::TASK_STATE_RUNNING], 1);
  EXPECT_EQ(store.AllCounts().size(), 1u);
}

TEST(TaskStoreTest, EraseUnlessRemovesAndForgetsIdleQueues) {
  TaskStore store(4);
  store.Insert(Record("a", "q", v1::TASK_STATE_SUCCEEDED), nullptr);
  store.Insert(Record("b", "other", v1::TASK_STATE_PENDING), nullptr);
  EXPECT_EQ(store.EraseUnless(Id("b"), [](const TaskRecord&) { return true; }),
            nullptr);  // kept
  auto gone = store.EraseUnless(Id("a"), [](const TaskRecord&) { return false; });
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->id(), Id("a"));
  EXPECT_EQ(store.EraseUnless(Id("a"), [](const TaskRecord&) { return false; }),
            nullptr);  // absent
  EXPECT_EQ(store.size(), 1u);
  auto all = store.AllCounts();
  EXPECT_EQ(all.count("q"), 0u);  // a queue with no task is forgotten
  EXPECT_EQ(all.count("other"), 1u);
}

TEST(TaskStoreTest, IdsAfterPagesInIdOrderAcrossShards) {
  TaskStore store(8);
  for (int i = 0; i < 50; ++i) {
    store.Insert(Record(absl::StrCat("t", i), i % 2 ? "odd" : "even",
                        v1::TASK_STATE_PENDING),
                 nullptr);
  }
  auto odd = [](const TaskRecord& r) { return r.spec.queue() == "odd"; };
  std::vector<std::string> page = store.IdsAfter(Id("t10"), 3, odd);
  ASSERT_GE(page.size(), 3u);
  EXPECT_EQ(page[0], Id("t11"));
  EXPECT_EQ(page[1], Id("t13"));
  EXPECT_EQ(page[2], Id("t15"));
  EXPECT_EQ(store.IdsAfter("", 1000, odd).size(), 25u);
  // Past every 128-bit id: nothing.
  EXPECT_TRUE(store.IdsAfter("ZZZZZZZZZZZZZZZZZZZZZZZZZZ", 1000, odd).empty());
}

TEST(TaskStoreTest, WhatIsNotATaskIdIsNeverFound) {
  TaskStore store(2);
  store.Insert(Record("x", "q", v1::TASK_STATE_PENDING), nullptr);
  EXPECT_FALSE(store.Contains("not-an-id"));
  EXPECT_FALSE(store.Contains("ZZZZZZZZZZZZZZZZZZZZZZZZZZ"));
}

}  // namespace
}  // namespace taskd
