#include "scheduler/journal.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "scheduler/clock.h"
#include "scheduler/storage/memory_storage.h"

namespace taskd {
namespace {

v1::Task MakeTask(const std::string& id, const std::string& result) {
  v1::Task t;
  t.set_id(id);
  t.set_result(result);
  return t;
}

std::vector<v1::Task> ReadTasks(Storage& storage) {
  std::vector<v1::Task> out;
  EXPECT_TRUE(storage
                  .Recover(
                      [&](const v1::Task& t) {
                        out.push_back(t);
                        return absl::OkStatus();
                      },
                      nullptr)
                  .ok());
  return out;
}

// A Storage whose Append blocks until released, or fails on demand.
class GatedStorage final : public Storage {
 public:
  absl::Status Append(std::vector<Mutation> batch) override {
    absl::MutexLock lock(&mu_);
    ++appends_;
    entered_ = true;
    mu_.Await(absl::Condition(&open_));
    if (!fail_with_.ok()) return fail_with_;
    for (auto& m : batch) keys_.push_back(m.key);
    return absl::OkStatus();
  }
  absl::Status Recover(
      const std::function<absl::Status(v1::Task&)>&,
      const std::function<absl::Status(absl::string_view, absl::string_view)>&)
      override {
    return absl::OkStatus();
  }
  absl::Status Compact() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }
  StorageStats stats() const override { return {}; }

  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  void WaitEntered() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&entered_));
  }
  void FailWith(absl::Status s) {
    absl::MutexLock lock(&mu_);
    fail_with_ = s;
  }
  int appends() {
    absl::MutexLock lock(&mu_);
    return appends_;
  }
  std::vector<std::string> keys() {
    absl::MutexLock lock(&mu_);
    return keys_;
  }

 private:
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  bool entered_ ABSL_GUARDED_BY(mu_) = false;
  int appends_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_with_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> keys_ ABSL_GUARDED_BY(mu_);
};

TEST(JournalTest, CallbackRunsAfterTheWriteIsStored) {
  auto storage = NewMemoryStorage();
  Journal journal(storage.get(), nullptr);
  uint64_t t = journal.Write({Mutation::PutTask(MakeTask("a", "1"))});
  EXPECT_EQ(t, 1u);
  absl::Notification done;
  absl::Status got = absl::UnknownError("not called");
  journal.WhenDurable(t, [&](absl::Status s) {
    got = s;
    // By now the task must be in the store.
    EXPECT_EQ(ReadTasks(*storage).size(), 1u);
    done.Notify();
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(got.ok()) << got;
  // An already durable ticket calls back at once, on this thread.
  bool inline_call = false;
  journal.WhenDurable(t, [&](absl::Status s) { inline_call = s.ok(); });
  EXPECT_TRUE(inline_call);
}

// Answering a group's callers runs beside the next commit: a callback still
// running does not hold up the write after it (callbacks must not block;
// this one waits only to show what runs meanwhile).
TEST(JournalTest, CallbacksDoNotHoldUpTheNextCommit) {
  struct SecondCommit final : JournalObserver {
    void OnCommit(size_t, absl::Duration, bool) override {
      if (++commits == 2) seen.Notify();
    }
    std::atomic<int> commits{0};
    absl::Notification seen;
  } observer;
  // Declared before the journal: its notifier thread uses them until the
  // journal is destroyed.
  absl::Notification in_callback, release;
  auto storage = NewMemoryStorage();
  Journal journal(storage.get(), nullptr, &observer);
  uint64_t first = journal.Write({Mutation::PutTask(MakeTask("a", "1"))});
  journal.WhenDurable(first, [&](absl::Status) {
    in_callback.Notify();
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
  });
  ASSERT_TRUE(in_callback.WaitForNotificationWithTimeout(absl::Seconds(10)));
  journal.Write({Mutation::PutTask(MakeTask("b", "2"))});
  // Committed while the first callback still runs.
  EXPECT_TRUE(observer.seen.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(ReadTasks(*storage).size(), 2u);
  release.Notify();
}

TEST(JournalTest, WritesToOneKeyKeepTheirOrder) {
  auto storage = NewMemoryStorage();
  Journal journal(storage.get(), nullptr);
  uint64_t last = 0;
  for (int i = 0; i < 1000; ++i) {
    last = journal.Write({Mutation::PutTask(MakeTask("k", std::to_string(i)))});
  }
  absl::Notification done;
  journal.WhenDurable(last, [&](absl::Status) { done.Notify(); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto tasks = ReadTasks(*storage);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].result(), "999");
}

TEST(JournalTest, WritesQueuedDuringACommitShareTheNextOne) {
  GatedStorage storage;
  Journal journal(&storage, nullptr);
  uint64_t first = journal.Write({Mutation::PutTask(MakeTask("first", ""))});
  storage.WaitEntered();  // the committer is inside Append with "first"
  std::atomic<int> acked{0};
  uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    last = journal.Write({Mutation::PutTask(MakeTask(std::to_string(i), ""))});
    journal.WhenDurable(last, [&](absl::Status s) { acked += s.ok(); });
  }
  EXPECT_EQ(acked.load(), 0);
  absl::Notification done;
  journal.WhenDurable(last, [&](absl::Status) { done.Notify(); });
  storage.Open();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(acked.load(), 50);
  EXPECT_EQ(storage.appends(), 2);  // "first", then all 50 together
  EXPECT_EQ(storage.keys().size(), 51u);
  EXPECT_LT(first, last);
}

TEST(JournalTest, FailureReachesEveryWaiterAndStopsWriting) {
  GatedStorage storage;
  std::atomic<int> failures{0};
  Journal journal(&storage,
                  [&](const absl::Status&) { failures.fetch_add(1); });
  storage.FailWith(absl::ResourceExhaustedError("disk full"));
  uint64_t t = journal.Write({Mutation::PutTask(MakeTask("a", ""))});
  absl::Notification done;
  absl::Status got;
  journal.WhenDurable(t, [&](absl::Status s) {
    got = s;
    done.Notify();
  });
  storage.Open();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(got.message().find("disk full"), absl::string_view::npos) << got;

  // Later writes are never attempted and report the same failure.
  uint64_t t2 = journal.Write({Mutation::PutTask(MakeTask("b", ""))});
  absl::Notification done2;
  absl::Status got2;
  journal.WhenDurable(t2, [&](absl::Status s) {
    got2 = s;
    done2.Notify();
  });
  ASSERT_TRUE(done2.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(got2.code(), absl::StatusCode::kUnavailable);
  journal.Stop();
  EXPECT_EQ(failures.load(), 1);
  EXPECT_EQ(storage.appends(), 1);
}

TEST(JournalTest, StopCommitsWhatIsQueuedThenRefuses) {
  auto storage = NewMemoryStorage();
  Journal journal(storage.get(), nullptr);
  std::atomic<int> ok{0};
  for (int i = 0; i < 100; ++i) {
    uint64_t t =
        journal.Write({Mutation::PutTask(MakeTask(std::to_string(i), ""))});
    journal.WhenDurable(t, [&](absl::Status s) { ok += s.ok(); });
  }
  journal.Stop();
  EXPECT_EQ(ok.load(), 100);
  EXPECT_EQ(ReadTasks(*storage).size(), 100u);
  uint64_t late = journal.Write({Mutation::PutTask(MakeTask("late", ""))});
  absl::Status got;
  journal.WhenDurable(late, [&](absl::Status s) { got = s; });
  EXPECT_EQ(got.code(), absl::StatusCode::kUnavailable);
}

// Records what the journal reports per commit.
class RecordingObserver final : public JournalObserver {
 public:
  void OnCommit(size_t changes, absl::Duration elapsed, bool ok) override {
    absl::MutexLock lock(&mu_);
    commits_.push_back({changes, elapsed, ok});
  }
  struct Commit {
    size_t changes;
    absl::Duration elapsed;
    bool ok;
  };
  std::vector<Commit> commits() {
    absl::MutexLock lock(&mu_);
    return commits_;
  }

 private:
  absl::Mutex mu_;
  std::vector<Commit> commits_ ABSL_GUARDED_BY(mu_);
};

// A storage whose Append takes 7 ms of a FakeClock.
class SlowStorage final : public Storage {
 public:
  explicit SlowStorage(FakeClock* clock) : clock_(clock) {}
  absl::Status Append(std::vector<Mutation> batch) override {
    clock_->Advance(absl::Milliseconds(7));
    return absl::OkStatus();
  }
  absl::Status Recover(
      const std::function<absl::Status(v1::Task&)>&,
      const std::function<absl::Status(absl::string_view, absl::string_view)>&)
      override {
    return absl::OkStatus();
  }
  absl::Status Compact() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }
  StorageStats stats() const override { return {}; }

 private:
  FakeClock* const clock_;
};

TEST(JournalTest, ObserverSeesEachCommitItsChangesAndItsLatency) {
  FakeClock clock;
  SlowStorage storage(&clock);
  RecordingObserver observer;
  Journal journal(&storage, nullptr, &observer, &clock);
  // One write of three mutations is one commit of three changes.
  std::vector<Mutation> three;
  for (int i = 0; i < 3; ++i) {
    three.push_back(Mutation::PutTask(MakeTask(std::to_string(i), "")));
  }
  uint64_t t = journal.Write(std::move(three));
  absl::Notification done;
  journal.WhenDurable(t, [&](absl::Status) { done.Notify(); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto commits = observer.commits();
  ASSERT_EQ(commits.size(), 1u);
  EXPECT_EQ(commits[0].changes, 3u);
  EXPECT_EQ(commits[0].elapsed, absl::Milliseconds(7));
  EXPECT_TRUE(commits[0].ok);
}

TEST(JournalTest, ObserverSeesWritesGroupedIntoOneCommit) {
  GatedStorage storage;
  RecordingObserver observer;
  Journal journal(&storage, nullptr, &observer);
  journal.Write({Mutation::PutTask(MakeTask("first", ""))});
  storage.WaitEntered();  // the committer holds "first"; the rest queue up
  uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    last = journal.Write({Mutation::PutTask(MakeTask(std::to_string(i), ""))});
  }
  absl::Notification done;
  journal.WhenDurable(last, [&](absl::Status) { done.Notify(); });
  storage.Open();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto commits = observer.commits();
  ASSERT_EQ(commits.size(), 2u);
  EXPECT_EQ(commits[0].changes, 1u);
  EXPECT_EQ(commits[1].changes, 20u);
}

TEST(JournalTest, ObserverIsToldOfAFailedCommit) {
  GatedStorage storage;
  RecordingObserver observer;
  Journal journal(&storage, [](const absl::Status&) {}, &observer);
  storage.FailWith(absl::DataLossError("disk"));
  storage.Open();
  uint64_t t = journal.Write({Mutation::PutTask(MakeTask("a", ""))});
  absl::Notification done;
  journal.WhenDurable(t, [&](absl::Status) { done.Notify(); });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  auto commits = observer.commits();
  ASSERT_EQ(commits.size(), 1u);
  EXPECT_FALSE(commits[0].ok);
}

}  // namespace
}  // namespace taskd
