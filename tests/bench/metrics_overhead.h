// taskd_bench's metrics on/off comparison: what taskd's /metrics (counters,
// histograms, the gRPC interceptor) costs on the submit path. Two taskd
// servers run side by side, one with metrics and one without
// (--metrics_listen=); the load goes to them in alternating short slices
// (on, off, off, on, on, off, ...), so that whatever else a shared machine
// does hits both alike.
//
//   absl::StatusOr<MetricsOverhead> m =
//       CompareMetrics(env, "memory", 64, 20, absl::Milliseconds(250));
//   double cost = m->rate_on / m->rate_off - 1;  // budget: -3 %
//
// Thread-compatible.
#ifndef TASKD_TESTS_BENCH_METRICS_OVERHEAD_H_
#define TASKD_TESTS_BENCH_METRICS_OVERHEAD_H_

#include <cmath>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/bench/bench_env.h"

namespace taskd::bench {

struct MetricsOverhead {
  double rate_on = NAN;  // submits per second, metrics on
  double rate_off = NAN;
  double cpu_us_on = NAN;  // server CPU per submit
  double cpu_us_off = NAN;
  int64_t submits_on = 0;
  int64_t submits_off = 0;
  int64_t errors = 0;
};

// `slices` slices of `slice` against each server in `mode`, with
// `in_flight` SubmitTask calls in flight (at most BenchConfig::tasks per
// slice).
absl::StatusOr<MetricsOverhead> CompareMetrics(BenchEnv& env,
                                               absl::string_view mode,
                                               int in_flight, int slices,
                                               absl::Duration slice);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_METRICS_OVERHEAD_H_
