#include "scheduler/storage/fault_injection_fs.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace taskd {

using rocksdb::DataVerificationInfo;
using rocksdb::FileOptions;
using rocksdb::FSRandomRWFile;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// Forwards to the real file and records, under the file system's mutex, how
// much was written and how much synced.
class FaultInjectionFileSystem::TrackedFile
    : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(FaultInjectionFileSystem* fs, std::shared_ptr<FileState> state,
              std::unique_ptr<FSWritableFile> target)
      : FSWritableFileOwnerWrapper(std::move(target)),
        fs_(fs),
        state_(std::move(state)) {}

  IOStatus Append(const Slice& data, const IOOptions& options,
                  IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    IOStatus s = fs_->WriteBlocked();
    if (s.ok()) s = target()->Append(data, options, dbg);
    if (s.ok()) state_->size += data.size();
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const DataVerificationInfo& info,
                  IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    IOStatus s = fs_->WriteBlocked();
    if (s.ok()) s = target()->Append(data, options, info, dbg);
    if (s.ok()) state_->size += data.size();
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& options,
                            IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    IOStatus s = fs_->WriteBlocked();
    if (s.ok()) s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) state_->size = std::max(state_->size, offset + data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset,
                            const IOOptions& options,
                            const DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    IOStatus s = fs_->WriteBlocked();
    if (s.ok()) {
      s = target()->PositionedAppend(data, offset, options, info, dbg);
    }
    if (s.ok()) state_->size = std::max(state_->size, offset + data.size());
    return s;
  }
  IOStatus Truncate(uint64_t size, const IOOptions& options,
                    IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    IOStatus s = fs_->WriteBlocked();
    if (s.ok()) s = target()->Truncate(size, options, dbg);
    if (s.ok()) {
      state_->size = size;
      state_->synced = std::min(state_->synced, size);
    }
    return s;
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Sync(options, dbg); });
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return SyncWith([&] { return target()->Fsync(options, dbg); });
  }
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    absl::MutexLock lock(&fs_->mu_);
    IOStatus s = fs_->WriteBlocked();
    if (s.ok()) s = target()->RangeSync(offset, nbytes, options, dbg);
    return s;
  }

 private:
  // A sync (Sync or Fsync, run by `sync`): may be where a simulated crash
  // hits; on success everything written so far counts as durable.
  template <class SyncFn>
  IOStatus SyncWith(SyncFn sync) {
    fs_->RunSyncHook();
    absl::MutexLock lock(&fs_->mu_);
    if (fs_->crash_at_next_sync_) {
      fs_->crash_at_next_sync_ = false;
      fs_->crashed_ = true;
    }
    IOStatus s = fs_->WriteBlocked();
    if (s.ok()) s = sync();
    if (s.ok()) state_->synced = state_->size;
    return s;
  }

  FaultInjectionFileSystem* const fs_;
  const std::shared_ptr<FileState> state_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(std::move(base)) {}

IOStatus FaultInjectionFileSystem::WriteBlocked() const {
  if (crashed_) return IOStatus::IOError("simulated crash: disk is frozen");
  return injected_error_;
}

std::shared_ptr<FaultInjectionFileSystem::FileState>
FaultInjectionFileSystem::Track(const std::string& fname,
                                uint64_t existing_size) {
  auto state = std::make_shared<FileState>();
  state->size = existing_size;
  state->synced = existing_size;
  files_[fname] = state;
  return state;
}

void FaultInjectionFileSystem::Crash() {
  absl::MutexLock lock(&mu_);
  crashed_ = true;
}

void FaultInjectionFileSystem::SetSyncHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  sync_hook_ = std::move(hook);
}

void FaultInjectionFileSystem::RunSyncHook() {
  std::function<void()> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = sync_hook_;
  }
  if (hook) hook();
}

void FaultInjectionFileSystem::CrashAtNextSync() {
  absl::MutexLock lock(&mu_);
  crash_at_next_sync_ = true;
}

bool FaultInjectionFileSystem::crashed() const {
  absl::MutexLock lock(&mu_);
  return crashed_;
}

void FaultInjectionFileSystem::FailWritesWith(IOStatus error) {
  absl::MutexLock lock(&mu_);
  injected_error_ = std::move(error);
}

uint64_t FaultInjectionFileSystem::dropped_bytes() const {
  absl::MutexLock lock(&mu_);
  return dropped_bytes_;
}

absl::Status FaultInjectionFileSystem::DropUnsyncedData() {
  absl::MutexLock lock(&mu_);
  dropped_bytes_ = 0;
  for (const auto& [name, state] : files_) {
    uint64_t on_disk = 0;
    IOStatus s = target()->GetFileSize(name, IOOptions(), &on_disk, nullptr);
    if (s.IsNotFound() || s.IsPathNotFound()) continue;
    if (!s.ok()) {
      return absl::InternalError(
          absl::StrCat("size of ", name, ": ", s.ToString()));
    }
    if (on_disk <= state->synced) continue;
    // The POSIX FileSystem does not implement Truncate(name); the files
    // are local, and closed by now.
    if (::truncate(name.c_str(), static_cast<off_t>(state->synced)) != 0) {
      return absl::InternalError(
          absl::StrCat("truncating ", name, ": ", std::strerror(errno)));
    }
    dropped_bytes_ += on_disk - state->synced;
  }
  files_.clear();
  crashed_ = false;
  crash_at_next_sync_ = false;
  injected_error_ = IOStatus::OK();
  return absl::OkStatus();
}

IOStatus FaultInjectionFileSystem::NewWritableFile(
    const std::string& fname, const FileOptions& options,
    std::unique_ptr<FSWritableFile>* result, IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  std::unique_ptr<FSWritableFile> file;
  IOStatus s = target()->NewWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  *result =
      std::make_unique<TrackedFile>(this, Track(fname, 0), std::move(file));
  return s;
}

IOStatus FaultInjectionFileSystem::ReopenWritableFile(
    const std::string& fname, const FileOptions& options,
    std::unique_ptr<FSWritableFile>* result, IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  std::unique_ptr<FSWritableFile> file;
  IOStatus s = target()->ReopenWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  std::shared_ptr<FileState> state;
  auto it = files_.find(fname);
  if (it != files_.end()) {
    state = it->second;
  } else {
    // Written before tracking began: all of it counts as durable.
    uint64_t size = 0;
    s = target()->GetFileSize(fname, IOOptions(), &size, dbg);
    if (!s.ok()) return s;
    state = Track(fname, size);
  }
  *result = std::make_unique<TrackedFile>(this, state, std::move(file));
  return IOStatus::OK();
}

IOStatus FaultInjectionFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname,
    const FileOptions& options, std::unique_ptr<FSWritableFile>* result,
    IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  std::unique_ptr<FSWritableFile> file;
  IOStatus s =
      target()->ReuseWritableFile(fname, old_fname, options, &file, dbg);
  if (!s.ok()) return s;
  files_.erase(old_fname);
  *result =
      std::make_unique<TrackedFile>(this, Track(fname, 0), std::move(file));
  return s;
}

IOStatus FaultInjectionFileSystem::NewRandomRWFile(
    const std::string& fname, const FileOptions& options,
    std::unique_ptr<FSRandomRWFile>* result, IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  return target()->NewRandomRWFile(fname, options, result, dbg);
}

IOStatus FaultInjectionFileSystem::RenameFile(const std::string& src,
                                              const std::string& dst,
                                              const IOOptions& options,
                                              IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  IOStatus s = target()->RenameFile(src, dst, options, dbg);
  if (!s.ok()) return s;
  files_.erase(dst);
  auto it = files_.find(src);
  if (it != files_.end()) {
    files_[dst] = it->second;
    files_.erase(it);
  }
  return s;
}

IOStatus FaultInjectionFileSystem::LinkFile(const std::string& src,
                                            const std::string& dst,
                                            const IOOptions& options,
                                            IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  return target()->LinkFile(src, dst, options, dbg);
}

IOStatus FaultInjectionFileSystem::DeleteFile(const std::string& fname,
                                              const IOOptions& options,
                                              IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  IOStatus s = target()->DeleteFile(fname, options, dbg);
  if (s.ok()) files_.erase(fname);
  return s;
}

IOStatus FaultInjectionFileSystem::Truncate(const std::string& fname,
                                            size_t size,
                                            const IOOptions& options,
                                            IODebugContext* dbg) {
  absl::MutexLock lock(&mu_);
  if (crashed_) return WriteBlocked();
  IOStatus s = target()->Truncate(fname, size, options, dbg);
  if (!s.ok()) return s;
  auto it = files_.find(fname);
  if (it != files_.end()) {
    it->second->size = size;
    it->second->synced = std::min<uint64_t>(it->second->synced, size);
  }
  return s;
}

}  // namespace taskd
