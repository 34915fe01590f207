// Task ids: 26 characters of Crockford base32 encoding 48 bits of Unix
// milliseconds followed by 80 bits that increase monotonically within one
// generator (random start). Ids therefore sort by creation time, are unique
// within a process and, thanks to the random start, across restarts.
//
// TaskIdGenerator is thread-safe.
#ifndef TASKD_SCHEDULER_TASK_ID_H_
#define TASKD_SCHEDULER_TASK_ID_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace taskd {

class TaskIdGenerator {
 public:
  // `seed` fixes the random start (tests); 0 draws one from the OS.
  explicit TaskIdGenerator(uint64_t seed = 0);

  // A new id for a task created at `now`. Strictly greater than every id this
  // generator returned before, even if `now` goes backwards.
  std::string Next(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

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
