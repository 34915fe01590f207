// RefCountedCall: base of handlers that are finished from engine threads
// (see call.h). The count starts at 1 for the CQ thread that runs the
// request event; take a reference before starting any operation.
#ifndef TASKD_SERVICES_REF_COUNTED_CALL_H_
#define TASKD_SERVICES_REF_COUNTED_CALL_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/call.h"

namespace taskd {

class RefCountedCall : public Call {
 public:
  // How many such handlers exist in this process. Shutdown waits for none
  // to be left before it shuts the completion queues down: a handler that
  // is still alive may start an operation (a Finish after a cancelled
  // write, say), which gRPC forbids once its queue is shut down.
  // Waits until no handler is left, at most `limit`; false on timeout.
  static bool WaitNoneLive(absl::Duration limit) {
    absl::MutexLock lock(&live_mu_);
    return live_mu_.AwaitWithTimeout(
        absl::Condition(+[](int* n) { return *n == 0; }, &live_), limit);
  }

 protected:
  RefCountedCall() {
    absl::MutexLock lock(&live_mu_);
    ++live_;
  }
  ~RefCountedCall() override {
    absl::MutexLock lock(&live_mu_);
    --live_;
  }

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
  // Handlers alive in this process (see WaitNoneLive).
  static inline absl::Mutex live_mu_;
  static inline int live_ ABSL_GUARDED_BY(live_mu_) = 0;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_REF_COUNTED_CALL_H_
