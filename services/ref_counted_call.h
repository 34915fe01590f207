// RefCountedCall: base of handlers that are finished from engine threads
// (see call.h). The count starts at 1 for the CQ thread that runs the
// request event; take a reference before starting any operation.
#ifndef TASKD_SERVICES_REF_COUNTED_CALL_H_
#define TASKD_SERVICES_REF_COUNTED_CALL_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/call.h"

namespace taskd {

class RefCountedCall : public Call {
 protected:
  explicit RefCountedCall(const CallSite& site) : Call(site) {}

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
};

}  // namespace taskd

#endif  // TASKD_SERVICES_REF_COUNTED_CALL_H_
