// FaultInjectionFileSystem: a test-only rocksdb::FileSystem that simulates a
// machine crash (power loss) by dropping every byte not yet synced, after
// LevelDB's FaultInjectionTestEnv.
//
// It tracks, for each file written through it, the length at its last
// successful Sync/Fsync. Crash() freezes the disk: from then on every write,
// sync, create, rename and delete fails, so the process under test keeps
// running but nothing more reaches "disk". Once the database is closed,
// DropUnsyncedData() cuts every tracked file back to its synced length --
// what a machine would find after rebooting -- and revives the file system.
//
//   auto fs = std::make_shared<FaultInjectionFileSystem>();
//   std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
//   ... open a store with env.get(), append, fs->Crash(), close the store ...
//   ASSERT_TRUE(fs->DropUnsyncedData().ok());
//   ... reopen and check that every acknowledged change is there ...
//
// Not modelled: directory entries (a created or deleted file is assumed to
// persist at once; RocksDB fsyncs its directory when it matters) and
// RangeSync (treated as not making data durable; full syncs follow).
//
// Thread-safe. File operations are serialized by one mutex, which makes the
// crash point atomic with respect to syncs: a Sync that returned OK is
// always counted as durable.
#ifndef TASKD_SCHEDULER_STORAGE_FAULT_INJECTION_FS_H_
#define TASKD_SCHEDULER_STORAGE_FAULT_INJECTION_FS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"

namespace taskd {

class FaultInjectionFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base =
                                        rocksdb::FileSystem::Default());

  const char* Name() const override { return "TaskdFaultInjectionFileSystem"; }

  // Simulates power loss now; see the file comment.
  void Crash() ABSL_LOCKS_EXCLUDED(mu_);
  // Simulates power loss at the start of the next Sync/Fsync of any file,
  // which then fails: the bytes it would have made durable (typically a
  // group commit's WAL records) are written but unsynced.
  void CrashAtNextSync() ABSL_LOCKS_EXCLUDED(mu_);
  bool crashed() const ABSL_LOCKS_EXCLUDED(mu_);

  // Call after every database using this file system is closed. Truncates
  // each file written since construction (or the previous call) to its last
  // synced length, then lets operations succeed again.
  absl::Status DropUnsyncedData() ABSL_LOCKS_EXCLUDED(mu_);

  // Until called again with OK, appends and syncs fail with `error` (and
  // write nothing), e.g. rocksdb::IOStatus::NoSpace() for a full disk.
  void FailWritesWith(rocksdb::IOStatus error) ABSL_LOCKS_EXCLUDED(mu_);

  // Called at the start of every Sync/Fsync, with no lock held; it may
  // block to hold a sync "in flight" (e.g. to let writers queue up).
  void SetSyncHook(std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_);

  // Bytes the last DropUnsyncedData() removed.
  uint64_t dropped_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

  rocksdb::IOStatus NewWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override ABSL_LOCKS_EXCLUDED(mu_);
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override ABSL_LOCKS_EXCLUDED(mu_);
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& fname, const std::string& old_fname,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override ABSL_LOCKS_EXCLUDED(mu_);
  rocksdb::IOStatus NewRandomRWFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSRandomRWFile>* result,
      rocksdb::IODebugContext* dbg) override ABSL_LOCKS_EXCLUDED(mu_);
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override
      ABSL_LOCKS_EXCLUDED(mu_);
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dst,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override
      ABSL_LOCKS_EXCLUDED(mu_);
  rocksdb::IOStatus DeleteFile(const std::string& fname,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override
      ABSL_LOCKS_EXCLUDED(mu_);
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class TrackedFile;

  // What the disk holds of one file: `size` bytes written, of which the
  // first `synced` survive a crash.
  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
  };

  // Error for an operation attempted after Crash(), or the injected error.
  rocksdb::IOStatus WriteBlocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunSyncHook() ABSL_LOCKS_EXCLUDED(mu_);
  std::shared_ptr<FileState> Track(const std::string& fname,
                                   uint64_t existing_size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // Keyed by current file name; a rename moves the entry.
  std::map<std::string, std::shared_ptr<FileState>> files_ ABSL_GUARDED_BY(mu_);
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  bool crash_at_next_sync_ ABSL_GUARDED_BY(mu_) = false;
  rocksdb::IOStatus injected_error_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> sync_hook_ ABSL_GUARDED_BY(mu_);
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_STORAGE_FAULT_INJECTION_FS_H_
