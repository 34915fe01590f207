#include "scheduler/dispatcher.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

// Tasks by a short name for the test: each name gets its own key.
absl::flat_hash_map<std::string, TaskKey>& Keys() {
  static auto* keys = new absl::flat_hash_map<std::string, TaskKey>();
  return *keys;
}
TaskKey Key(const std::string& name) {
  auto [it, added] = Keys().try_emplace(name, TaskKey{7, Keys().size() + 1});
  return it->second;
}
std::string Name(const TaskKey& key) {
  for (const auto& [name, k] : Keys()) {
    if (k == key) return name;
  }
  return "?";
}

// Records what the dispatcher sends to one worker.
class RecordingSink final : public WorkerSink {
 public:
  void Send(v1::WorkResponse message) override {
    absl::MutexLock lock(&mu_);
    messages_.push_back(std::move(message));
  }
  bool Congested() const override { return congested.load(); }
  std::atomic<bool> congested{false};

  std::vector<std::string> AssignedIds() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> ids;
    for (const auto& m : messages_) ids.push_back(m.assignment().task().id());
    return ids;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::WorkResponse> messages_;
};

// Plays the engine: starting a task sends an assignment to the worker's sink
// unless the id was marked stale.
class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
      : dispatcher_([this](const TaskKey& task,
                           const std::shared_ptr<WorkerSession>& worker) {
          const std::string id = Name(task);
          ++start_calls_;
          if (stale_.contains(id)) return false;
          v1::WorkResponse m;
          m.mutable_assignment()->mutable_task()->set_id(id);
          worker->sink->Send(std::move(m));
          started_.push_back({id, worker->worker_id});
          return true;
        }) {}

  std::shared_ptr<WorkerSession> Worker(const std::string& id,
                                        std::vector<std::string> queues,
                                        absl::flat_hash_set<std::string> types,
                                        int concurrency) {
    sinks_[id] = std::make_unique<RecordingSink>();
    return std::make_shared<WorkerSession>(id, std::move(queues),
                                           std::move(types), concurrency,
                                           sinks_[id].get(),
                                           absl::FromUnixSeconds(1000));
  }

  void Enqueue(const std::string& id, const std::string& queue = "q",
               const std::string& type = "t", int priority = 0) {
    dispatcher_.Enqueue(ReadyEntry{queue, type, priority, ++seq_, Key(id)});
  }

  std::vector<std::string> StartedIds() const {
    std::vector<std::string> ids;
    for (const auto& s : started_) ids.push_back(s.task_id);
    return ids;
  }
  std::vector<std::string> StartedOn(const std::string& worker) const {
    std::vector<std::string> ids;
    for (const auto& s : started_) {
      if (s.worker_id == worker) ids.push_back(s.task_id);
    }
    return ids;
  }

  struct Started {
    std::string task_id;
    std::string worker_id;
  };
  std::vector<Started> started_;
  int start_calls_ = 0;
  absl::flat_hash_set<std::string> stale_;
  std::map<std::string, std::unique_ptr<RecordingSink>> sinks_;
  uint64_t seq_ = 0;
  Dispatcher dispatcher_;
};

TEST_F(DispatcherTest, NothingStartsWithoutWorkers) {
  Enqueue("a");
  Enqueue("b");
  EXPECT_TRUE(started_.empty());
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 2u);
  EXPECT_EQ(dispatcher_.ReadyCount("other"), 0u);
  EXPECT_EQ(dispatcher_.WorkerCount(), 0u);
}

TEST_F(DispatcherTest, StrictPriorityThenFifo) {
  Enqueue("p0-first", "q", "t", 0);
  Enqueue("p5-first", "q", "t", 5);
  Enqueue("p5-second", "q", "t", 5);
  Enqueue("p9", "q", "t", 9);
  Enqueue("p0-second", "q", "t", 0);
  Enqueue("p5-other-type", "q", "u", 5);  // priority spans types in a queue
  auto w = Worker("w", {"q"}, {}, 1);
  dispatcher_.AddWorker(w);
  const std::vector<std::string> want = {"p9",        "p5-first", "p5-second",
                                         "p5-other-type", "p0-first",
                                         "p0-second"};
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(started_.size(), i + 1);
    EXPECT_EQ(started_.back().task_id, want[i]);
    dispatcher_.Release(w.get(), Key(started_.back().task_id));
  }
  EXPECT_EQ(started_.size(), want.size());
  EXPECT_EQ(sinks_["w"]->AssignedIds(), want);
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 0u);
}

TEST_F(DispatcherTest, PriorityAcrossAWorkersQueues) {
  Enqueue("low", "a", "t", 1);
  Enqueue("high", "b", "t", 8);
  auto w = Worker("w", {"a", "b"}, {}, 1);
  dispatcher_.AddWorker(w);
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"high"}));
  dispatcher_.Release(w.get(), Key("high"));
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"high", "low"}));
}

TEST_F(DispatcherTest, TypesFiltering) {
  Enqueue("x1", "q", "x");
  Enqueue("y1", "q", "y");
  Enqueue("z1", "q", "z");
  auto only_y = Worker("only-y", {"q"}, {"y"}, 10);
  dispatcher_.AddWorker(only_y);
  EXPECT_EQ(StartedOn("only-y"), (std::vector<std::string>{"y1"}));
  auto x_and_z = Worker("x-z", {"q"}, {"x", "z", "absent"}, 10);
  dispatcher_.AddWorker(x_and_z);
  std::vector<std::string> xz = StartedOn("x-z");
  std::sort(xz.begin(), xz.end());
  EXPECT_EQ(xz, (std::vector<std::string>{"x1", "z1"}));

  Enqueue("w1", "q", "w");
  EXPECT_EQ(started_.size(), 3u);  // nobody serves type w
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 1u);
  auto all = Worker("all", {"q"}, {}, 10);  // empty types: every type
  dispatcher_.AddWorker(all);
  EXPECT_EQ(StartedOn("all"), (std::vector<std::string>{"w1"}));
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 0u);
}

TEST_F(DispatcherTest, QueuesFiltering) {
  Enqueue("a1", "a");
  Enqueue("b1", "b");
  Enqueue("c1", "c");
  auto w = Worker("w", {"a", "c"}, {}, 10);
  dispatcher_.AddWorker(w);
  std::vector<std::string> got = StartedOn("w");
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"a1", "c1"}));
  EXPECT_EQ(dispatcher_.ReadyCount("b"), 1u);
  Enqueue("a2", "a");
  Enqueue("b2", "b");
  EXPECT_EQ(StartedOn("w").size(), 3u);
  EXPECT_EQ(dispatcher_.ReadyCount("b"), 2u);
}

TEST_F(DispatcherTest, NeverMoreThanConcurrencyHeld) {
  auto w = Worker("w", {"q"}, {}, 3);
  dispatcher_.AddWorker(w);
  for (int i = 0; i < 10; ++i) Enqueue("t" + std::to_string(i));
  EXPECT_EQ(started_.size(), 3u);
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 7u);
  // Each release lets exactly one more through.
  for (int i = 0; i < 7; ++i) {
    dispatcher_.Release(w.get(), Key(started_[i].task_id));
    EXPECT_EQ(started_.size(), 4u + i);
  }
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 0u);
  // Releasing something not held (twice, or unknown) gives no extra credit.
  dispatcher_.Release(w.get(), Key(started_[0].task_id));
  dispatcher_.Release(w.get(), Key("never-assigned"));
  for (int i = 10; i < 15; ++i) Enqueue("t" + std::to_string(i));
  EXPECT_EQ(started_.size(), 10u);  // still 3 held: t7, t8, t9
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 5u);
}

TEST_F(DispatcherTest, PrefersTheLeastLoadedWorker) {
  auto a = Worker("a", {"q"}, {}, 4);
  dispatcher_.AddWorker(a);
  Enqueue("t1");
  EXPECT_EQ(StartedOn("a").size(), 1u);
  auto b = Worker("b", {"q"}, {}, 4);
  dispatcher_.AddWorker(b);
  Enqueue("t2");  // a holds 1/4, b 0/4: b
  EXPECT_EQ(StartedOn("b"), (std::vector<std::string>{"t2"}));
  for (int i = 3; i <= 8; ++i) Enqueue("t" + std::to_string(i));
  // Spread evenly: both full at 4.
  EXPECT_EQ(StartedOn("a").size(), 4u);
  EXPECT_EQ(StartedOn("b").size(), 4u);
  Enqueue("t9");
  EXPECT_EQ(started_.size(), 8u);
  dispatcher_.Release(b.get(), Key("t2"));
  EXPECT_EQ(StartedOn("b").back(), "t9");
}

TEST_F(DispatcherTest, LoadIsAFractionOfConcurrency) {
  auto big = Worker("big", {"q"}, {}, 10);
  auto small = Worker("small", {"q"}, {}, 2);
  dispatcher_.AddWorker(small);
  Enqueue("s1");  // small: 1/2
  ASSERT_EQ(StartedOn("small").size(), 1u);
  dispatcher_.AddWorker(big);
  Enqueue("b1");
  Enqueue("b2");
  Enqueue("b3");
  Enqueue("b4");
  // big stays below small's 0.5 through 4 tasks (0.4); then 5/10 ties.
  EXPECT_EQ(StartedOn("big").size(), 4u);
  EXPECT_EQ(StartedOn("small").size(), 1u);
}

TEST_F(DispatcherTest, ReleaseDispatchesTheNext) {
  auto w = Worker("w", {"q"}, {}, 1);
  dispatcher_.AddWorker(w);
  Enqueue("a");
  Enqueue("b");
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"a"}));
  dispatcher_.Release(w.get(), Key("a"));
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"a", "b"}));
  dispatcher_.Release(w.get(), Key("b"));
  Enqueue("c");  // credit is there: starts at once
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(DispatcherTest, RemoveWorkerReturnsHeldIds) {
  auto w = Worker("w", {"q"}, {}, 3);
  auto other = Worker("other", {"elsewhere"}, {}, 3);
  dispatcher_.AddWorker(w);
  dispatcher_.AddWorker(other);
  EXPECT_EQ(dispatcher_.WorkerCount(), 2u);
  Enqueue("a");
  Enqueue("b");
  Enqueue("c");
  Enqueue("d");
  dispatcher_.Release(w.get(), Key("b"));  // d starts
  std::vector<std::string> held;
  for (const TaskKey& k : dispatcher_.RemoveWorker(w.get())) {
    held.push_back(Name(k));
  }
  std::sort(held.begin(), held.end());
  EXPECT_EQ(held, (std::vector<std::string>{"a", "c", "d"}));
  EXPECT_EQ(dispatcher_.WorkerCount(), 1u);
  // Gone: new work is not sent to it, and removing again returns nothing.
  Enqueue("e");
  EXPECT_EQ(started_.size(), 4u);
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 1u);
  EXPECT_TRUE(dispatcher_.RemoveWorker(w.get()).empty());
  dispatcher_.Release(w.get(), Key("a"));  // late release of a removed worker
  EXPECT_EQ(started_.size(), 4u);
}

TEST_F(DispatcherTest, StaleEntriesAreDropped) {
  stale_ = {"gone1", "gone2"};
  Enqueue("gone1", "q", "t", 9);
  Enqueue("live1", "q", "t", 5);
  Enqueue("gone2", "q", "t", 5);
  Enqueue("live2", "q", "t", 0);
  auto w = Worker("w", {"q"}, {}, 2);
  dispatcher_.AddWorker(w);
  // The stale entries cost no credit: both live tasks start.
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"live1", "live2"}));
  EXPECT_EQ(start_calls_, 4);
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 0u);
  dispatcher_.Release(w.get(), Key("live1"));
  EXPECT_EQ(start_calls_, 4);  // not retried
  EXPECT_EQ(sinks_["w"]->AssignedIds(),
            (std::vector<std::string>{"live1", "live2"}));
}

TEST_F(DispatcherTest, RemoveTakesAnEntryOutOfTheReadyQueue) {
  ReadyEntry a{"q", "t", 3, 1, Key("a")};
  ReadyEntry b{"q", "t", 3, 2, Key("b")};
  dispatcher_.Enqueue(a);
  dispatcher_.Enqueue(b);
  dispatcher_.Enqueue(a);  // duplicate: counted once
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 2u);
  dispatcher_.Remove(a);
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 1u);
  dispatcher_.Remove(a);  // absent: no-op
  dispatcher_.Remove(ReadyEntry{"nope", "t", 0, 0, Key("x")});
  dispatcher_.Remove(ReadyEntry{"q", "nope", 0, 0, Key("x")});
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 1u);
  dispatcher_.AddWorker(Worker("w", {"q"}, {}, 5));
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"b"}));
}

// Entries reach the dispatcher slightly out of their ready order (threads
// race between taking a sequence number and enqueueing): each priority's
// list still dispatches by sequence, and removing from the middle of a list
// keeps the rest in order, in the all-types list and the per-type one.
TEST_F(DispatcherTest, OutOfOrderArrivalsAndRemovalsKeepFifo) {
  for (uint64_t seq : {4, 1, 6, 3, 2, 5}) {
    dispatcher_.Enqueue(ReadyEntry{"q", seq % 2 ? "odd" : "even", 4, seq,
                                   Key(absl::StrCat("s", seq))});
  }
  dispatcher_.Remove(ReadyEntry{"q", "even", 4, 4, Key("s4")});
  dispatcher_.Remove(ReadyEntry{"q", "odd", 4, 1, Key("s1")});  // a list head
  dispatcher_.Remove(ReadyEntry{"q", "even", 4, 6, Key("s6")});  // a list tail
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 3u);
  auto evens = Worker("evens", {"q"}, {"even"}, 10);
  dispatcher_.AddWorker(evens);
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"s2"}));
  auto all = Worker("all", {"q"}, {}, 10);
  dispatcher_.AddWorker(all);
  EXPECT_EQ(StartedIds(), (std::vector<std::string>{"s2", "s3", "s5"}));
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 0u);
}

// The oldest ready entry of a queue is reported whatever its priority, and
// the next one once it is dispatched.
TEST_F(DispatcherTest, OldestReadyAcrossPriorities) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  dispatcher_.Enqueue(ReadyEntry{"q", "t", 1, 1, Key("old-low"), t0});
  dispatcher_.Enqueue(
      ReadyEntry{"q", "t", 8, 2, Key("new-high"), t0 + absl::Seconds(5)});
  dispatcher_.Enqueue(
      ReadyEntry{"q", "t", 1, 3, Key("newer-low"), t0 + absl::Seconds(9)});
  EXPECT_EQ(dispatcher_.Stats("q").oldest_ready, t0);
  dispatcher_.Remove(ReadyEntry{"q", "t", 1, 1, Key("old-low")});
  EXPECT_EQ(dispatcher_.Stats("q").oldest_ready, t0 + absl::Seconds(5));
  dispatcher_.Remove(ReadyEntry{"q", "t", 8, 2, Key("new-high")});
  EXPECT_EQ(dispatcher_.Stats("q").oldest_ready, t0 + absl::Seconds(9));
}

// Issue 10, defect 7: a worker that does not read gets nothing more until
// its sink has drained, then dispatch resumes.
TEST_F(DispatcherTest, ACongestedWorkerGetsNothingUntilItDrains) {
  auto slow = Worker("slow", {"q"}, {}, 100);
  dispatcher_.AddWorker(slow);
  Enqueue("a");
  sinks_["slow"]->congested = true;
  Enqueue("b");
  Enqueue("c");
  EXPECT_EQ(StartedIds(), std::vector<std::string>({"a"}));
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 2u);
  sinks_["slow"]->congested = false;
  dispatcher_.Pump();  // what Engine::WorkerDrained does
  EXPECT_EQ(StartedIds(), std::vector<std::string>({"a", "b", "c"}));
}

// Queue and type names come from clients: nothing of them is kept once a
// queue has nothing ready, running or configured.
TEST_F(DispatcherTest, IdleQueuesAndTypesAreForgotten) {
  for (int i = 0; i < 1000; ++i) {
    dispatcher_.Enqueue(ReadyEntry{absl::StrCat("q", i), absl::StrCat("t", i),
                                   0, ++seq_, Key(absl::StrCat("id", i))});
  }
  EXPECT_EQ(dispatcher_.KnownQueues().size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    dispatcher_.Remove(ReadyEntry{absl::StrCat("q", i), absl::StrCat("t", i),
                                  0, seq_ - 999 + i, Key(absl::StrCat("id", i))});
  }
  EXPECT_TRUE(dispatcher_.KnownQueues().empty());
  // A queue that ran tasks is forgotten once they are released too.
  auto w = Worker("w", {"busy"}, {}, 10);
  dispatcher_.AddWorker(w);
  Enqueue("x", "busy");
  ASSERT_EQ(StartedIds(), std::vector<std::string>({"x"}));
  dispatcher_.Release(w.get(), Key("x"));
  dispatcher_.RemoveWorker(w.get());
  EXPECT_TRUE(dispatcher_.KnownQueues().empty());
  // Settings keep a queue; clearing them lets it go.
  dispatcher_.SetLimits("paused", QueueLimits{true, 0, 0});
  EXPECT_EQ(dispatcher_.KnownQueues().size(), 1u);
  dispatcher_.SetLimits("paused", QueueLimits{});
  EXPECT_TRUE(dispatcher_.KnownQueues().empty());
}

// Strict priority across types holds with many distinct types, for workers
// of every type and of listed types alike.
TEST_F(DispatcherTest, PriorityAcrossManyTypes) {
  for (int i = 0; i < 10000; ++i) {
    Enqueue(absl::StrCat("t", i), "q", absl::StrCat("type", i), i % 9);
  }
  Enqueue("top", "q", "type-last", 9);
  auto all = Worker("all", {"q"}, {}, 1);
  dispatcher_.AddWorker(all);
  EXPECT_EQ(StartedIds(), std::vector<std::string>({"top"}));
  auto listed = Worker("listed", {"q"}, {"type7", "type17"}, 2);
  dispatcher_.AddWorker(listed);
  EXPECT_EQ(StartedOn("listed"), std::vector<std::string>({"t17", "t7"}));
  EXPECT_EQ(dispatcher_.ReadyCount("q"), 9998u);
}

}  // namespace
}  // namespace taskd
