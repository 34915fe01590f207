#include "scheduler/storage/memory_storage.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace taskd {
namespace {

class MemoryStorage final : public Storage {
 public:
  absl::Status Append(std::vector<Mutation> batch) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    if (batch.empty()) return absl::OkStatus();
    absl::Status valid = ValidateBatch(batch);
    absl::MutexLock lock(&mu_);
    if (!valid.ok()) {
      ++stats_.failed_appends;
      return valid;
    }
    if (closed_) {
      ++stats_.failed_appends;
      return absl::FailedPreconditionError("storage is closed");
    }
    for (Mutation& m : batch) {
      if (absl::Status s = m.Decode(); !s.ok()) {
        ++stats_.failed_appends;  // nothing of the batch was applied yet
        return s;
      }
    }
    for (Mutation& m : batch) {
      switch (m.kind) {
        case Mutation::Kind::kPutTask:
        case Mutation::Kind::kPutTaskApart:
          tasks_[m.key] = std::move(m.task);
          break;
        case Mutation::Kind::kPutTaskState: {
          v1::Task& stored = tasks_[m.key];
          m.task.mutable_spec()->mutable_payload()->swap(
              *stored.mutable_spec()->mutable_payload());
          stored = std::move(m.task);
          break;
        }
        case Mutation::Kind::kDeleteTask:
          tasks_.erase(m.key);
          break;
        case Mutation::Kind::kPutMeta:
          meta_[m.key] = std::move(m.value);
          break;
        case Mutation::Kind::kDeleteMeta:
          meta_.erase(m.key);
          break;
      }
    }
    ++stats_.appends;
    ++stats_.commits;
    stats_.mutations += batch.size();
    return absl::OkStatus();
  }

  absl::Status Recover(
      const std::function<absl::Status(v1::Task&)>& on_task,
      const std::function<absl::Status(absl::string_view, absl::string_view)>&
          on_meta) override ABSL_LOCKS_EXCLUDED(mu_) {
    // Visit a copy so that visitors may call Append without deadlock.
    std::map<std::string, v1::Task> tasks;
    std::map<std::string, std::string> meta;
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return absl::FailedPreconditionError("storage is closed");
      if (on_task) tasks = tasks_;
      if (on_meta) meta = meta_;
    }
    // A record a visitor refuses with DATA_LOSS is set aside (see Storage).
    std::vector<std::string> bad_meta, bad_tasks;
    absl::Status status;
    for (const auto& [key, value] : meta) {
      absl::Status s = on_meta(key, value);
      if (s.code() == absl::StatusCode::kDataLoss) {
        bad_meta.push_back(key);
      } else if (!s.ok()) {
        status = s;
        break;
      }
    }
    for (auto it = tasks.begin(); status.ok() && it != tasks.end(); ++it) {
      absl::Status s = on_task(it->second);
      if (s.code() == absl::StatusCode::kDataLoss) {
        bad_tasks.push_back(it->first);
      } else if (!s.ok()) {
        status = s;
      }
    }
    absl::MutexLock lock(&mu_);
    for (const std::string& key : bad_meta) {
      quarantine_.emplace("m/" + key, std::move(meta_[key]));
      meta_.erase(key);
    }
    for (const std::string& id : bad_tasks) {
      quarantine_.emplace("t/" + id, tasks_[id].SerializeAsString());
      tasks_.erase(id);
    }
    stats_.quarantined = bad_meta.size() + bad_tasks.size();
    return status;
  }

  absl::Status Compact() override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (closed_) return absl::FailedPreconditionError("storage is closed");
    return absl::OkStatus();
  }

  absl::Status Close() override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    tasks_.clear();
    meta_.clear();
    return absl::OkStatus();
  }

  StorageStats stats() const override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, v1::Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> meta_ ABSL_GUARDED_BY(mu_);
  // Records set aside by Recover, under their store key ("t/<id>", "m/<k>").
  std::map<std::string, std::string> quarantine_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  StorageStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<Storage> NewMemoryStorage() {
  return std::make_unique<MemoryStorage>();
}

}  // namespace taskd
