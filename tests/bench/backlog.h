// taskd_bench's backlog rows: a large queue of pending tasks (1M by
// default, random 16-byte payloads, submitted in batches) and what it costs —
// server RSS and bytes per task beyond the payload, bytes on disk, the
// recovery after kill -9, and how fast a worker gets the front of it
// compared with a server holding only the tasks it pulls.
//
//   absl::StatusOr<BacklogFigures> backlog =
//       RunBacklog(env, "async", 1000000, 20000, absl::Minutes(10));
//
// Thread-compatible.
#ifndef TASKD_TESTS_BENCH_BACKLOG_H_
#define TASKD_TESTS_BENCH_BACKLOG_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/bench/bench_env.h"

namespace taskd::bench {

// One dispatch measurement: a worker (BenchConfig::worker_concurrency)
// started on a server just recovered (kill -9, restart) with tasks queued
// runs the first `tasks` of them; rate = tasks / (worker start to the last
// one SUCCEEDED on the server).
struct DispatchFigures {
  int64_t tasks = 0;  // run (fewer when time ran out)
  double rate = NAN;  // tasks per second
  double seconds = NAN;
  std::string error;
};

struct BacklogFigures {
  int64_t queued = 0;  // tasks submitted and acknowledged
  int64_t failed_calls = 0;
  std::string first_error;
  bool fill_time_limited = false;
  double fill_rate = NAN;  // tasks per second while queueing them
  double fill_seconds = NAN;
  int64_t rss_empty = 0;        // server RSS before the first submit
  int64_t rss_full = 0;         // ... with `queued` pending
  double bytes_per_task = NAN;  // (rss_full - rss_empty) / queued - payload
  int64_t data_dir_bytes = 0;   // files in the data directory when full

  double recovery_seconds = NAN;   // restart after kill -9 to first answer
  std::string recovery_log;        // the server's own "recovered ..." line
  int64_t recovered_pending = -1;  // GetQueue's pending count after restart
  int64_t rss_recovered = 0;

  DispatchFigures dispatch_full;   // the front of the recovered backlog
  DispatchFigures dispatch_small;  // a fresh server with only those queued
};

// Runs the whole sequence on fresh servers in `mode` (a durable mode):
// queue `queued` tasks within `fill_limit`, measure, kill -9, restart on the
// same data, measure, dispatch `dispatch_tasks` of the backlog; then the
// same on a fresh server holding only `dispatch_tasks` (queued, killed,
// recovered, dispatched).
absl::StatusOr<BacklogFigures> RunBacklog(BenchEnv& env, absl::string_view mode,
                                          int64_t queued,
                                          int64_t dispatch_tasks,
                                          absl::Duration fill_limit);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_BACKLOG_H_
