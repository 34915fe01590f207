#include "scheduler/task_store.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace taskd {
namespace {

std::unique_ptr<TaskRecord> Record(const std::string& id,
                                   const std::string& queue,
                                   v1::TaskState state) {
  auto r = std::make_unique<TaskRecord>();
  r->task.set_id(id);
  r->task.mutable_spec()->set_queue(queue);
  r->task.set_state(state);
  return r;
}

TEST(TaskStoreTest, MutateTaskFindsChangesAndCounts) {
  TaskStore store(4);
  store.Insert(Record("a", "q", v1::TASK_STATE_PENDING), nullptr);
  store.Insert(Record("b", "q", v1::TASK_STATE_PENDING),
               [](TaskRecord& r) { r.ready_seq = 7; });
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(store.Contains("a"));
  EXPECT_FALSE(store.Contains("zz"));

  bool ran = false;
  EXPECT_FALSE(store.MutateTask("zz", [&](TaskRecord&) { ran = true; }));
  EXPECT_FALSE(ran);
  EXPECT_TRUE(store.MutateTask("a", [&](TaskRecord& r) {
    store.SetState(r, v1::TASK_STATE_RUNNING);
  }));
  uint64_t seq = 0;
  EXPECT_TRUE(store.Read("b", [&](const TaskRecord& r) { seq = r.ready_seq; }));
  EXPECT_EQ(seq, 7u);  // Insert's function ran on the stored record

  StateCounts c = store.CountsOf("q");
  EXPECT_EQ(c[v1::TASK_STATE_PENDING], 1);
  EXPECT_EQ(c[v1::TASK_STATE_RUNNING], 1);
  EXPECT_EQ(store.AllCounts().size(), 1u);
}

TEST(TaskStoreTest, EraseUnlessRemovesAndForgetsIdleQueues) {
  TaskStore store(4);
  store.Insert(Record("a", "q", v1::TASK_STATE_SUCCEEDED), nullptr);
  store.Insert(Record("b", "other", v1::TASK_STATE_PENDING), nullptr);
  EXPECT_EQ(store.EraseUnless("b", [](const TaskRecord&) { return true; }),
            nullptr);  // kept
  auto gone = store.EraseUnless("a", [](const TaskRecord&) { return false; });
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->task.id(), "a");
  EXPECT_EQ(store.EraseUnless("a", [](const TaskRecord&) { return false; }),
            nullptr);  // absent
  EXPECT_EQ(store.size(), 1u);
  auto all = store.AllCounts();
  EXPECT_EQ(all.count("q"), 0u);  // a queue with no task is forgotten
  EXPECT_EQ(all.count("other"), 1u);
}

TEST(TaskStoreTest, IdsAfterPagesInIdOrderAcrossShards) {
  TaskStore store(8);
  for (int i = 0; i < 50; ++i) {
    char id[8];
    snprintf(id, sizeof(id), "t%02d", i);
    store.Insert(Record(id, i % 2 ? "odd" : "even", v1::TASK_STATE_PENDING),
                 nullptr);
  }
  auto odd = [](const TaskRecord& r) { return r.task.spec().queue() == "odd"; };
  std::vector<std::string> page = store.IdsAfter("t10", 3, odd);
  ASSERT_GE(page.size(), 3u);
  EXPECT_EQ(page[0], "t11");
  EXPECT_EQ(page[1], "t13");
  EXPECT_EQ(page[2], "t15");
  EXPECT_EQ(store.IdsAfter("", 1000, odd).size(), 25u);
}

}  // namespace
}  // namespace taskd
