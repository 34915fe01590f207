// OpenStorage: the Storage the server's flags ask for.
//
//   --durability=memory              -> MemoryStorage (data_dir ignored)
//   --durability=sync|async          -> RocksDbStorage in data_dir
//
// Kept apart from storage.h so that the interface does not depend on its
// implementations.
#ifndef TASKD_SCHEDULER_STORAGE_OPEN_STORAGE_H_
#define TASKD_SCHEDULER_STORAGE_OPEN_STORAGE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduler/storage/storage.h"

namespace taskd {

// Errors are those of OpenRocksDbStorage (rocksdb_storage.h), plus
// INVALID_ARGUMENT when a durable mode gets an empty data_dir. The server
// should print the message and exit non-zero.
absl::StatusOr<std::unique_ptr<Storage>> OpenStorage(
    Durability durability, const std::string& data_dir);

}  // namespace taskd

#endif  // TASKD_SCHEDULER_STORAGE_OPEN_STORAGE_H_
