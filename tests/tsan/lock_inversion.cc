// A lock-order inversion, for tsan_selftest: one thread takes absl::Mutex a
// then b, a later one b then a. They never overlap, so nothing deadlocks,
// but the order is inconsistent: with the interposer's mutex annotations
// TSan must report a potential deadlock, before abseil's own detector
// (on in Debian's build) would abort on its second lock.
#include <thread>

#include "absl/synchronization/mutex.h"

int main() {
  absl::Mutex a;
  absl::Mutex b;
  std::thread([&] {
    absl::MutexLock first(&a);
    absl::MutexLock second(&b);
  }).join();
  std::thread([&] {
    absl::MutexLock first(&b);
    absl::MutexLock second(&a);
  }).join();
  return 0;
}
