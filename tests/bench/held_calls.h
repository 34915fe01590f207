// taskd_bench's memory rows: what a server holds per call it keeps open.
// K calls (without deadlines) are opened at once over several connections
// and held until the server reports them all registered; the server's RSS
// before and after gives bytes per call, and the time until the last one
// registered.
//
//   absl::StatusOr<HeldFigures> awaits =
//       RunHeldCalls(env, HeldKind::kTaskdAwait, "memory", 100000, 16);
//   absl::StatusOr<HeldFigures> idle =
//       RunHeldCalls(env, HeldKind::kEchoIdle, "", 100000, 16);
//   double ratio = awaits->rss_bytes_per_call / idle->rss_bytes_per_call;
//
// Thread-compatible.
#ifndef TASKD_TESTS_BENCH_HELD_CALLS_H_
#define TASKD_TESTS_BENCH_HELD_CALLS_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/bench/bench_env.h"

namespace taskd::bench {

enum class HeldKind {
  kEchoIdle,     // echo_server's Idle stream: gRPC's own cost of a call
  kTaskdStream,  // taskd Stream{queue} on a queue without events
  kTaskdAwait,   // taskd Await{one id} on a pending task no worker serves
};

struct HeldFigures {
  int64_t requested = 0;          // calls opened
  int64_t held = 0;               // calls the server reported open at the end
  bool complete = false;          // held reached requested within the limit
  double start_seconds = NAN;     // this client's time to open them all
  double register_seconds = NAN;  // first call opened to all registered
  int64_t rss_before = 0;  // server RSS with the connections open, no calls
  int64_t rss_after = 0;   // ... with the calls held
  double rss_bytes_per_call = NAN;
  double server_cpu_us_per_call = NAN;  // opening to counted, per call
  double others_cpu_share = NAN;        // see CpuMeter (proc_stats.h)
  int channels = 0;
  std::string error;  // why not complete
};

// Holds `calls` calls of `kind` spread over `channels` connections on a
// fresh server (taskd in `mode`), waiting at most `limit` for the server to
// register them. The server counts them: echo_server's Count, taskd's
// `taskd_awaits` / `taskd_streams` gauges. For kTaskdAwait, `calls` tasks
// are submitted first (each awaited once) and are in `rss_before`.
absl::StatusOr<HeldFigures> RunHeldCalls(BenchEnv& env, HeldKind kind,
                                         absl::string_view mode, int64_t calls,
                                         int channels, absl::Duration limit);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_HELD_CALLS_H_
