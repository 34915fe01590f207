// absl::Status's shared representation as TSan sees it.
//
// Copying a non-OK Status bumps a reference count inline (in the caller's
// instrumented code); dropping one calls Status::UnrefNonInlined inside
// libabsl_status, whose acquire/release decrement TSan cannot see, and the
// last one deletes the representation (a free TSan does see). Without this
// wrapper TSan takes that delete for a race with every other thread's
// earlier copy. Modelled as a reference count: each drop releases on the
// representation and acquires what earlier drops released, so the thread
// that deletes it comes after every other owner's last use.
#include <sanitizer/tsan_interface.h>

#include <cstdint>

#include "absl/status/status.h"
#include "tests/tsan/interposer.h"

namespace absl {

void Status::UnrefNonInlined(uintptr_t rep) {
  using Fn = void (*)(uintptr_t);
  static const Fn real = reinterpret_cast<Fn>(taskd::tsan::RealSymbol(
      taskd::tsan::AbslSymbolName("6Status15UnrefNonInlinedEm").c_str()));
  // A representation pointer is tagged with 1 (absl/status/status.h,
  // PointerToRep); inlined codes have no count.
  if ((rep & 1) != 0 && taskd::tsan::AnnotationsEnabled()) {
    void* shared = reinterpret_cast<void*>(rep - 1);
    __tsan_release(shared);
    __tsan_acquire(shared);
  }
  real(rep);
}

}  // namespace absl
