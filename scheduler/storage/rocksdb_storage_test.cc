// RocksDbStorage specifics: open errors, group commit, space reclamation and
// the read-only state after a failed write. Shared behaviour is in
// storage_conformance_test.cc.
#include "scheduler/storage/rocksdb_storage.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "scheduler/storage/fault_injection_fs.h"
#include "scheduler/storage/storage.h"
#include "scheduler/storage/storage_test_util.h"

namespace taskd {
namespace {

constexpr char kLockChildEnv[] = "TASKD_STORAGE_TEST_LOCK_CHILD_DIR";

absl::StatusOr<std::unique_ptr<Storage>> Open(const std::string& dir,
                                              rocksdb::Env* env = nullptr,
                                              bool sync = true) {
  RocksDbStorageOptions options;
  options.data_dir = dir;
  options.env = env;
  options.sync = sync;
  return OpenRocksDbStorage(options);
}

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// Runs only inside the child process started by SecondProcessIsRefused:
// opens the directory and reports the status through a file.
TEST(RocksDbStorageLockChild, OpenAndReport) {
  const char* dir = std::getenv(kLockChildEnv);
  if (dir == nullptr) GTEST_SKIP() << "helper for SecondProcessIsRefused";
  absl::StatusOr<std::unique_ptr<Storage>> storage = Open(dir);
  WriteFile(absl::StrCat(dir, ".child"),
            absl::StrCat(static_cast<int>(storage.status().code()), " ",
                         storage.status().message()));
}

TEST(RocksDbStorageTest, SecondProcessIsRefused) {
  const std::string dir = NewTestDir("lock");
  absl::StatusOr<std::unique_ptr<Storage>> first = Open(dir);
  ASSERT_TRUE(first.ok()) << first.status();

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv(kLockChildEnv, dir.c_str(), 1);
    // The child must not touch this test's result files.
    for (const char* var :
         {"XML_OUTPUT_FILE", "GTEST_OUTPUT", "TEST_PREMATURE_EXIT_FILE",
          "TEST_SHARD_STATUS_FILE"}) {
      unsetenv(var);
    }
    execl("/proc/self/exe", "rocksdb_storage_test",
          "--gtest_filter=RocksDbStorageLockChild.*", nullptr);
    _exit(127);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;

  std::ifstream in(dir + ".child");
  std::string report((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
  EXPECT_TRUE(absl::StartsWith(
      report,
      absl::StrCat(static_cast<int>(absl::StatusCode::kFailedPrecondition),
                   " ")))
      << report;
  EXPECT_TRUE(absl::StrContains(
      report, absl::StrCat("data directory ", dir,
                           " is in use by another taskd process")))
      << report;
  // The first process is unaffected.
  EXPECT_TRUE((*first)->Append({Mutation::PutMeta("k", "v")}).ok());
}

TEST(RocksDbStorageTest, SecondOpenInProcessIsRefused) {
  const std::string dir = NewTestDir("lock_same");
  absl::StatusOr<std::unique_ptr<Storage>> first = Open(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<Storage>> second = Open(dir);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition)
      << second.status();
  EXPECT_TRUE(absl::StrContains(second.status().message(),
                                "is in use by another taskd process"))
      << second.status();
  // Once the first store is closed the directory can be opened again.
  ASSERT_TRUE((*first)->Close().ok());
  EXPECT_TRUE(Open(dir).ok());
}

TEST(RocksDbStorageTest, GarbageCurrentIsDataLoss) {
  const std::string dir = NewTestDir("bad_current");
  {
    absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->Append({Mutation::PutTask(MakeTask("a"))}).ok());
  }
  WriteFile(dir + "/CURRENT", "\x01garbage");
  absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), dir)) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "corrupt")) << s.status();
}

TEST(RocksDbStorageTest, GarbageManifestIsDataLoss) {
  const std::string dir = NewTestDir("bad_manifest");
  {
    absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->Append({Mutation::PutTask(MakeTask("a"))}).ok());
  }
  int manifests = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (absl::StartsWith(entry.path().filename().string(), "MANIFEST-")) {
      WriteFile(entry.path().string(), std::string(4096, '\x5a'));
      ++manifests;
    }
  }
  ASSERT_GT(manifests, 0);
  absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), dir)) << s.status();
}

// One bad record never keeps the store from recovering: it is moved aside
// under its key (kept, counted) and the rest is served.
TEST(RocksDbStorageTest, UndecodableRecordsAreQuarantined) {
  const std::string dir = NewTestDir("bad_record");
  {
    absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->Append({Mutation::PutTask(MakeTask("a"))}).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "t/b", "\xff\xff\xff").ok());
    // What a server once wrote: a string field cut inside a character.
    v1::Task split = MakeTask("c");
    split.mutable_error()->set_message("caf\xC3");
    std::string bytes;
    split.SerializeToString(&bytes);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "t/c", bytes).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "zz", "from the future").ok());
  }
  {
    absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::StatusOr<StoredState> state = ReadAll(**s);
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_EQ(state->tasks.size(), 1u);
    EXPECT_EQ(state->tasks[0].id(), "a");
    EXPECT_EQ((*s)->stats().quarantined, 3u);
    // A second recovery finds nothing new to set aside.
    state = ReadAll(**s);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_EQ((*s)->stats().quarantined, 0u);
    ASSERT_TRUE((*s)->Close().ok());
  }
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "q/t/b", &value).ok());
  EXPECT_EQ(value, "\xff\xff\xff");  // kept as it was, for a human
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "q/t/c", &value).ok());
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "q/zz", &value).ok());
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "t/b", &value).IsNotFound());
}

// PutTaskApart keeps the payload under its own key, PutTask inline; both
// are read back; a payload key with no record before it is set aside.
TEST(RocksDbStorageTest, InlineAndApartPayloadsAndStrayPayloadKeys) {
  const std::string dir = NewTestDir("payload_layout");
  const v1::Task old = MakeTask("o", 50);
  {
    absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE((*s)->Append({Mutation::PutTaskApart(MakeTask("n", 40))}).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "t/n/p", &value).ok());
    EXPECT_EQ(value.size(), 40u);  // the payload apart
    std::string bytes;
    old.SerializeToString(&bytes);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "t/o", bytes).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "t/x/p", "stray").ok());
  }
  absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<StoredState> state = ReadAll(**s);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->tasks.size(), 2u);
  EXPECT_EQ(state->tasks[0].spec().payload(), MakeTask("n", 40).spec().payload());
  EXPECT_EQ(state->tasks[1].spec().payload(), old.spec().payload());
  EXPECT_EQ((*s)->stats().quarantined, 1u);
}

TEST(RocksDbStorageTest, PathThatIsAFileIsRefused) {
  const std::string dir = NewTestDir("file");
  const std::string file = dir + "/plain";
  WriteFile(file, "x");
  absl::StatusOr<std::unique_ptr<Storage>> s = Open(file);
  ASSERT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition)
      << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "not a directory"))
      << s.status();
  s = Open(file + "/below");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition)
      << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "Not a directory"))
      << s.status();
}

TEST(RocksDbStorageTest, UnwritableDirectoryIsRefused) {
  if (geteuid() == 0) GTEST_SKIP() << "root may write anywhere";
  const std::string dir = NewTestDir("readonly");
  ASSERT_EQ(chmod(dir.c_str(), 0500), 0);
  absl::StatusOr<std::unique_ptr<Storage>> s = Open(dir);
  chmod(dir.c_str(), 0700);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied)
      << s.status();
}

// Waits, without sleeping on a guess, until `done` holds; fails after 30 s.
template <typename Fn>
bool WaitFor(Fn done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Deterministic group commit: the first commit's WAL sync is held open
// until every other appender is queued; they must then share one sync.
TEST(RocksDbStorageTest, QueuedAppendsShareOneSync) {
  constexpr int kAppenders = 32;
  const std::string dir = NewTestDir("group");
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  absl::StatusOr<std::unique_ptr<Storage>> opened = Open(dir, env.get());
  ASSERT_TRUE(opened.ok()) << opened.status();
  Storage& storage = **opened;

  absl::Notification sync_entered, release_sync;
  absl::Mutex hook_mu;
  bool first = true;
  fs->SetSyncHook([&] {
    {
      absl::MutexLock lock(&hook_mu);
      if (!first) return;
      first = false;
    }
    sync_entered.Notify();
    release_sync.WaitForNotification();
  });

  std::vector<absl::Status> results(kAppenders);
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    results[0] = storage.Append({Mutation::PutTask(MakeTask("g-00"))});
  });
  sync_entered.WaitForNotification();
  for (int i = 1; i < kAppenders; ++i) {
    threads.emplace_back([&, i] {
      results[i] = storage.Append(
          {Mutation::PutTask(MakeTask(absl::StrFormat("g-%02d", i)))});
    });
  }
  const bool queued =
      WaitFor([&] { return storage.stats().pending_appends == kAppenders; });
  release_sync.Notify();
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(queued) << "appenders did not queue";
  for (const absl::Status& s : results) EXPECT_TRUE(s.ok()) << s;

  StorageStats stats = storage.stats();
  EXPECT_EQ(stats.appends, uint64_t{kAppenders});
  EXPECT_EQ(stats.commits, 2u);
  EXPECT_EQ(stats.syncs, 2u);
  EXPECT_EQ(stats.pending_appends, 0u);
  absl::StatusOr<StoredState> state = ReadAll(storage);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->tasks.size(), size_t{kAppenders});
}

// Free-running: 32 appenders in sync mode need fewer syncs than appends.
TEST(RocksDbStorageTest, ConcurrentSyncAppendsAreGrouped) {
  constexpr int kAppenders = 32;
  constexpr int kPerAppender = 50;
  const std::string dir = NewTestDir("group_free");
  absl::StatusOr<std::unique_ptr<Storage>> opened = Open(dir);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Storage& storage = **opened;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  const absl::Time start = absl::Now();
  for (int t = 0; t < kAppenders; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerAppender; ++i) {
        absl::Status s = storage.Append({Mutation::PutTask(
            MakeTask(absl::StrFormat("f-%02d-%03d", t, i), 256))});
        if (!s.ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(failures.load(), 0);
  StorageStats stats = storage.stats();
  EXPECT_EQ(stats.appends, uint64_t{kAppenders * kPerAppender});
  EXPECT_EQ(stats.syncs, stats.commits);
  EXPECT_LT(stats.syncs, stats.appends);
  std::printf(
      "group commit: %llu appends, %llu syncs (%.1f appends/sync), "
      "%.0f appends/s\n",
      static_cast<unsigned long long>(stats.appends),
      static_cast<unsigned long long>(stats.syncs),
      static_cast<double>(stats.appends) / stats.syncs,
      stats.appends / absl::ToDoubleSeconds(elapsed));
}

TEST(RocksDbStorageTest, CompactReclaimsDeletedSpace) {
  const std::string dir = NewTestDir("compact");
  absl::StatusOr<std::unique_ptr<Storage>> opened = Open(dir);
  ASSERT_TRUE(opened.ok()) << opened.status();
  Storage& storage = **opened;
  constexpr int kTasks = 4000;
  for (int b = 0; b < kTasks / 100; ++b) {
    std::vector<Mutation> batch;
    for (int i = b * 100; i < (b + 1) * 100; ++i) {
      batch.push_back(
          Mutation::PutTask(MakeTask(absl::StrFormat("r-%05d", i), 2048)));
    }
    ASSERT_TRUE(storage.Append(std::move(batch)).ok());
  }
  ASSERT_TRUE(storage.Compact().ok());
  const uint64_t full = DirectorySize(dir);
  ASSERT_GT(full, uint64_t{kTasks} * 2048);

  for (int b = 0; b < kTasks / 100; ++b) {
    std::vector<Mutation> batch;
    for (int i = b * 100; i < (b + 1) * 100; ++i) {
      batch.push_back(Mutation::DeleteTask(absl::StrFormat("r-%05d", i)));
    }
    ASSERT_TRUE(storage.Append(std::move(batch)).ok());
  }
  const uint64_t with_tombstones = DirectorySize(dir);
  ASSERT_TRUE(storage.Compact().ok());
  const uint64_t compacted = DirectorySize(dir);
  std::printf("disk: %llu bytes full, %llu after deletes, %llu compacted\n",
              static_cast<unsigned long long>(full),
              static_cast<unsigned long long>(with_tombstones),
              static_cast<unsigned long long>(compacted));
  EXPECT_LT(compacted, full / 4);
  absl::StatusOr<StoredState> state = ReadAll(storage);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->tasks.empty());
}

TEST(RocksDbStorageTest, FailedWriteMakesStoreReadOnly) {
  const std::string dir = NewTestDir("disk_full");
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  {
    absl::StatusOr<std::unique_ptr<Storage>> opened = Open(dir, env.get());
    ASSERT_TRUE(opened.ok()) << opened.status();
    Storage& storage = **opened;
    ASSERT_TRUE(storage.Append({Mutation::PutTask(MakeTask("before"))}).ok());

    fs->FailWritesWith(rocksdb::IOStatus::NoSpace("injected: disk full"));
    absl::Status s = storage.Append({Mutation::PutTask(MakeTask("during"))});
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "disk full")) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "read-only")) << s;

    // The disk has room again, but the store stays read-only: the engine
    // must not acknowledge anything more until it restarts and recovers.
    fs->FailWritesWith(rocksdb::IOStatus::OK());
    s = storage.Append({Mutation::PutTask(MakeTask("after"))});
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "disk full")) << s;
    StorageStats stats = storage.stats();
    EXPECT_EQ(stats.appends, 1u);
    EXPECT_EQ(stats.failed_appends, 2u);
    storage.Close().IgnoreError();
  }
  absl::StatusOr<std::unique_ptr<Storage>> reopened = Open(dir, env.get());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<StoredState> state = ReadAll(**reopened);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_GE(state->tasks.size(), 1u);
  EXPECT_EQ(state->tasks[0].id(), "before");
  for (const v1::Task& task : state->tasks) EXPECT_NE(task.id(), "after");
}

}  // namespace
}  // namespace taskd
