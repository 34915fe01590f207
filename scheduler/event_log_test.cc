#include "scheduler/event_log.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

v1::Task MakeTask(const std::string& id) {
  v1::Task t;
  t.set_id(id);
  t.set_state(v1::TASK_STATE_PENDING);
  t.mutable_spec()->set_type("t");
  t.mutable_spec()->set_queue("q");
  return t;
}

std::vector<uint64_t> Sequences(const std::vector<v1::TaskEvent>& events) {
  std::vector<uint64_t> out;
  for (const auto& e : events) out.push_back(e.sequence());
  return out;
}

TEST(EventLogTest, SequencesAreGapFreeFromOne) {
  EventLog log(100);
  EXPECT_EQ(log.next_sequence(), 1u);
  for (uint64_t i = 1; i <= 50; ++i) {
    EXPECT_EQ(log.Append(v1::EVENT_TYPE_SUBMITTED, MakeTask("t"), kT0), i);
  }
  EXPECT_EQ(log.next_sequence(), 51u);
  EXPECT_EQ(log.first_retained(), 1u);
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(log.Read(1, 1000, &events).ok());
  ASSERT_EQ(events.size(), 50u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence(), i + 1);
  }
}

TEST(EventLogTest, FirstSequenceIsConfigurable) {
  EventLog log(8, 1000);
  EXPECT_EQ(log.Append(v1::EVENT_TYPE_SUBMITTED, MakeTask("a"), kT0), 1000u);
  EXPECT_EQ(log.Append(v1::EVENT_TYPE_STARTED, MakeTask("a"), kT0), 1001u);
  std::vector<v1::TaskEvent> events;
  EXPECT_EQ(log.Read(999, 10, &events).code(), absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(log.Read(1000, 10, &events).ok());
  EXPECT_EQ(Sequences(events), (std::vector<uint64_t>{1000, 1001}));
}

TEST(EventLogTest, EventsCarryTypeTaskAndTime) {
  EventLog log(10);
  v1::Task task = MakeTask("abc");
  log.Append(v1::EVENT_TYPE_SUBMITTED, task, kT0);
  task.set_state(v1::TASK_STATE_RUNNING);
  log.Append(v1::EVENT_TYPE_STARTED, task, kT0 + absl::Seconds(2));
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(log.Read(1, 10, &events).ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_SUBMITTED);
  EXPECT_EQ(events[0].task().state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(events[0].task().id(), "abc");
  EXPECT_EQ(events[0].time().seconds(), 1'700'000'000);
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_STARTED);
  EXPECT_EQ(events[1].task().state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(events[1].time().seconds(), 1'700'000'002);
}

TEST(EventLogTest, ReadFromASequenceWithMax) {
  EventLog log(100);
  for (int i = 0; i < 20; ++i) {
    log.Append(v1::EVENT_TYPE_PROGRESS, MakeTask("t"), kT0);
  }
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(log.Read(5, 3, &events).ok());
  EXPECT_EQ(Sequences(events), (std::vector<uint64_t>{5, 6, 7}));
  // Read appends to what is there.
  ASSERT_TRUE(log.Read(19, 100, &events).ok());
  EXPECT_EQ(Sequences(events), (std::vector<uint64_t>{5, 6, 7, 19, 20}));
  events.clear();
  // At the head or beyond: nothing yet, not an error.
  ASSERT_TRUE(log.Read(21, 100, &events).ok());
  EXPECT_TRUE(events.empty());
  ASSERT_TRUE(log.Read(500, 100, &events).ok());
  EXPECT_TRUE(events.empty());
  ASSERT_TRUE(log.Read(1, 0, &events).ok());
  EXPECT_TRUE(events.empty());
}

TEST(EventLogTest, RingWrapsAround) {
  EventLog log(4);
  for (int i = 1; i <= 10; ++i) {
    log.Append(v1::EVENT_TYPE_PROGRESS, MakeTask("t" + std::to_string(i)), kT0);
  }
  EXPECT_EQ(log.next_sequence(), 11u);
  EXPECT_EQ(log.first_retained(), 7u);
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(log.Read(7, 100, &events).ok());
  ASSERT_EQ(Sequences(events), (std::vector<uint64_t>{7, 8, 9, 10}));
  // The payload of each slot belongs to its own sequence after wrapping.
  for (const auto& e : events) {
    EXPECT_EQ(e.task().id(), "t" + std::to_string(e.sequence()));
  }
  events.clear();
  ASSERT_TRUE(log.Read(9, 100, &events).ok());
  EXPECT_EQ(Sequences(events), (std::vector<uint64_t>{9, 10}));
}

TEST(EventLogTest, CursorThatFellOutIsOutOfRange) {
  EventLog log(4);
  for (int i = 0; i < 4; ++i) log.Append(v1::EVENT_TYPE_PROGRESS, MakeTask("t"), kT0);
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(log.Read(1, 100, &events).ok());  // exactly full: all retained
  EXPECT_EQ(events.size(), 4u);

  log.Append(v1::EVENT_TYPE_PROGRESS, MakeTask("t"), kT0);  // evicts seq 1
  events.clear();
  absl::Status s = log.Read(1, 100, &events);
  EXPECT_EQ(s.code(), absl::StatusCode::kOutOfRange) << s;
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(log.Read(0, 100, &events).code(), absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(log.Read(2, 100, &events).ok());
  EXPECT_EQ(Sequences(events), (std::vector<uint64_t>{2, 3, 4, 5}));
}

TEST(EventLogTest, PayloadAndResultAreStripped) {
  EventLog log(4);
  v1::Task task = MakeTask("t");
  task.mutable_spec()->set_payload("big payload");
  task.set_result("big result");
  task.mutable_error()->set_code("boom");
  (*task.mutable_spec()->mutable_labels())["k"] = "v";
  log.Append(v1::EVENT_TYPE_SUCCEEDED, task, kT0);
  // The caller's task is not modified.
  EXPECT_EQ(task.spec().payload(), "big payload");
  EXPECT_EQ(task.result(), "big result");
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(log.Read(1, 1, &events).ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].task().spec().payload().empty());
  EXPECT_TRUE(events[0].task().result().empty());
  // Everything else is kept.
  EXPECT_EQ(events[0].task().spec().type(), "t");
  EXPECT_EQ(events[0].task().spec().labels().at("k"), "v");
  EXPECT_EQ(events[0].task().error().code(), "boom");
}

TEST(EventLogTest, SubscribeWakeUnsubscribe) {
  EventLog log(4);
  int a = 0, b = 0;
  uint64_t id_a = log.Subscribe([&] { ++a; });
  uint64_t id_b = log.Subscribe([&] { ++b; });
  EXPECT_NE(id_a, id_b);
  // Appending alone does not call subscribers; Wake does.
  log.Append(v1::EVENT_TYPE_SUBMITTED, MakeTask("t"), kT0);
  EXPECT_EQ(a, 0);
  log.Wake();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  log.Unsubscribe(id_a);
  log.Wake();
  log.Wake();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 3);
  log.Unsubscribe(id_a);  // twice: no-op
  log.Unsubscribe(id_b);
  log.Wake();
  EXPECT_EQ(b, 3);
}

TEST(EventLogTest, CloseWakesSubscribers) {
  EventLog log(4);
  int woken = 0;
  bool saw_closed = false;
  log.Subscribe([&] {
    ++woken;
    saw_closed = log.closed();
  });
  EXPECT_FALSE(log.closed());
  log.Close();
  EXPECT_TRUE(log.closed());
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(saw_closed);  // a woken subscriber can tell why
}

TEST(EventLogTest, ZeroCapacityKeepsTheNewestEvent) {
  EventLog log(0);
  log.Append(v1::EVENT_TYPE_SUBMITTED, MakeTask("a"), kT0);
  log.Append(v1::EVENT_TYPE_SUBMITTED, MakeTask("b"), kT0);
  std::vector<v1::TaskEvent> events;
  EXPECT_EQ(log.Read(1, 10, &events).code(), absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(log.Read(2, 10, &events).ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].task().id(), "b");
}

}  // namespace
}  // namespace taskd
