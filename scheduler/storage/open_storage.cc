#include "scheduler/storage/open_storage.h"

#include "absl/strings/str_cat.h"
#include "scheduler/storage/memory_storage.h"
#include "scheduler/storage/rocksdb_storage.h"

namespace taskd {

absl::StatusOr<std::unique_ptr<Storage>> OpenStorage(
    Durability durability, const std::string& data_dir) {
  if (durability == Durability::kMemory) return NewMemoryStorage();
  if (data_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--durability=", DurabilityName(durability), " needs --data-dir"));
  }
  RocksDbStorageOptions options;
  options.data_dir = data_dir;
  options.sync = durability == Durability::kSync;
  return OpenRocksDbStorage(options);
}

}  // namespace taskd
