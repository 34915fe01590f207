// MemoryStorage: a Storage that keeps everything in process memory
// (--durability=memory, and tests of the engine). Nothing survives the
// object; Append never waits for I/O. Thread-safe.
#ifndef TASKD_SCHEDULER_STORAGE_MEMORY_STORAGE_H_
#define TASKD_SCHEDULER_STORAGE_MEMORY_STORAGE_H_

#include <memory>

#include "scheduler/storage/storage.h"

namespace taskd {

std::unique_ptr<Storage> NewMemoryStorage();

}  // namespace taskd

#endif  // TASKD_SCHEDULER_STORAGE_MEMORY_STORAGE_H_
