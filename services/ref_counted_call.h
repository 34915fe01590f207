// RefCountedCall: base of handlers that are finished from engine threads
// (see call.h). The count starts at 1 for the CQ thread that runs the
// request event; take a reference before starting any operation.
#ifndef TASKD_SERVICES_REF_COUNTED_CALL_H_
#define TASKD_SERVICES_REF_COUNTED_CALL_H_

#include <atomic>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "services/call.h"

namespace taskd {

class RefCountedCall : public Call {
 public:
  // How many such handlers exist in this process. Shutdown waits for none
  // to be left before it shuts the completion queues down: a handler that
  // is still alive may start an operation (a Finish after a cancelled
  // write, say), which gRPC forbids once its queue is shut down.
  static int Live() { return live_.load(); }
  // Waits (polling; shutdown only) until no handler is left or `limit`.
  static bool WaitNoneLive(absl::Duration limit) {
    const absl::Time deadline = absl::Now() + limit;
    while (live_.load() > 0) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }

 protected:
  RefCountedCall() { live_.fetch_add(1); }
  ~RefCountedCall() override { live_.fetch_sub(1); }

  void Ref() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { ++refs_; }
  // Drops a reference; deletes the handler at zero. mu_ must not be held.
  void Unref() ABSL_LOCKS_EXCLUDED(mu_) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  absl::Mutex mu_;

 private:
  int refs_ ABSL_GUARDED_BY(mu_) = 1;
  static inline std::atomic<int> live_{0};
};

}  // namespace taskd

#endif  // TASKD_SERVICES_REF_COUNTED_CALL_H_
