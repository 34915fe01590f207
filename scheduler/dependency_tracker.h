// DependencyTracker: which tasks wait for which (depends_on), from the
// moment a dependent is linked until its dependency ends.
//
// A dependent is linked under its dependency's shard lock while that task
// is not terminal, and the dependency's waiting dependents are taken under
// the same lock as it ends, so no outcome is missed. What an outcome does to
// the dependent (ready, or cancelled `dependency_failed`) is the engine's.
//
// Lock order: a task shard lock -> mu_ (a leaf). Thread-safe.
#ifndef TASKD_SCHEDULER_DEPENDENCY_TRACKER_H_
#define TASKD_SCHEDULER_DEPENDENCY_TRACKER_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace taskd {

class DependencyTracker {
 public:
  // `dependent` waits for `dependency` (not terminal; its shard lock held).
  void Link(const std::string& dependency, const std::string& dependent)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    dependents_[dependency].push_back(dependent);
  }
  // The tasks waiting for `dependency`, which is ending (its shard lock
  // held); they are forgotten here.
  std::vector<std::string> TakeDependents(const std::string& dependency)
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto it = dependents_.find(dependency);
    if (it == dependents_.end()) return {};
    std::vector<std::string> out = std::move(it->second);
    dependents_.erase(it);
    return out;
  }
  // Tasks with someone waiting for them.
  size_t size() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return dependents_.size();
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::vector<std::string>> dependents_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_DEPENDENCY_TRACKER_H_
