// taskd_bench's per-call rows: the same client shapes against the null-RPC
// echo_server and against taskd (submits only, and end to end with the SDK
// worker), the server's CPU time per task, and submit+await round trips.
// Each run starts a fresh server with a fresh data directory and kills it
// after; every loop is bounded by BenchConfig::tasks (or round_trips) and
// by BenchConfig::run_limit.
//
//   absl::StatusOr<MessageSizes> sizes = ProbeMessageSizes(env);
//   absl::StatusOr<RunFigures> null64 =
//       RunEcho(env, *sizes, Shape::kInFlight);
//   absl::StatusOr<RunFigures> taskd64 =
//       RunSubmit(env, "sync", Shape::kInFlight);
//   double ratio = taskd64->rate / null64->rate;
//
// Functions are thread-compatible (one at a time: they share the machine).
#ifndef TASKD_TESTS_BENCH_THROUGHPUT_H_
#define TASKD_TESTS_BENCH_THROUGHPUT_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/bench/bench_env.h"

namespace taskd::bench {

// How one client sends its tasks.
enum class Shape {
  kOneAtATime,  // one call in flight, one task per call
  kInFlight,    // BenchConfig::in_flight calls in flight, one task each
  kBatched,     // one SubmitTasks call of BenchConfig::batch tasks at a time
};

// Serialized sizes of taskd's submit messages for the benchmark's task, so
// that the echo server's calls carry as many bytes.
struct MessageSizes {
  size_t submit_request = 0;
  size_t submit_response = 0;
  size_t batch_request = 0;
  size_t batch_response = 0;
};

// What one run measured.
struct RunFigures {
  double rate = 0;  // tasks per second (null RPC: tasks' worth of calls)
  double cpu_us_per_task = NAN;  // the server's user+system CPU per task
  double p50_us = NAN;           // per call (or per round trip)
  double p99_us = NAN;
  // 0..1: CPU the machine's other processes used during the run (noise).
  double others_cpu_share = NAN;
  int64_t n = 0;  // tasks done
  int64_t errors = 0;
  std::string first_error;
  bool time_limited = false;
  double seconds = 0;
  std::vector<std::pair<std::string, double>> extra;
};

// Several runs of one measurement as one: the median of each of rate, CPU
// per task, p50 and p99 (each on its own); the mean of others_cpu_share;
// the sums of n, errors and seconds; time_limited if any was; the first
// error; the extra figures of the median-rate run, with "runs", "rate_min"
// and "rate_max". `runs` must not be empty.
RunFigures MedianOf(std::vector<RunFigures> runs);

// Sizes of the messages of the taskd under test (one SubmitTask and one
// SubmitTasks of BenchConfig::batch on a throwaway memory-mode server).
absl::StatusOr<MessageSizes> ProbeMessageSizes(BenchEnv& env);

// The null RPC on `shape`: Echo.Call with request and reply sized like
// SubmitTask's (SubmitTasks' for kBatched). Server CPU always measured.
absl::StatusOr<RunFigures> RunEcho(BenchEnv& env, const MessageSizes& sizes,
                                   Shape shape);

// BenchConfig::tasks submits to taskd in `mode`, no worker. Server CPU is
// measured; the in-flight run also reads the journal's records per commit
// (extra "journal_records_per_commit", durable modes).
absl::StatusOr<RunFigures> RunSubmit(BenchEnv& env, absl::string_view mode,
                                     Shape shape);

// End to end: the same submits with the SDK worker (in this process,
// BenchConfig::worker_concurrency) running them; the rate counts from the
// first submit until the server holds every task as SUCCEEDED.
absl::StatusOr<RunFigures> RunEndToEnd(BenchEnv& env, absl::string_view mode,
                                       Shape shape);

// BenchConfig::round_trips submit+await round trips, one at a time, with
// the worker running: SubmitTask, then Await on its id until SUCCEEDED.
absl::StatusOr<RunFigures> RunRoundTrips(BenchEnv& env, absl::string_view mode);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_THROUGHPUT_H_
