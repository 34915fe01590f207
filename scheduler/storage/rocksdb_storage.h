// RocksDbStorage: the durable Storage (--durability=sync|async), one RocksDB
// database in --data-dir.
//
// Layout: task records under "t/<id>" (serialized v1::Task), meta entries
// under "m/<key>". Appends are group-committed: callers queue their batch;
// the caller at the head of the queue writes every queued batch as ONE
// RocksDB write (with an fsync of the WAL in kSync mode) and wakes the others
// with the shared result, as LevelDB's DBImpl::Write does. After a failed
// write (disk full, I/O error) the store turns read-only: every later Append
// answers UNAVAILABLE with the original error, so nothing is lost silently.
//
// Open errors name the directory: FAILED_PRECONDITION when another process
// holds it (RocksDB's LOCK file) or it is not a directory, PERMISSION_DENIED
// when it cannot be used, DATA_LOSS when RocksDB finds it corrupt.
//
// Thread-safe. The database is released by Close() or the destructor.
#ifndef TASKD_SCHEDULER_STORAGE_ROCKSDB_STORAGE_H_
#define TASKD_SCHEDULER_STORAGE_ROCKSDB_STORAGE_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduler/storage/storage.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace taskd {

struct RocksDbStorageOptions {
  // Created if missing (with its parents).
  std::string data_dir;
  // If true, Append fsyncs the WAL before returning (kSync); otherwise it
  // returns once the WAL is written to the OS (kAsync).
  bool sync = true;
  // Memtable size: bounds the WAL replayed at start and the memory used.
  size_t write_buffer_size = 8 << 20;
  // Upper bound of the bytes one group commit gathers from queued callers.
  size_t max_group_bytes = 4 << 20;
  // Tests inject faults through a custom Env (fault_injection_fs.h). Not
  // owned; must outlive the store. nullptr: rocksdb::Env::Default().
  rocksdb::Env* env = nullptr;
};

absl::StatusOr<std::unique_ptr<Storage>> OpenRocksDbStorage(
    const RocksDbStorageOptions& options);

}  // namespace taskd

#endif  // TASKD_SCHEDULER_STORAGE_ROCKSDB_STORAGE_H_
