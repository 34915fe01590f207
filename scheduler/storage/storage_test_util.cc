#include "scheduler/storage/storage_test_util.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"

namespace taskd {

std::string NewTestDir(absl::string_view name) {
  static std::atomic<int> counter{0};
  const char* root = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(root != nullptr ? root : "/tmp", "/storage_",
                                 name, "_", getpid(), "_", counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

v1::Task MakeTask(const std::string& id, size_t payload_bytes) {
  v1::Task task;
  task.set_id(id);
  task.set_state(v1::TASK_STATE_PENDING);
  task.mutable_spec()->set_queue("default");
  task.mutable_spec()->set_type("test");
  std::mt19937_64 rng(std::hash<std::string>()(id));
  std::string payload(payload_bytes, '\0');
  for (char& c : payload) c = static_cast<char>(rng());
  task.mutable_spec()->set_payload(std::move(payload));
  return task;
}

absl::StatusOr<StoredState> ReadAll(Storage& storage) {
  StoredState state;
  absl::Status s = storage.Recover(
      [&](const v1::Task& task) {
        state.tasks.push_back(task);
        return absl::OkStatus();
      },
      [&](absl::string_view key, absl::string_view value) {
        state.meta.emplace_back(std::string(key), std::string(value));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return state;
}

uint64_t DirectorySize(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) total += entry.file_size();
  }
  return total;
}

}  // namespace taskd
