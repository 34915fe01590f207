// absl::Mutex, CondVar, Notification and BlockingCounter as TSan sees them.
//
// Each wrapper below is the out-of-line member function of the same name
// (the header's declaration checks its signature); it reports the lock or
// the hand-off to TSan and calls abseil's own definition.
//
// Mutexes use TSan's mutex annotations (__tsan_mutex_pre_lock/post_lock,
// pre_unlock/post_unlock), so TSan also checks lock order (potential
// deadlocks) and misuse (unlock of an unlocked mutex...). CondVar::Wait and
// Mutex::Await are an unlock then a lock of the mutex.
//
// TSan ignores what a thread does between pre_ and post_. Every call into
// abseil runs in such a region (or in an explicit ignore region): abseil is
// not the program under test, and some of its internals are still visible
// to TSan (its deadlock graph moves memory with memmove, which TSan
// intercepts, under a spin lock TSan cannot see). That region also covers
// the Condition functions abseil evaluates inside Lock/Unlock, sometimes on
// another thread than the waiter's, on behalf of LockWhen/Await waiters:
// their reads are not checked (they run under the mutex in any case).
//
// Abseil calls its own public functions through the PLT too (Notify locks
// its mutex, AwaitWithTimeout calls AwaitWithDeadline, ...), so these
// wrappers are also reached from inside abseil: only the outermost wrapped
// call on a thread annotates (t_depth), the nested ones just forward.
//
// gRPC's own mutexes are absl::Mutex as well (gpr_mu), reached through the
// same wrappers: TSan sees gRPC's locking too (its memory accesses stay
// unchecked, the library is not instrumented), unless TASKD_TSAN_GRPC_LOCKS=0
// (interposer.h) hides the locks gRPC's code takes.
#include <sanitizer/tsan_interface.h>

#include <cstddef>
#include <cstdint>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "tests/tsan/interposer.h"

// TSan runtime entry points that <sanitizer/tsan_interface.h> of gcc 12
// does not declare: ignore memory accesses / synchronisation of this thread
// until the matching end.
extern "C" {
void __tsan_ignore_thread_begin();
void __tsan_ignore_thread_end();
void AnnotateIgnoreSyncBegin(const char* file, int line);
void AnnotateIgnoreSyncEnd(const char* file, int line);
}

namespace {

using taskd::tsan::AnnotationsEnabled;
using taskd::tsan::IsHiddenGrpcCaller;
using taskd::tsan::IsSystemLibraryCode;
using taskd::tsan::RealSymbol;

// The real abseil function of type Fn: AbslSymbolName(rest, const_member).
template <typename Fn>
Fn RealAbsl(const char* rest, bool const_member = false) {
  return reinterpret_cast<Fn>(
      RealSymbol(taskd::tsan::AbslSymbolName(rest, const_member).c_str()));
}

thread_local int t_depth = 0;

// Counts the wrapped calls in progress on this thread.
class Scope {
 public:
  Scope() : outermost_(t_depth++ == 0) {}
  ~Scope() { --t_depth; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  bool outermost() const { return outermost_; }

 private:
  const bool outermost_;
};

// Runs `call` with this thread's memory accesses and synchronisation
// ignored by TSan.
template <typename Call>
auto Ignored(Call call) {
  __tsan_ignore_thread_begin();
  AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
  auto result = call();
  AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
  __tsan_ignore_thread_end();
  return result;
}

// The mutexes this thread holds that Unlock, CondVar::Wait and Mutex::Await
// must treat as they were taken: in reader mode (kReader), or not shown to
// TSan (kHidden; taken by gRPC's code with TASKD_TSAN_GRPC_LOCKS=0). Mutexes
// held in writer mode and shown are not recorded. Beyond kMaxHeld at once
// the extra ones are taken for writer-held and shown.
constexpr unsigned kReader = __tsan_mutex_read_lock;
constexpr unsigned kHidden = 1u << 30;
constexpr int kMaxHeld = 32;
struct Held {
  const void* mu;
  unsigned how;
};
thread_local Held t_held[kMaxHeld];
thread_local int t_held_count = 0;

void NoteTaken(const void* mu, unsigned how) {
  if (how != 0 && t_held_count < kMaxHeld) t_held[t_held_count++] = {mu, how};
}

unsigned HowHeld(const void* mu) {
  for (int i = t_held_count - 1; i >= 0; --i) {
    if (t_held[i].mu == mu) return t_held[i].how;
  }
  return 0;
}

void NoteReleased(const void* mu) {
  for (int i = t_held_count - 1; i >= 0; --i) {
    if (t_held[i].mu == mu) {
      t_held[i] = t_held[--t_held_count];
      return;
    }
  }
}

// Lock, LockWhen*, ReaderLock, ReaderLockWhen*: `call` takes `mu` (in
// reader mode if `mode` is kReader); `caller` is the wrapper's return
// address.
template <typename Call>
auto Take(void* mu, unsigned mode, const void* caller, Call call) {
  Scope scope;
  if (!scope.outermost()) return call();
  if (!AnnotationsEnabled()) return Ignored(call);
  if (IsHiddenGrpcCaller(caller)) {
    auto result = Ignored(call);
    NoteTaken(mu, mode | kHidden);
    return result;
  }
  __tsan_mutex_pre_lock(mu, mode);
  auto result = call();
  __tsan_mutex_post_lock(mu, mode, 0);
  NoteTaken(mu, mode);
  return result;
}

// TryLock, ReaderTryLock: `call` returns whether it took `mu`.
template <typename Call>
bool TryTake(void* mu, unsigned mode, const void* caller, Call call) {
  Scope scope;
  if (!scope.outermost()) return call();
  if (!AnnotationsEnabled()) return Ignored(call);
  if (IsHiddenGrpcCaller(caller)) {
    const bool locked = Ignored(call);
    if (locked) NoteTaken(mu, mode | kHidden);
    return locked;
  }
  __tsan_mutex_pre_lock(mu, mode | __tsan_mutex_try_lock);
  const bool locked = call();
  __tsan_mutex_post_lock(
      mu,
      mode | __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed),
      0);
  if (locked) NoteTaken(mu, mode);
  return locked;
}

// Unlock, ReaderUnlock: `call` releases `mu`, held as it was taken (and in
// reader mode if `mode` is kReader).
template <typename Call>
void Release(void* mu, unsigned mode, Call call) {
  Scope scope;
  if (!scope.outermost()) {
    call();
    return;
  }
  const unsigned how = HowHeld(mu);
  NoteReleased(mu);
  if (!AnnotationsEnabled() || (how & kHidden)) {
    Ignored(call);
    return;
  }
  mode |= how & kReader;
  __tsan_mutex_pre_unlock(mu, mode);
  call();
  __tsan_mutex_post_unlock(mu, mode);
}

// CondVar::Wait*, Mutex::Await*: `call` releases the held `mu` and takes
// it again before it returns.
template <typename Call>
auto ReleaseAndRetake(void* mu, Call call) {
  Scope scope;
  if (!scope.outermost()) return call();
  const unsigned how = HowHeld(mu);
  if (!AnnotationsEnabled() || (how & kHidden)) return Ignored(call);
  const unsigned mode = how & kReader;
  __tsan_mutex_pre_unlock(mu, mode);
  __tsan_mutex_post_unlock(mu, mode);
  __tsan_mutex_pre_lock(mu, mode);
  auto result = call();
  __tsan_mutex_post_lock(mu, mode, 0);
  return result;
}

// Notification's flag, which the inline HasBeenNotified() loads with
// acquire order: TSan pairs that load with a __tsan_release on the same
// address. Layout of absl 20220623: { Mutex mutex_; atomic<bool> notified_yet_; }.
static_assert(sizeof(absl::Mutex) == sizeof(intptr_t) &&
                  sizeof(absl::Notification) == 2 * sizeof(intptr_t),
              "absl::Notification layout changed: update NotificationFlag");
void* NotificationFlag(const absl::Notification* n) {
  return const_cast<char*>(reinterpret_cast<const char*>(n)) +
         sizeof(absl::Mutex);
}

// WaitForNotification*: `call` returns whether `n` was notified.
template <typename Call>
bool WaitedForNotification(const absl::Notification* n, Call call) {
  Scope scope;
  if (!scope.outermost()) return call();
  const bool notified = Ignored(call);
  if (notified && AnnotationsEnabled()) __tsan_acquire(NotificationFlag(n));
  return notified;
}

#define TASKD_TSAN_CALLER __builtin_return_address(0)

}  // namespace

namespace absl {

// ---- Mutex: exclusive

void Mutex::Lock() {
  static const auto real = RealAbsl<void (*)(Mutex*)>("5Mutex4LockEv");
  Take(this, 0, TASKD_TSAN_CALLER, [&] { real(this); return 0; });
}

bool Mutex::TryLock() {
  static const auto real = RealAbsl<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  return TryTake(this, 0, TASKD_TSAN_CALLER, [&] { return real(this); });
}

void Mutex::Unlock() {
  static const auto real = RealAbsl<void (*)(Mutex*)>("5Mutex6UnlockEv");
  Release(this, 0, [&] { real(this); return 0; });
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real = RealAbsl<void (*)(Mutex*, const Condition&)>(
      "5Mutex8LockWhenERKNS0_9ConditionE");
  Take(this, 0, TASKD_TSAN_CALLER, [&] { real(this, cond); return 0; });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real =
      RealAbsl<bool (*)(Mutex*, const Condition&, Duration)>(
          "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Take(this, 0, TASKD_TSAN_CALLER,
              [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = RealAbsl<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Take(this, 0, TASKD_TSAN_CALLER,
              [&] { return real(this, cond, deadline); });
}

// ---- Mutex: shared

void Mutex::ReaderLock() {
  static const auto real = RealAbsl<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  Take(this, kReader, TASKD_TSAN_CALLER, [&] { real(this); return 0; });
}

bool Mutex::ReaderTryLock() {
  static const auto real =
      RealAbsl<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  return TryTake(this, kReader, TASKD_TSAN_CALLER,
                 [&] { return real(this); });
}

void Mutex::ReaderUnlock() {
  static const auto real =
      RealAbsl<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  Release(this, kReader, [&] { real(this); return 0; });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real = RealAbsl<void (*)(Mutex*, const Condition&)>(
      "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Take(this, kReader, TASKD_TSAN_CALLER, [&] { real(this, cond); return 0; });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond,
                                      Duration timeout) {
  static const auto real =
      RealAbsl<bool (*)(Mutex*, const Condition&, Duration)>(
          "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Take(this, kReader, TASKD_TSAN_CALLER,
              [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = RealAbsl<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Take(this, kReader, TASKD_TSAN_CALLER,
              [&] { return real(this, cond, deadline); });
}

// ---- Mutex: waiting with the lock held

void Mutex::Await(const Condition& cond) {
  static const auto real = RealAbsl<void (*)(Mutex*, const Condition&)>(
      "5Mutex5AwaitERKNS0_9ConditionE");
  ReleaseAndRetake(this, [&] { real(this, cond); return 0; });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real =
      RealAbsl<bool (*)(Mutex*, const Condition&, Duration)>(
          "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return ReleaseAndRetake(this, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = RealAbsl<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return ReleaseAndRetake(this, [&] { return real(this, cond, deadline); });
}

Mutex::~Mutex() {
  static const auto real = RealAbsl<void (*)(Mutex*)>("5MutexD1Ev");
  Scope scope;
  if (!scope.outermost()) {
    real(this);
    return;
  }
  // Forget TSan's state for this address (a Mutex on the stack is not freed
  // through free(), where TSan would otherwise drop it), and check it is
  // not destroyed while held or while in use. Not for the mutexes that
  // libraries destroy (gRPC's own, or any global at exit, from libc's exit
  // handlers): their owners' last uses are ordered by reference counts TSan
  // cannot see, and a library's global may be destroyed held by a thread
  // that exit() did not stop (absl::ParseCommandLine exits from --help
  // holding one). Those are freed by free(), or never reused.
  if (AnnotationsEnabled() && !IsSystemLibraryCode(TASKD_TSAN_CALLER)) {
    __tsan_mutex_destroy(this, 0);
  }
  Ignored([&] { real(this); return 0; });
}

// ---- CondVar (Signal/SignalAll carry no happens-before of their own: the
// woken thread retakes the mutex, and that is what orders it).

void CondVar::Wait(Mutex* mu) {
  static const auto real =
      RealAbsl<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  ReleaseAndRetake(mu, [&] { real(this, mu); return 0; });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = RealAbsl<bool (*)(CondVar*, Mutex*, Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return ReleaseAndRetake(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = RealAbsl<bool (*)(CondVar*, Mutex*, Time)>(
      "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return ReleaseAndRetake(mu, [&] { return real(this, mu, deadline); });
}

// ---- Notification: Notify releases on the flag; a waiter that returns
// notified (or the inline HasBeenNotified that reads true) acquires it.

void Notification::Notify() {
  static const auto real =
      RealAbsl<void (*)(Notification*)>("12Notification6NotifyEv");
  Scope scope;
  if (!scope.outermost()) return real(this);
  if (AnnotationsEnabled()) __tsan_release(NotificationFlag(this));
  Ignored([&] { real(this); return 0; });
}

void Notification::WaitForNotification() const {
  static const auto real = RealAbsl<void (*)(const Notification*)>(
      "12Notification19WaitForNotificationEv", true);
  WaitedForNotification(this, [&] {
    real(this);
    return true;
  });
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const auto real = RealAbsl<bool (*)(const Notification*, Duration)>(
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", true);
  return WaitedForNotification(this, [&] { return real(this, timeout); });
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const auto real = RealAbsl<bool (*)(const Notification*, Time)>(
      "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE", true);
  return WaitedForNotification(this, [&] { return real(this, deadline); });
}

// ---- BlockingCounter: every decrement happens before Wait returns (only
// the last decrement takes abseil's internal lock; the others are atomics
// TSan cannot see).

bool BlockingCounter::DecrementCount() {
  static const auto real = RealAbsl<bool (*)(BlockingCounter*)>(
      "15BlockingCounter14DecrementCountEv");
  Scope scope;
  if (!scope.outermost()) return real(this);
  if (AnnotationsEnabled()) __tsan_release(this);
  return Ignored([&] { return real(this); });
}

void BlockingCounter::Wait() {
  static const auto real =
      RealAbsl<void (*)(BlockingCounter*)>("15BlockingCounter4WaitEv");
  Scope scope;
  if (!scope.outermost()) return real(this);
  Ignored([&] { real(this); return 0; });
  if (AnnotationsEnabled()) __tsan_acquire(this);
}

}  // namespace absl
