// taskd_bench: taskd next to a null-RPC baseline, measured in one run.
//
//   make bench                                  # everything, a few minutes
//   bazel run //tests/bench:taskd_bench -- --quick
//   bazel-bin/tests/bench/taskd_bench --taskd_bin=/path/to/older/taskd
//
// The baseline is echo_server (echo_server.cc): a gRPC service built like
// taskd that answers a call of the same size from one completion-queue
// thread and does nothing else. It runs as its own process, like taskd, so
// both servers' CPU time is read from /proc the same way, and the client
// code is the same for both (load.h). Every taskd figure is printed with its
// ratio to the baseline's figure on the same client shape; the baseline
// runs before and after the taskd runs and its mean is used, since a shared
// host drifts (only ratios from the same run mean anything).
//
// Rows (N = --tasks no-op tasks with --payload_bytes payloads, in each
// durability mode of --modes; a fresh server and data directory per run;
// each per-call measurement runs --repeat times and reports the median):
//   submit: one at a time; --in_flight calls in flight from one CQ thread;
//     SubmitTasks batches of --batch. Server CPU per submit (utime + stime
//     from /proc/<pid>/stat) in flight; in durable modes also the journal's
//     records per commit, from taskd_journal_commit_records (what one fsync
//     carried).
//   end to end: the same shapes with the C++ SDK worker (in this process,
//     --worker_concurrency) running every task; the rate runs until the
//     server holds every task as SUCCEEDED. Server CPU per task in flight.
//   round trip: --round_trips of SubmitTask + Await, one at a time, worker
//     running; p50 and p99 against the null RPC's one-at-a-time p50 and p99.
//   held calls: --held calls (no deadlines) held open over --held_channels
//     connections on one server: the null RPC's idle stream, taskd's Stream
//     on a quiet queue and taskd's Await on tasks no worker runs
//     (--held_mode). RSS and server CPU per call, and the time until the
//     server counted them all.
//   queued: --queued pending tasks (--queued_mode, batches): RSS and bytes
//     per task beyond the payload, data directory size, recovery after
//     kill -9 (restart until the first successful RPC), and the rate at
//     which a worker gets the first --dispatch_tasks of that backlog against
//     a fresh server holding only those.
//   metrics on/off: the cost of taskd's /metrics on submits (two servers,
//     interleaved slices).
// Every loop is bounded in count and in time (--run_limit per run).
//
// Output: the tables on stdout, progress on stderr, and one JSON object per
// figure in --json_out. --quick shrinks everything for a smoke test. Exit
// status 1 when a run could not be made (a server did not start, ...);
// figures themselves are never judged.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/bench/bench_env.h"
#include "tests/bench/bench_runs.h"
#include "tests/bench/report.h"
#include "tests/bench/tables.h"
#include "tests/bench/throughput.h"
#include "tests/taskd_process.h"

ABSL_FLAG(std::string, taskd_bin, "",
          "taskd binary to measure (default: $TASKD_BINARY, else "
          "services/taskd from the runfiles)");
ABSL_FLAG(std::string, echo_bin, "",
          "the null-RPC echo_server (default: from the runfiles, else next "
          "to this binary)");
ABSL_FLAG(std::string, json_out, "./bench-results.jsonl",
          "file for the JSON lines (replaced)");
ABSL_FLAG(std::string, dir, "",
          "where the servers' data directories go (default: $TMPDIR or "
          "/tmp); put it on the disk to measure");
ABSL_FLAG(std::string, modes, "memory,async,sync",
          "taskd durability modes, comma-separated");
ABSL_FLAG(std::string, sections,
          "baseline,submit,e2e,latency,held,queued,metrics",
          "parts to run, comma-separated");
ABSL_FLAG(bool, quick, false,
          "small counts everywhere (a smoke test, figures meaningless); "
          "flags given explicitly still win");
ABSL_FLAG(int64_t, tasks, 20000, "N: tasks per throughput run");
ABSL_FLAG(int, in_flight, 64, "calls in flight in the in-flight shape");
ABSL_FLAG(int, batch, 1000, "tasks per SubmitTasks call (at most 1000)");
ABSL_FLAG(int, worker_concurrency, 50, "the SDK worker's concurrency");
ABSL_FLAG(int64_t, round_trips, 5000, "submit+await round trips per mode");
ABSL_FLAG(int, payload_bytes, 16, "payload bytes of every task");
ABSL_FLAG(int, repeat, 3,
          "runs of each per-call measurement (fresh servers each); the "
          "median is reported");
ABSL_FLAG(absl::Duration, run_limit, absl::Seconds(60),
          "longest load phase of one run (and as long again for its "
          "worker to finish)");
ABSL_FLAG(int64_t, held, 100000, "K: calls held open in the held-calls rows");
ABSL_FLAG(int, held_channels, 16, "connections the held calls are spread over");
ABSL_FLAG(std::string, held_mode, "memory",
          "taskd mode of the held-calls rows");
ABSL_FLAG(absl::Duration, held_limit, absl::Seconds(120),
          "longest wait for the server to count the held calls");
ABSL_FLAG(int64_t, queued, 1000000, "tasks in the queued-backlog rows");
ABSL_FLAG(std::string, queued_mode, "async",
          "taskd mode of the queued-backlog rows (a durable one)");
ABSL_FLAG(int64_t, dispatch_tasks, 20000,
          "tasks the worker takes from the front of the backlog");
ABSL_FLAG(absl::Duration, queued_limit, absl::Minutes(10),
          "longest time for queueing the backlog");
ABSL_FLAG(int, metrics_slices, 20,
          "load slices against each of the metrics on and off servers");
ABSL_FLAG(absl::Duration, metrics_slice, absl::Milliseconds(250),
          "length of one metrics on/off slice");
ABSL_FLAG(std::string, metrics_mode, "memory",
          "taskd mode of the metrics on/off comparison");

namespace taskd::bench {
namespace {

// --quick sets small defaults before the command line is parsed, so that a
// flag given explicitly still wins.
void ApplyQuickDefaults(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--quick" || arg == "--quick=true" || arg == "--quick=1") {
      quick = true;
    }
    if (arg == "--noquick" || arg == "--quick=false" || arg == "--quick=0") {
      quick = false;
    }
  }
  if (!quick) return;
  absl::SetFlag(&FLAGS_tasks, 300);
  absl::SetFlag(&FLAGS_round_trips, 100);
  absl::SetFlag(&FLAGS_repeat, 1);
  absl::SetFlag(&FLAGS_run_limit, absl::Seconds(10));
  absl::SetFlag(&FLAGS_held, 2000);
  absl::SetFlag(&FLAGS_held_channels, 4);
  absl::SetFlag(&FLAGS_held_limit, absl::Seconds(20));
  absl::SetFlag(&FLAGS_queued, 20000);
  absl::SetFlag(&FLAGS_dispatch_tasks, 2000);
  absl::SetFlag(&FLAGS_queued_limit, absl::Seconds(20));
  absl::SetFlag(&FLAGS_metrics_slices, 2);
  absl::SetFlag(&FLAGS_metrics_slice, absl::Milliseconds(100));
}

absl::StatusOr<std::string> FindEchoBinary(const std::string& flag,
                                           const std::string& argv0) {
  std::vector<std::string> candidates;
  if (!flag.empty()) {
    candidates.push_back(flag);
  } else {
    candidates.push_back("tests/bench/echo_server");
    candidates.push_back(
        absl::StrCat(argv0, ".runfiles/taskd/tests/bench/echo_server"));
    candidates.push_back(
        (std::filesystem::path(argv0).parent_path() / "echo_server").string());
  }
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return absl::NotFoundError(
      absl::StrCat("no echo_server at ", candidates.front()));
}

std::string DefaultDir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "taskd_bench: taskd next to a null-RPC baseline in one run (see "
      "tests/bench/taskd_bench.cc)");
  ApplyQuickDefaults(argc, argv);
  absl::ParseCommandLine(argc, argv);

  BenchConfig config;
  config.tasks = absl::GetFlag(FLAGS_tasks);
  config.in_flight = absl::GetFlag(FLAGS_in_flight);
  config.batch = absl::GetFlag(FLAGS_batch);
  config.worker_concurrency = absl::GetFlag(FLAGS_worker_concurrency);
  config.round_trips = absl::GetFlag(FLAGS_round_trips);
  config.repeat = absl::GetFlag(FLAGS_repeat);
  config.run_limit = absl::GetFlag(FLAGS_run_limit);
  config.payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  config.held = absl::GetFlag(FLAGS_held);
  config.held_channels = absl::GetFlag(FLAGS_held_channels);
  config.held_limit = absl::GetFlag(FLAGS_held_limit);
  config.queued = absl::GetFlag(FLAGS_queued);
  config.dispatch_tasks = absl::GetFlag(FLAGS_dispatch_tasks);
  config.queued_limit = absl::GetFlag(FLAGS_queued_limit);
  config.metrics_slices = absl::GetFlag(FLAGS_metrics_slices);
  config.metrics_slice = absl::GetFlag(FLAGS_metrics_slice);
  const std::vector<std::string> modes =
      absl::StrSplit(absl::GetFlag(FLAGS_modes), ',', absl::SkipEmpty());
  const std::vector<std::string> sections =
      absl::StrSplit(absl::GetFlag(FLAGS_sections), ',', absl::SkipEmpty());
  const auto section = [&sections](absl::string_view name) {
    return std::find(sections.begin(), sections.end(), name) != sections.end();
  };
  if (config.tasks < 1 || config.in_flight < 1 || config.batch < 1 ||
      config.batch > 1000 || config.worker_concurrency < 1 ||
      config.round_trips < 1 || config.repeat < 1 ||
      config.run_limit <= absl::ZeroDuration() || config.payload_bytes < 0 ||
      config.held < 1 || config.held_channels < 1 || config.queued < 1 ||
      config.dispatch_tasks < 1 || modes.empty()) {
    std::fprintf(stderr,
                 "taskd_bench: counts must be positive (--batch at most "
                 "1000), --modes non-empty\n");
    return 2;
  }
  absl::StatusOr<std::string> taskd =
      testing::FindTaskdBinary(absl::GetFlag(FLAGS_taskd_bin), argv[0]);
  absl::StatusOr<std::string> echo =
      FindEchoBinary(absl::GetFlag(FLAGS_echo_bin), argv[0]);
  if (!taskd.ok() || !echo.ok()) {
    std::fprintf(
        stderr, "taskd_bench: %s; pass --taskd_bin / --echo_bin\n",
        std::string((taskd.ok() ? echo.status() : taskd.status()).message())
            .c_str());
    return 2;
  }
  config.taskd_bin = *taskd;
  config.echo_bin = *echo;
  const std::string base = absl::GetFlag(FLAGS_dir).empty()
                               ? DefaultDir()
                               : absl::GetFlag(FLAGS_dir);
  std::string work = absl::StrCat(base, "/taskd-bench-XXXXXX");
  if (mkdtemp(work.data()) == nullptr) {
    std::fprintf(stderr, "taskd_bench: cannot create a directory in %s\n",
                 base.c_str());
    return 2;
  }
  config.work_dir = work;

  const absl::Time started = absl::Now();
  const std::string date =
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", started, absl::UTCTimeZone());
  Results results({{"taskd_bin", config.taskd_bin},
                   {"date", date},
                   {"quick", absl::GetFlag(FLAGS_quick) ? "true" : "false"}});
  std::printf(
      "taskd_bench %s: taskd %s, %u CPUs, data in %s%s\n", date.c_str(),
      config.taskd_bin.c_str(), std::thread::hardware_concurrency(),
      base.c_str(),
      absl::GetFlag(FLAGS_quick) ? " (--quick: figures meaningless)" : "");
  std::fflush(stdout);

  BenchEnv env(config);
  BenchRuns bench(env, results);
  const bool calls = section("submit") || section("e2e") || section("latency");
  absl::StatusOr<MessageSizes> sizes = absl::UnavailableError("not probed");
  if (section("baseline")) {
    sizes = ProbeMessageSizes(env);
    if (!sizes.ok()) {
      std::fprintf(stderr, "taskd_bench: probing taskd's message sizes: %s\n",
                   std::string(sizes.status().message()).c_str());
      std::error_code ignored;
      std::filesystem::remove_all(work, ignored);
      return 1;
    }
    std::fprintf(stderr,
                 "[taskd_bench] message sizes: SubmitTask %zu -> %zu bytes, "
                 "SubmitTasks %zu -> %zu\n",
                 sizes->submit_request, sizes->submit_response,
                 sizes->batch_request, sizes->batch_response);
    bench.RunBaselinePass(*sizes, 1);
  }
  for (const std::string& mode : modes) {
    if (section("submit")) bench.RunSubmits(mode);
    if (section("e2e")) bench.RunEndToEnds(mode);
    if (section("latency")) bench.RunLatency(mode);
  }
  if (section("baseline") && calls) bench.RunBaselinePass(*sizes, 2);
  bench.AddCallFigures(modes);
  const std::string held_mode = absl::GetFlag(FLAGS_held_mode);
  const std::string queued_mode = absl::GetFlag(FLAGS_queued_mode);
  const std::string metrics_mode = absl::GetFlag(FLAGS_metrics_mode);
  if (section("held")) bench.RunHeld(held_mode);
  if (section("queued")) bench.RunQueued(queued_mode);
  if (section("metrics") && config.metrics_slices > 0) {
    bench.RunMetrics(metrics_mode);
  }

  PrintCallTable(results, modes, config);
  PrintHeldTable(results, held_mode, config);
  PrintQueuedTable(results, queued_mode, config);
  PrintMetricsTable(results, metrics_mode, config);

  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  absl::Status written = results.WriteJsonLines(json_out);
  std::printf(
      "\n%zu figures in %s; %s in all\n", results.figures().size(),
      json_out.c_str(),
      absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Seconds(1)))
          .c_str());
  for (const std::string& error : bench.errors()) {
    std::printf("FAILED: %s\n", error.c_str());
  }
  std::error_code ignored;
  std::filesystem::remove_all(work, ignored);
  if (!written.ok()) {
    std::fprintf(stderr, "taskd_bench: %s\n",
                 std::string(written.message()).c_str());
    return 1;
  }
  return bench.errors().empty() ? 0 : 1;
}

}  // namespace
}  // namespace taskd::bench

int main(int argc, char** argv) { return taskd::bench::Main(argc, argv); }
