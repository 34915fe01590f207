#include "tests/bench/load.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace taskd::bench {

double LoadResult::ItemsPerSecond() const {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? items_ok / seconds : 0;
}

LoadResult RunLoad(const LoadShape& shape, const CallStarter& start) {
  LoadResult result;
  result.latencies_us.reserve(
      static_cast<size_t>(std::min<int64_t>(shape.calls, 1'000'000)));
  grpc::CompletionQueue cq;
  int64_t started = 0;
  int outstanding = 0;
  const absl::Time begin = absl::Now();
  const absl::Time stop_starting = begin + shape.time_limit;
  absl::Time end = begin;
  auto start_one = [&] {
    // The call owns itself until its tag returns below.
    start(&cq, absl::Now() + shape.call_timeout).release();
    ++started;
    ++outstanding;
  };
  while (outstanding < shape.in_flight && started < shape.calls) start_one();

  void* tag = nullptr;
  bool ok = false;
  // Every call has a deadline, so Next() returns for each.
  while (outstanding > 0 && cq.Next(&tag, &ok)) {
    std::unique_ptr<PendingCall> call(static_cast<PendingCall*>(tag));
    --outstanding;
    end = absl::Now();
    if (ok && call->status.ok()) {
      ++result.calls_ok;
      result.items_ok += call->items;
      result.latencies_us.push_back(
          absl::ToDoubleMicroseconds(end - call->start));
    } else {
      ++result.calls_failed;
      if (result.first_error.empty()) {
        result.first_error =
            ok ? absl::StrCat("code ", call->status.error_code(), ": ",
                              call->status.error_message())
               : "completion queue returned not ok";
      }
    }
    if (started < shape.calls) {
      if (end < stop_starting) {
        start_one();
      } else {
        result.time_limited = true;
      }
    }
  }
  result.elapsed = end - begin;
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) delete static_cast<PendingCall*>(tag);
  return result;
}

void ShutdownAndDrain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double at = q * static_cast<double>(values.size() - 1);
  return values[static_cast<size_t>(at + 0.5)];
}

}  // namespace taskd::bench
