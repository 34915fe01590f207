// WhenAll / WhenAny: combinators over Futures (future.h), like asyncio's
// gather(..., return_exceptions=True) and wait(..., FIRST_COMPLETED).
//
//   std::vector<Future<v1::Task>> tasks = ...;
//   auto all = co_await WhenAll(tasks);   // every outcome, in input order
//   auto first = co_await WhenAny(tasks); // index of the first resolved
//
// Neither blocks a thread. The combined future has no executor of its own:
// it resolves on the thread (or executor) where the deciding input's
// continuation runs. The inputs keep resolving independently; a combined
// future keeps the inputs' states alive until they resolve.
//
// Thread-safe: inputs may resolve concurrently on any threads.
#ifndef TASKD_CLIENTS_CPP_WHEN_H_
#define TASKD_CLIENTS_CPP_WHEN_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "clients/cpp/future.h"

namespace taskd {

// Resolves, always OK, with every input's outcome in input order once all
// have resolved (an error of one input is its entry, not the whole
// result's). Empty input: resolved at once with an empty vector. Every
// input must be valid().
template <typename T>
Future<std::vector<absl::StatusOr<T>>> WhenAll(
    const std::vector<Future<T>>& futures) {
  using Result = std::vector<absl::StatusOr<T>>;
  if (futures.empty()) return Future<Result>::Ready(Result());
  struct Gather {
    explicit Gather(size_t n) : remaining(n), slots(n) {}
    Promise<Result> promise;
    absl::Mutex mu;
    size_t remaining ABSL_GUARDED_BY(mu);
    std::vector<std::optional<absl::StatusOr<T>>> slots ABSL_GUARDED_BY(mu);
  };
  auto gather = std::make_shared<Gather>(futures.size());
  Future<Result> result = gather->promise.future();
  for (size_t i = 0; i < futures.size(); ++i) {
    // Each callback owns a reference to the shared gather state.
    futures[i].Then([gather, i](const absl::StatusOr<T>& value) {
      Result done;
      {
        absl::MutexLock lock(&gather->mu);
        gather->slots[i].emplace(value);
        if (--gather->remaining > 0) return;
        done.reserve(gather->slots.size());
        for (auto& slot : gather->slots) done.push_back(std::move(*slot));
        gather->slots.clear();
      }
      gather->promise.Set(std::move(done));
    });
  }
  return result;
}

// Resolves with the index of the first input to resolve (others may have
// resolved too by the time a continuation runs; check ready()).
// INVALID_ARGUMENT for an empty input. Every input must be valid().
template <typename T>
Future<size_t> WhenAny(const std::vector<Future<T>>& futures) {
  if (futures.empty()) {
    return Future<size_t>::Ready(
        absl::InvalidArgumentError("WhenAny of no futures"));
  }
  // Set() keeps the first index; the later callbacks change nothing.
  auto promise = std::make_shared<Promise<size_t>>();
  Future<size_t> result = promise->future();
  for (size_t i = 0; i < futures.size(); ++i) {
    futures[i].Then(
        [promise, i](const absl::StatusOr<T>&) { promise->Set(i); });
  }
  return result;
}

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_WHEN_H_
