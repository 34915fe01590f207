// One behavioural suite run against every Storage implementation.
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "scheduler/storage/memory_storage.h"
#include "scheduler/storage/rocksdb_storage.h"
#include "scheduler/storage/storage.h"
#include "scheduler/storage/storage_test_util.h"

namespace taskd {
namespace {

using ::google::protobuf::util::MessageDifferencer;

struct StoreKind {
  std::string name;
  // False for stores whose content ends with the object.
  bool persistent;
  std::function<absl::StatusOr<std::unique_ptr<Storage>>(
      const std::string& dir)>
      open;
};

std::ostream& operator<<(std::ostream& os, const StoreKind& kind) {
  return os << kind.name;
}

std::vector<StoreKind> AllStores() {
  auto rocksdb = [](bool sync) {
    return [sync](const std::string& dir) {
      RocksDbStorageOptions options;
      options.data_dir = dir;
      options.sync = sync;
      return OpenRocksDbStorage(options);
    };
  };
  return {
      {"Memory", false,
       [](const std::string&) -> absl::StatusOr<std::unique_ptr<Storage>> {
         return NewMemoryStorage();
       }},
      {"RocksDbSync", true, rocksdb(true)},
      {"RocksDbAsync", true, rocksdb(false)},
  };
}

class StorageConformanceTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    dir_ = NewTestDir(GetParam().name);
    Open();
  }

  void Open() {
    storage_.reset();
    absl::StatusOr<std::unique_ptr<Storage>> storage = GetParam().open(dir_);
    ASSERT_TRUE(storage.ok()) << storage.status();
    storage_ = *std::move(storage);
  }

  void Append(std::vector<Mutation> batch) {
    absl::Status s = storage_->Append(std::move(batch));
    ASSERT_TRUE(s.ok()) << s;
  }

  StoredState Read() {
    absl::StatusOr<StoredState> state = ReadAll(*storage_);
    EXPECT_TRUE(state.ok()) << state.status();
    return state.ok() ? *std::move(state) : StoredState{};
  }

  static std::vector<std::string> Ids(const StoredState& state) {
    std::vector<std::string> ids;
    for (const v1::Task& task : state.tasks) ids.push_back(task.id());
    return ids;
  }

  std::string dir_;
  std::unique_ptr<Storage> storage_;
};

TEST_P(StorageConformanceTest, EmptyStoreRecoversNothing) {
  StoredState state = Read();
  EXPECT_TRUE(state.tasks.empty());
  EXPECT_TRUE(state.meta.empty());
}

TEST_P(StorageConformanceTest, RecoverVisitsMetaThenTasksInIdOrder) {
  v1::Task b = MakeTask("b", 100);
  b.set_state(v1::TASK_STATE_RUNNING);
  b.set_attempt(2);
  Append({Mutation::PutTask(MakeTask("c")), Mutation::PutTask(b)});
  Append({Mutation::PutMeta("seq", "17"), Mutation::PutTask(MakeTask("a"))});
  Append({Mutation::PutMeta("other", "x")});

  std::vector<std::string> visits;
  absl::Status s = storage_->Recover(
      [&](const v1::Task& task) {
        visits.push_back("task " + task.id());
        if (task.id() == "b") {
          EXPECT_TRUE(MessageDifferencer::Equals(task, b))
              << task.DebugString();
        }
        return absl::OkStatus();
      },
      [&](absl::string_view key, absl::string_view value) {
        visits.push_back(absl::StrCat("meta ", key, "=", value));
        return absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(visits, (std::vector<std::string>{"meta other=x", "meta seq=17",
                                              "task a", "task b", "task c"}));
}

TEST_P(StorageConformanceTest, PutOverwritesAndDeleteRemoves) {
  Append({Mutation::PutTask(MakeTask("t1")), Mutation::PutTask(MakeTask("t2")),
          Mutation::PutTask(MakeTask("t3"))});
  v1::Task done = MakeTask("t2");
  done.set_state(v1::TASK_STATE_SUCCEEDED);
  done.set_result("ok");
  Append({Mutation::PutTask(done)});
  Append({Mutation::DeleteTask("t1"), Mutation::DeleteTask("missing")});

  StoredState state = Read();
  ASSERT_EQ(Ids(state), (std::vector<std::string>{"t2", "t3"}));
  EXPECT_EQ(state.tasks[0].state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(state.tasks[0].result(), "ok");
}

// A state change writes the small record only; the payload stored apart by
// PutTaskApart stays, until the task is deleted.
TEST_P(StorageConformanceTest, PutTaskStateKeepsThePayload) {
  const v1::Task submitted = MakeTask("k", 3000);
  Append({Mutation::PutTaskApart(submitted),
          Mutation::PutTask(MakeTask("l", 10))});
  v1::Task running = submitted;
  running.set_state(v1::TASK_STATE_RUNNING);
  running.mutable_spec()->clear_payload();
  Append({Mutation::PutTaskState(running)});
  running.set_attempt(2);
  running.mutable_spec()->set_payload("ignored");
  Append({Mutation::PutTaskState(running)});

  StoredState state = Read();
  ASSERT_EQ(Ids(state), (std::vector<std::string>{"k", "l"}));
  EXPECT_EQ(state.tasks[0].state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(state.tasks[0].attempt(), 2);
  EXPECT_EQ(state.tasks[0].spec().payload(), submitted.spec().payload());

  Append({Mutation::DeleteTask("k")});
  EXPECT_EQ(Ids(Read()), (std::vector<std::string>{"l"}));
  EXPECT_EQ(storage_->stats().quarantined, 0u);  // nothing left behind
}

// The encoded forms store exactly what the message forms do.
TEST_P(StorageConformanceTest, EncodedTasksStoreLikeMessages) {
  const v1::Task small = MakeTask("a", 10);
  v1::Task large = MakeTask("b", 3000);
  const std::string payload = large.spec().payload();
  large.mutable_spec()->clear_payload();
  Append({Mutation::PutEncodedTask(Mutation::Kind::kPutTask, "a",
                                   small.SerializeAsString()),
          Mutation::PutEncodedTask(Mutation::Kind::kPutTaskApart, "b",
                                   large.SerializeAsString(), payload)});
  large.set_state(v1::TASK_STATE_RUNNING);
  Append({Mutation::PutEncodedTask(Mutation::Kind::kPutTaskState, "b",
                                   large.SerializeAsString())});

  StoredState state = Read();
  ASSERT_EQ(Ids(state), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(MessageDifferencer::Equals(state.tasks[0], small));
  EXPECT_EQ(state.tasks[1].state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(state.tasks[1].spec().payload(), payload);
  Append({Mutation::DeleteTask("b")});
  EXPECT_EQ(Ids(Read()), (std::vector<std::string>{"a"}));
  EXPECT_EQ(storage_->stats().quarantined, 0u);
}

TEST_P(StorageConformanceTest, MutationsInOneBatchApplyInOrder) {
  Append({Mutation::PutTask(MakeTask("x")), Mutation::DeleteTask("x"),
          Mutation::PutMeta("k", "1"), Mutation::PutMeta("k", "2"),
          Mutation::PutTask(MakeTask("y")), Mutation::DeleteTask("y"),
          Mutation::PutTask(MakeTask("y", 3))});
  StoredState state = Read();
  EXPECT_EQ(Ids(state), (std::vector<std::string>{"y"}));
  EXPECT_EQ(state.tasks[0].spec().payload().size(), 3u);
  ASSERT_EQ(state.meta.size(), 1u);
  EXPECT_EQ(state.meta[0].second, "2");
}

TEST_P(StorageConformanceTest, MetaPutOverwriteDelete) {
  Append({Mutation::PutMeta("event_seq", "1"), Mutation::PutMeta("a", "")});
  Append({Mutation::PutMeta("event_seq", "2")});
  Append({Mutation::DeleteMeta("a"), Mutation::DeleteMeta("never")});
  StoredState state = Read();
  ASSERT_EQ(state.meta.size(), 1u);
  EXPECT_EQ(state.meta[0].first, "event_seq");
  EXPECT_EQ(state.meta[0].second, "2");
  EXPECT_TRUE(state.tasks.empty());
}

TEST_P(StorageConformanceTest, MetaAndTaskNamespacesAreSeparate) {
  Append(
      {Mutation::PutMeta("same", "meta"), Mutation::PutTask(MakeTask("same"))});
  Append({Mutation::DeleteTask("same")});
  StoredState state = Read();
  EXPECT_TRUE(state.tasks.empty());
  ASSERT_EQ(state.meta.size(), 1u);
  EXPECT_EQ(state.meta[0].second, "meta");
}

TEST_P(StorageConformanceTest, BinaryValuesSurvive) {
  const std::string value("\0\xff\n/t/m", 7);
  Append({Mutation::PutMeta("bin", value)});
  StoredState state = Read();
  ASSERT_EQ(state.meta.size(), 1u);
  EXPECT_EQ(state.meta[0].second, value);
}

TEST_P(StorageConformanceTest, InvalidBatchIsRejectedWhole) {
  Mutation mismatched = Mutation::PutTask(MakeTask("real"));
  mismatched.key = "other";
  for (Mutation bad : {Mutation::DeleteTask(""), Mutation::PutMeta("", "v"),
                       Mutation::PutTask(MakeTask("")), mismatched}) {
    absl::Status s =
        storage_->Append({Mutation::PutTask(MakeTask("good")), std::move(bad)});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  }
  EXPECT_TRUE(Read().tasks.empty());
}

TEST_P(StorageConformanceTest, EmptyBatchIsOk) {
  EXPECT_TRUE(storage_->Append({}).ok());
  EXPECT_TRUE(Read().tasks.empty());
}

TEST_P(StorageConformanceTest, VisitorErrorStopsRecover) {
  Append({Mutation::PutTask(MakeTask("1")), Mutation::PutTask(MakeTask("2")),
          Mutation::PutTask(MakeTask("3"))});
  int visited = 0;
  absl::Status s = storage_->Recover(
      [&](const v1::Task&) {
        ++visited;
        return visited == 2 ? absl::AbortedError("stop") : absl::OkStatus();
      },
      nullptr);
  EXPECT_EQ(s, absl::AbortedError("stop"));
  EXPECT_EQ(visited, 2);
}

TEST_P(StorageConformanceTest, VisitorDataLossQuarantinesTheRecord) {
  Append({Mutation::PutTask(MakeTask("1")), Mutation::PutTask(MakeTask("2")),
          Mutation::PutTask(MakeTask("3")), Mutation::PutMeta("bad", "x")});
  std::vector<std::string> visited;
  absl::Status s = storage_->Recover(
      [&](const v1::Task& task) {
        visited.push_back(task.id());
        return task.id() == "2" ? absl::DataLossError("no valid state")
                                : absl::OkStatus();
      },
      [&](absl::string_view key, absl::string_view) {
        return key == "bad" ? absl::DataLossError("not a number")
                            : absl::OkStatus();
      });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(visited, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(storage_->stats().quarantined, 2u);
  StoredState after = Read();  // set aside: never visited again
  EXPECT_EQ(Ids(after), (std::vector<std::string>{"1", "3"}));
  EXPECT_TRUE(after.meta.empty());
}

TEST_P(StorageConformanceTest, VisitorMayAppend) {
  Append({Mutation::PutTask(MakeTask("a")), Mutation::PutTask(MakeTask("b"))});
  absl::Status s = storage_->Recover(
      [&](const v1::Task& task) {
        return storage_->Append({Mutation::PutMeta("seen_" + task.id(), "1")});
      },
      nullptr);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Read().meta.size(), 2u);
}

TEST_P(StorageConformanceTest, ReopenKeepsEverything) {
  if (!GetParam().persistent) GTEST_SKIP() << "store does not persist";
  Append({Mutation::PutTask(MakeTask("a")), Mutation::PutTask(MakeTask("b")),
          Mutation::PutMeta("seq", "99")});
  Append({Mutation::DeleteTask("a"), Mutation::PutTask(MakeTask("c"))});
  ASSERT_TRUE(storage_->Close().ok());
  Open();
  StoredState state = Read();
  EXPECT_EQ(Ids(state), (std::vector<std::string>{"b", "c"}));
  ASSERT_EQ(state.meta.size(), 1u);
  EXPECT_EQ(state.meta[0].second, "99");
  // The reopened store keeps accepting writes.
  Append({Mutation::PutTask(MakeTask("d"))});
  EXPECT_EQ(Ids(Read()).size(), 3u);
}

TEST_P(StorageConformanceTest, ConcurrentAppendsAreAllVisible) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 200;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = absl::StrFormat("t%02d-%05d", t, i);
        absl::Status s =
            storage_->Append({Mutation::PutTask(MakeTask(id)),
                              Mutation::PutMeta(absl::StrCat("last-", t), id)});
        if (!s.ok()) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << t;

  StoredState state = Read();
  ASSERT_EQ(state.tasks.size(), size_t{kThreads * kPerThread});
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(state.tasks[t * kPerThread + i].id(),
                absl::StrFormat("t%02d-%05d", t, i));
    }
  }
  ASSERT_EQ(state.meta.size(), size_t{kThreads});
  for (const auto& [key, value] : state.meta) {
    EXPECT_EQ(value.substr(value.size() - 5), "00199") << key;
  }
  StorageStats stats = storage_->stats();
  EXPECT_EQ(stats.appends, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(stats.mutations, uint64_t{2 * kThreads * kPerThread});
  EXPECT_GE(stats.commits, 1u);
  EXPECT_LE(stats.commits, stats.appends);
  EXPECT_EQ(stats.failed_appends, 0u);
}

TEST_P(StorageConformanceTest, LargeBatch) {
  // 20,000 mutations, ~10 MiB: larger than one group commit's byte budget.
  std::vector<Mutation> batch;
  for (int i = 0; i < 20000; ++i) {
    batch.push_back(
        Mutation::PutTask(MakeTask(absl::StrFormat("big-%06d", i), 512)));
  }
  Append(std::move(batch));
  StoredState state = Read();
  ASSERT_EQ(state.tasks.size(), 20000u);
  EXPECT_EQ(state.tasks.front().id(), "big-000000");
  EXPECT_EQ(state.tasks.back().id(), "big-019999");
  EXPECT_EQ(state.tasks.back().spec().payload(),
            MakeTask("big-019999", 512).spec().payload());
}

TEST_P(StorageConformanceTest, CompactKeepsLiveRecords) {
  std::vector<Mutation> puts, deletes;
  for (int i = 0; i < 1000; ++i) {
    std::string id = absl::StrFormat("c-%04d", i);
    puts.push_back(Mutation::PutTask(MakeTask(id, 200)));
    if (i % 2 == 0) deletes.push_back(Mutation::DeleteTask(id));
  }
  Append(std::move(puts));
  Append(std::move(deletes));
  ASSERT_TRUE(storage_->Compact().ok());
  StoredState state = Read();
  ASSERT_EQ(state.tasks.size(), 500u);
  EXPECT_EQ(state.tasks[0].id(), "c-0001");
}

TEST_P(StorageConformanceTest, ClosedStoreRefusesCalls) {
  Append({Mutation::PutTask(MakeTask("a"))});
  ASSERT_TRUE(storage_->Close().ok());
  EXPECT_TRUE(storage_->Close().ok());
  EXPECT_EQ(storage_->Append({Mutation::PutTask(MakeTask("b"))}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReadAll(*storage_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(storage_->Compact().code(), absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(AllStores, StorageConformanceTest,
                         ::testing::ValuesIn(AllStores()),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace taskd
