// Future<T> / Promise<T>: a one-shot, shared result of an asynchronous
// operation, as absl::StatusOr<T>. AsyncTaskClient (async_client.h) returns
// them; when.h combines them (WhenAll / WhenAny).
//
//   Future<v1::Task> f = client.Await(id);
//   absl::StatusOr<v1::Task> t = f.Get(absl::Seconds(10));   // blocks, or
//   absl::StatusOr<v1::Task> t = co_await f;                 // suspends, or
//   f.Then([](const absl::StatusOr<v1::Task>& t) { ... });   // callback
//
// A Future is also a coroutine return type: a function returning Future<T>
// that uses co_await / co_return runs eagerly on the calling thread up to its
// first suspension, and its future resolves with the co_return'ed value.
// Such a coroutine must not throw (an exception terminates the process).
//
// Where continuations run: a future made with an Executor hands every
// callback and every coroutine resumption to it; without one they run on the
// thread that resolves the future (for AsyncTaskClient: its completion-queue
// thread), or on the calling thread when the future is already resolved.
// Continuations on a completion-queue thread must not block; in particular
// they must not Get() an unresolved future of the same client.
//
// Thread-safety: Future and Promise are cheap to copy (copies share one
// state) and all methods are thread-safe. A resolved value never changes.
#ifndef TASKD_CLIENTS_CPP_FUTURE_H_
#define TASKD_CLIENTS_CPP_FUTURE_H_

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace taskd {

// Runs a continuation somewhere else (a thread pool, an event loop). Must
// run every function it is given exactly once; may run it inline.
using Executor = std::function<void(std::function<void()>)>;

template <typename T>
class Future;
template <typename T>
class Promise;

namespace internal {

// The state a Future and its Promise share. Callbacks are kept until the
// value is set and then run once each, outside the lock.
template <typename T>
class FutureState : public std::enable_shared_from_this<FutureState<T>> {
 public:
  using Callback = std::function<void(const absl::StatusOr<T>&)>;

  explicit FutureState(Executor executor) : executor_(std::move(executor)) {}

  // Sets the value and runs the callbacks; false (and no effect) if a value
  // was set before.
  bool Set(absl::StatusOr<T> value) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<Callback> callbacks;
    {
      absl::MutexLock lock(&mu_);
      if (value_.has_value()) return false;
      value_.emplace(std::move(value));
      callbacks.swap(callbacks_);
    }
    for (Callback& callback : callbacks) Run(std::move(callback));
    return true;
  }

  bool ready() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return value_.has_value();
  }

  // Registers `callback` unless the value is already set; false then (and
  // `callback` is not run).
  bool AddCallbackIfPending(Callback callback) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (value_.has_value()) return false;
    callbacks_.push_back(std::move(callback));
    return true;
  }

  // Runs `callback` once the value is set (now, if it is).
  void OnReady(Callback callback) ABSL_LOCKS_EXCLUDED(mu_) {
    if (!AddCallbackIfPending(callback)) Run(std::move(callback));
  }

  // Waits at most `timeout`; true when the value is set.
  bool WaitFor(absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto has_value = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return value_.has_value();
    };
    if (timeout == absl::InfiniteDuration()) {
      mu_.Await(absl::Condition(&has_value));
      return true;
    }
    return mu_.AwaitWithTimeout(absl::Condition(&has_value), timeout);
  }

  // Requires ready(). The value is immutable once set, so the reference
  // stays valid for the state's life.
  const absl::StatusOr<T>& value() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return *value_;
  }

  const Executor& executor() const { return executor_; }

 private:
  void Run(Callback callback) {
    if (!executor_) {
      callback(value());
      return;
    }
    // The posted function holds its own reference to the state.
    executor_([self = this->shared_from_this(),
               callback = std::move(callback)] { callback(self->value()); });
  }

  const Executor executor_;  // constant after construction; may be empty
  mutable absl::Mutex mu_;
  std::optional<absl::StatusOr<T>> value_ ABSL_GUARDED_BY(mu_);
  std::vector<Callback> callbacks_ ABSL_GUARDED_BY(mu_);
};

template <typename T>
struct FuturePromiseType;

}  // namespace internal

template <typename T>
class Future {
 public:
  using promise_type = internal::FuturePromiseType<T>;

  // An invalid future (valid() is false); Get() returns FAILED_PRECONDITION.
  Future() = default;

  // A future that is already resolved with `value`.
  static Future Ready(absl::StatusOr<T> value) {
    auto state = std::make_shared<internal::FutureState<T>>(nullptr);
    state->Set(std::move(value));
    return Future(std::move(state));
  }

  bool valid() const { return state_ != nullptr; }
  bool ready() const { return state_ != nullptr && state_->ready(); }

  // Blocks until resolved, at most `timeout`, and returns the value.
  // DEADLINE_EXCEEDED (the future stays pending) when `timeout` passes first.
  absl::StatusOr<T> Get(
      absl::Duration timeout = absl::InfiniteDuration()) const {
    if (state_ == nullptr) {
      return absl::FailedPreconditionError("Get() on an invalid Future");
    }
    if (!state_->WaitFor(timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "not resolved within ", absl::FormatDuration(timeout)));
    }
    return state_->value();
  }

  // Calls `callback` with the value once resolved: now, on this thread, when
  // it already is (unless the future has an executor). Requires valid().
  void Then(std::function<void(const absl::StatusOr<T>&)> callback) const {
    state_->OnReady(std::move(callback));
  }

  // `co_await future` yields the absl::StatusOr<T>. A resolved future does
  // not suspend; otherwise the coroutine resumes where continuations run
  // (see the file comment). The coroutine must not be destroyed while
  // suspended here.
  class Awaiter {
   public:
    explicit Awaiter(std::shared_ptr<internal::FutureState<T>> state)
        : state_(std::move(state)) {}
    bool await_ready() const { return state_ == nullptr || state_->ready(); }
    bool await_suspend(std::coroutine_handle<> handle) {
      // The callback owns a reference to the state it reads.
      return state_->AddCallbackIfPending(
          [handle](const absl::StatusOr<T>&) { handle.resume(); });
    }
    absl::StatusOr<T> await_resume() const {
      if (state_ == nullptr) {
        return absl::FailedPreconditionError("co_await on an invalid Future");
      }
      return state_->value();
    }

   private:
    std::shared_ptr<internal::FutureState<T>> state_;
  };
  Awaiter operator co_await() const { return Awaiter(state_); }

 private:
  friend class Promise<T>;
  friend struct internal::FuturePromiseType<T>;
  explicit Future(std::shared_ptr<internal::FutureState<T>> state)
      : state_(std::move(state)) {}

  std::shared_ptr<internal::FutureState<T>> state_;
};

// The producer's side. Set() resolves every copy of future() once; later
// calls return false and change nothing.
template <typename T>
class Promise {
 public:
  explicit Promise(Executor executor = nullptr)
      : state_(std::make_shared<internal::FutureState<T>>(
            std::move(executor))) {}
  Future<T> future() const { return Future<T>(state_); }
  bool Set(absl::StatusOr<T> value) const {
    return state_->Set(std::move(value));
  }

 private:
  std::shared_ptr<internal::FutureState<T>> state_;
};

namespace internal {

// Makes Future<T> a coroutine return type: eager start, no suspension at
// the end, the co_return'ed value resolves the future.
template <typename T>
struct FuturePromiseType {
  Promise<T> promise;
  Future<T> get_return_object() { return promise.future(); }
  std::suspend_never initial_suspend() noexcept { return {}; }
  std::suspend_never final_suspend() noexcept { return {}; }
  void return_value(absl::StatusOr<T> value) { promise.Set(std::move(value)); }
  void unhandled_exception() { std::terminate(); }
};

}  // namespace internal
}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_FUTURE_H_
