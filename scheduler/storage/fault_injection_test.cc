// Crash tests: appends from several threads, a simulated power loss at an
// arbitrary moment (FaultInjectionFileSystem drops every unsynced byte), a
// reopen, and a check that every acknowledged change survived.
#include <atomic>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "scheduler/storage/fault_injection_fs.h"
#include "scheduler/storage/rocksdb_storage.h"
#include "scheduler/storage/storage.h"
#include "scheduler/storage/storage_test_util.h"

namespace taskd {
namespace {

struct CrashResult {
  std::set<std::string> acknowledged;  // ids whose Append returned OK
  std::set<std::string> recovered;     // ids found after the crash
  uint64_t dropped_bytes = 0;
  StorageStats stats;
};

// Runs `threads` appenders (one task per Append) until `crash_after`
// appends were acknowledged, crashes the disk while they keep going, lets
// them all fail, then drops unsynced data and reopens the store.
// In sync mode the crash hits at the start of the next sync, i.e. while a
// group commit's WAL records are written but not yet synced.
CrashResult RunCrash(const std::string& name, bool sync,
                     size_t write_buffer_size, int threads, int crash_after) {
  CrashResult result;
  const std::string dir = NewTestDir(name);
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  RocksDbStorageOptions options;
  options.data_dir = dir;
  options.sync = sync;
  options.env = env.get();
  options.write_buffer_size = write_buffer_size;
  {
    absl::StatusOr<std::unique_ptr<Storage>> opened =
        OpenRocksDbStorage(options);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return result;
    Storage& storage = **opened;

    absl::Mutex mu;
    int acked = 0;  // guarded by mu
    std::vector<std::vector<std::string>> acked_ids(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        for (int i = 0;; ++i) {
          std::string id = absl::StrFormat("crash-%02d-%06d", t, i);
          absl::Status s = storage.Append(
              {Mutation::PutTask(MakeTask(id, 300)),
               Mutation::PutMeta(absl::StrFormat("last-%02d", t), id)});
          if (!s.ok()) return;  // after the crash: read-only for good
          acked_ids[t].push_back(id);
          absl::MutexLock lock(&mu);
          ++acked;
        }
      });
    }
    {
      std::pair<int*, int> until(&acked, crash_after);
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](std::pair<int*, int>* a) { return *a->first >= a->second; },
          &until));
    }
    // Appenders are still running: some writes are in flight.
    if (sync) {
      fs->CrashAtNextSync();
    } else {
      fs->Crash();
    }
    for (std::thread& w : workers) w.join();
    for (const auto& ids : acked_ids) {
      result.acknowledged.insert(ids.begin(), ids.end());
    }
    EXPECT_TRUE(fs->crashed());
    result.stats = storage.stats();
    storage.Close().IgnoreError();
  }
  absl::Status dropped = fs->DropUnsyncedData();
  EXPECT_TRUE(dropped.ok()) << dropped;
  result.dropped_bytes = fs->dropped_bytes();

  absl::StatusOr<std::unique_ptr<Storage>> reopened =
      OpenRocksDbStorage(options);
  EXPECT_TRUE(reopened.ok()) << reopened.status();
  if (!reopened.ok()) return result;
  absl::StatusOr<StoredState> state = ReadAll(**reopened);
  EXPECT_TRUE(state.ok()) << state.status();
  if (!state.ok()) return result;
  for (const v1::Task& task : state->tasks) {
    EXPECT_EQ(task.spec().payload(), MakeTask(task.id(), 300).spec().payload())
        << task.id();
    result.recovered.insert(task.id());
  }
  // The store works after recovery.
  EXPECT_TRUE((*reopened)->Append({Mutation::PutMeta("after", "crash")}).ok());
  return result;
}

size_t CountLost(const CrashResult& r) {
  size_t lost = 0;
  for (const std::string& id : r.acknowledged) lost += !r.recovered.count(id);
  return lost;
}

void Report(const char* what, const CrashResult& r) {
  std::printf(
      "%s: %zu acknowledged, %zu recovered, %zu lost, %llu unsynced "
      "bytes dropped; %llu appends in %llu commits, %llu syncs\n",
      what, r.acknowledged.size(), r.recovered.size(), CountLost(r),
      static_cast<unsigned long long>(r.dropped_bytes),
      static_cast<unsigned long long>(r.stats.appends),
      static_cast<unsigned long long>(r.stats.commits),
      static_cast<unsigned long long>(r.stats.syncs));
}

TEST(FaultInjectionTest, SyncModeLosesNoAcknowledgedAppend) {
  CrashResult r = RunCrash("crash_sync", /*sync=*/true,
                           /*write_buffer_size=*/8 << 20, /*threads=*/8,
                           /*crash_after=*/2000);
  Report("sync", r);
  EXPECT_GE(r.acknowledged.size(), 2000u);
  EXPECT_EQ(CountLost(r), 0u);
  // The crash did cut written-but-unsynced data.
  EXPECT_GT(r.dropped_bytes, 0u);
}

// A small memtable makes RocksDB flush SST files, switch WALs and rewrite
// the MANIFEST during the run, so the crash also hits those paths.
TEST(FaultInjectionTest, SyncModeWithFlushesLosesNoAcknowledgedAppend) {
  CrashResult r = RunCrash("crash_sync_flush", /*sync=*/true,
                           /*write_buffer_size=*/64 << 10, /*threads=*/8,
                           /*crash_after=*/2000);
  Report("sync+flush", r);
  EXPECT_GE(r.acknowledged.size(), 2000u);
  EXPECT_EQ(CountLost(r), 0u);
  // The crash did cut written-but-unsynced data.
  EXPECT_GT(r.dropped_bytes, 0u);
}

// The control: in async mode the WAL is never synced, so a machine crash
// loses acknowledged appends. This also shows the harness really drops data
// (otherwise the tests above could not fail).
TEST(FaultInjectionTest, AsyncModeLosesUnsyncedAppends) {
  CrashResult r = RunCrash("crash_async", /*sync=*/false,
                           /*write_buffer_size=*/8 << 20, /*threads=*/4,
                           /*crash_after=*/500);
  Report("async", r);
  EXPECT_GE(r.acknowledged.size(), 500u);
  EXPECT_GT(CountLost(r), 0u);
  EXPECT_GT(r.dropped_bytes, 0u);
}

}  // namespace
}  // namespace taskd
