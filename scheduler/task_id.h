// Task ids: 26 characters of Crockford base32 encoding 48 bits of Unix
// milliseconds followed by 80 bits that increase monotonically within one
// generator (random start). Ids therefore sort by creation time, are unique
// within a process and, thanks to the random start, across restarts.
//
// TaskIdGenerator is thread-safe.
#ifndef TASKD_SCHEDULER_TASK_ID_H_
#define TASKD_SCHEDULER_TASK_ID_H_

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace taskd {

// A task id as its 128 bits: 16 bytes instead of a 26-character string,
// ordered as the ids are (fixed length, alphabet in value order).
struct TaskKey {
  uint64_t hi = 0;
  uint64_t lo = 0;
  friend bool operator==(const TaskKey& a, const TaskKey& b) {
    return a.hi == b.hi && a.lo == b.lo;
  }
  friend bool operator<(const TaskKey& a, const TaskKey& b) {
    return std::tie(a.hi, a.lo) < std::tie(b.hi, b.lo);
  }
  template <typename H>
  friend H AbslHashValue(H h, const TaskKey& k) {
    return H::combine(std::move(h), k.hi, k.lo);
  }
};

// The key of `id`, or nullopt when `id` is not 26 digits of Crockford base32
// worth at most 128 bits (no generator makes such an id).
std::optional<TaskKey> TaskKeyOf(absl::string_view id);
// The id whose key is `key`: TaskIdOf(*TaskKeyOf(id)) == id for every id
// TaskKeyOf accepts.
std::string TaskIdOf(const TaskKey& key);

class TaskIdGenerator {
 public:
  // `seed` fixes the random start (tests); 0 draws one from the OS.
  explicit TaskIdGenerator(uint64_t seed = 0);

  // A new id for a task created at `now`. Strictly greater than every id this
  // generator returned before, even if `now` goes backwards.
  std::string Next(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // The same id as its key.
  TaskKey NextKey(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // Every later Next() returns an id strictly greater than `id` (an id of
  // an earlier run, seen at recovery), whatever the seed or the clock: ids
  // never repeat across restarts. Ignores text that is not a task id.
  void AdvancePast(absl::string_view id) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  uint64_t last_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t counter_hi_ ABSL_GUARDED_BY(mu_);  // 16 bits used
  uint64_t counter_lo_ ABSL_GUARDED_BY(mu_);
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_TASK_ID_H_
