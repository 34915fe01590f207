// Hand-offs through abseil's synchronisation, for tsan_selftest:
//
//   guarded_handoffs <scenario>
//
// Each scenario passes plain (non-atomic) data from one thread to another
// through one abseil primitive (or shares an absl::Status). The reader thread starts before the data is
// written, so nothing but the primitive orders the two accesses. Under the
// tsan build TSan must report nothing (the interposer tells it about the
// primitive); with TASKD_TSAN_ANNOTATE=0 it must report a race (which proves
// the scenario would catch a missing annotation). Exits 0 when the reader
// saw the value, 1 on a wrong value, 2 on an unknown scenario.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace {

constexpr int kValue = 42;

// The datum handed over; deliberately not atomic and not guarded.
struct Plain {
  int value = 0;
};

// Two threads each add 1000 under the mutex, one with Lock, one with TryLock.
bool MutexCounter() {
  absl::Mutex mu;
  int counter = 0;
  std::thread locker([&] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
  });
  std::thread try_locker([&] {
    for (int i = 0; i < 1000; ++i) {
      while (!mu.TryLock()) std::this_thread::yield();
      ++counter;
      mu.Unlock();
    }
  });
  locker.join();
  try_locker.join();
  return counter == 2000;
}

// Runs `reader` on a new thread, then `writer` on this one; true when the
// reader saw kValue.
bool HandOff(const std::function<void(Plain&)>& writer,
             const std::function<int(Plain&)>& reader) {
  Plain plain;
  int seen = 0;
  std::thread reading([&] { seen = reader(plain); });
  writer(plain);
  reading.join();
  return seen == kValue;
}

// What the mutex scenarios share: the writer sets the value outside the
// lock, then `ready` under it (and signals `cv`); each reader waits for
// `ready` its own way and reads the value.
struct Published {
  absl::Mutex mu;
  absl::CondVar cv;
  bool ready ABSL_GUARDED_BY(mu) = false;

  bool HandOffTo(const std::function<int(Plain&)>& reader) {
    return HandOff(
        [this](Plain& p) {
          p.value = kValue;
          absl::MutexLock lock(&mu);
          ready = true;
          cv.SignalAll();
        },
        reader);
  }
};

bool CondVarWait() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    {
      absl::MutexLock lock(&pub.mu);
      while (!pub.ready) pub.cv.Wait(&pub.mu);
    }
    return p.value;
  });
}

bool CondVarWaitWithTimeout() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    {
      absl::MutexLock lock(&pub.mu);
      while (!pub.ready) pub.cv.WaitWithTimeout(&pub.mu, absl::Hours(1));
    }
    return p.value;
  });
}

bool LockWhen() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    pub.mu.LockWhen(absl::Condition(&pub.ready));
    pub.mu.Unlock();
    return p.value;
  });
}

bool LockWhenWithTimeout() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    const bool met = pub.mu.LockWhenWithTimeout(absl::Condition(&pub.ready),
                                                absl::Hours(1));
    pub.mu.Unlock();
    return met ? p.value : -1;
  });
}

bool Await() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    {
      absl::MutexLock lock(&pub.mu);
      pub.mu.Await(absl::Condition(&pub.ready));
    }
    return p.value;
  });
}

// AwaitWithTimeout calls AwaitWithDeadline inside abseil: the nested call
// must not annotate twice.
bool AwaitWithTimeout() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    bool met;
    {
      absl::MutexLock lock(&pub.mu);
      met = pub.mu.AwaitWithTimeout(absl::Condition(&pub.ready),
                                    absl::Hours(1));
    }
    return met ? p.value : -1;
  });
}

// A reader-mode holder that Awaits: released and retaken in reader mode.
bool ReaderAwait() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    absl::ReaderMutexLock lock(&pub.mu);
    pub.mu.Await(absl::Condition(&pub.ready));
    return p.value;
  });
}

bool ReaderLockWhen() {
  Published pub;
  return pub.HandOffTo([&](Plain& p) {
    pub.mu.ReaderLockWhen(absl::Condition(&pub.ready));
    const int seen = p.value;
    pub.mu.ReaderUnlock();
    return seen;
  });
}

bool NotificationWait() {
  absl::Notification done;
  return HandOff(
      [&](Plain& p) {
        p.value = kValue;
        done.Notify();
      },
      [&](Plain& p) {
        done.WaitForNotification();
        return p.value;
      });
}

bool NotificationWaitWithTimeout() {
  absl::Notification done;
  return HandOff(
      [&](Plain& p) {
        p.value = kValue;
        done.Notify();
      },
      [&](Plain& p) {
        return done.WaitForNotificationWithTimeout(absl::Hours(1)) ? p.value
                                                                   : -1;
      });
}

// HasBeenNotified is inline (an acquire load in the caller's code): it
// pairs with the release the interposer makes on the same flag in Notify.
bool NotificationPoll() {
  absl::Notification done;
  return HandOff(
      [&](Plain& p) {
        p.value = kValue;
        done.Notify();
      },
      [&](Plain& p) {
        while (!done.HasBeenNotified()) std::this_thread::yield();
        return p.value;
      });
}

// Both decrements (the first one is an atomic inside abseil only) happen
// before Wait returns.
bool BlockingCounterWait() {
  absl::BlockingCounter pending(2);
  int first = 0;
  int second = 0;
  int seen = 0;
  std::thread waiter([&] {
    pending.Wait();
    seen = first + second;
  });
  std::thread other([&] {
    second = kValue - 1;
    pending.DecrementCount();
  });
  first = 1;
  pending.DecrementCount();
  other.join();
  waiter.join();
  return seen == kValue;
}

// absl::Status shares its representation between copies; the copy that
// drops the last reference deletes it inside libabsl_status. Here another
// thread copies and drops its copies of a Status before this one drops the
// last; the relaxed flag says when without ordering anything, so only the
// reference count orders the other thread's use before the delete.
bool StatusLastReference() {
  absl::Status original = absl::InternalError("a shared representation");
  std::atomic<bool> dropped{false};
  std::thread other([copy = original, &dropped]() mutable {
    {
      absl::Status again = copy;
    }
    copy = absl::OkStatus();
    dropped.store(true, std::memory_order_relaxed);
  });
  while (!dropped.load(std::memory_order_relaxed)) std::this_thread::yield();
  const bool shared = !original.ok();
  original = absl::OkStatus();  // the last reference: deletes it
  other.join();
  return shared;
}

struct Scenario {
  const char* name;
  bool (*run)();
};

constexpr Scenario kScenarios[] = {
    {"mutex", MutexCounter},
    {"condvar", CondVarWait},
    {"condvar_timeout", CondVarWaitWithTimeout},
    {"lock_when", LockWhen},
    {"lock_when_timeout", LockWhenWithTimeout},
    {"await", Await},
    {"await_timeout", AwaitWithTimeout},
    {"reader_await", ReaderAwait},
    {"reader_lock_when", ReaderLockWhen},
    {"notification", NotificationWait},
    {"notification_timeout", NotificationWaitWithTimeout},
    {"notification_poll", NotificationPoll},
    {"blocking_counter", BlockingCounterWait},
    {"status", StatusLastReference},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Scenario& s : kScenarios) std::printf("%s\n", s.name);
    return 0;
  }
  for (const Scenario& s : kScenarios) {
    if (argc == 2 && std::strcmp(argv[1], s.name) == 0) {
      if (s.run()) return 0;
      std::fprintf(stderr, "%s: the reader saw a wrong value\n", s.name);
      return 1;
    }
  }
  std::fprintf(stderr, "usage: %s --list | <scenario>\n", argv[0]);
  return 2;
}
