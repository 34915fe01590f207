// Helpers shared by the storage tests: fresh directories, task records, and
// reading a whole store back.
#ifndef TASKD_SCHEDULER_STORAGE_STORAGE_TEST_UTIL_H_
#define TASKD_SCHEDULER_STORAGE_STORAGE_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/storage/storage.h"

namespace taskd {

// A new, empty directory under $TEST_TMPDIR (or /tmp), unique within the
// test binary; `name` makes it recognisable.
std::string NewTestDir(absl::string_view name);

// A task with `id`, a queue and `payload_bytes` of deterministic but
// incompressible payload.
v1::Task MakeTask(const std::string& id, size_t payload_bytes = 16);

// Everything Recover visits, in visiting order.
struct StoredState {
  std::vector<std::pair<std::string, std::string>> meta;
  std::vector<v1::Task> tasks;
};
absl::StatusOr<StoredState> ReadAll(Storage& storage);

// Total bytes of the regular files under `dir`.
uint64_t DirectorySize(const std::string& dir);

}  // namespace taskd

#endif  // TASKD_SCHEDULER_STORAGE_STORAGE_TEST_UTIL_H_
