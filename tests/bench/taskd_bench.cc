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
// durability mode of --modes; a fresh server and data directory per run):
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
//   held calls: --held calls held open over --held_channels connections on
//     one server: the null RPC's idle stream, taskd's Stream on a quiet queue
//     and taskd's Await on tasks no worker runs (--held_mode). RSS per call
//     and the time until the server counted them all.
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
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/bench/backlog.h"
#include "tests/bench/bench_env.h"
#include "tests/bench/held_calls.h"
#include "tests/bench/metrics_overhead.h"
#include "tests/bench/report.h"
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
ABSL_FLAG(absl::Duration, run_limit, absl::Seconds(60),
          "longest load phase of one run (and as long again for its "
          "worker to finish)");
ABSL_FLAG(int64_t, held, 100000, "K: calls held open in the held-calls rows");
ABSL_FLAG(int, held_channels, 16, "connections the held calls are spread over");
ABSL_FLAG(std::string, held_mode, "memory", "taskd mode of the held-calls rows");
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

constexpr char kNull[] = "null_rpc";

// Dashes in a flag's name become underscores (absl's spelling), so that
// --json-out works like --json_out, as for taskd itself.
void NormalizeFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (arg[0] != '-' || arg[1] != '-') continue;
    if (arg[2] == '\0') break;  // "--": the rest are not flags
    for (char* c = arg + 2; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

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

void Progress(const std::string& line) {
  std::fprintf(stderr, "[taskd_bench] %s\n", line.c_str());
  std::fflush(stderr);
}

const char* ShapeKey(Shape shape) {
  switch (shape) {
    case Shape::kOneAtATime:
      return "1";
    case Shape::kInFlight:
      return "64";
    case Shape::kBatched:
      return "batch";
  }
  return "?";
}

// Collects what the runs measured, then turns it into figures with their
// references once the baseline's second pass is in.
class Bench {
 public:
  Bench(BenchEnv& env, Results& results) : env_(env), results_(results) {}

  // Whether any run failed to produce its figures, and why.
  bool failed() const { return failed_; }
  const std::vector<std::string>& errors() const { return errors_; }

  void RunBaselinePass(const MessageSizes& sizes, int pass);
  void RunSubmits(const std::string& mode);
  void RunEndToEnds(const std::string& mode);
  void RunLatency(const std::string& mode);
  void RunHeld(const std::string& mode);
  void RunQueued(const std::string& mode);
  void RunMetrics(const std::string& mode);

  // Adds the figures of the per-call rows (baseline means and taskd runs).
  void AddCallFigures(const std::vector<std::string>& modes);

 private:
  // Records the failure of a run; returns false.
  bool Check(const absl::Status& status, const std::string& what) {
    if (status.ok()) return true;
    failed_ = true;
    Progress(absl::StrCat(what, ": FAILED: ", status.message()));
    errors_.push_back(absl::StrCat(what, ": ", status.message()));
    return false;
  }
  // A figure from a run, with its error fields.
  Figure& AddRun(const std::string& row, const std::string& mode, double value,
                 const std::string& unit, const RunFigures& run);
  // The baseline's mean of `get` over its passes, with both in `figure`.
  std::optional<double> BaselineMean(
      const std::string& key, const std::function<double(const RunFigures&)>& get,
      Figure* figure = nullptr) const;

  BenchEnv& env_;
  Results& results_;
  bool failed_ = false;
  std::vector<std::string> errors_;
  // "<shape>" -> the baseline's runs, one per pass.
  std::map<std::string, std::vector<RunFigures>> baseline_;
  // "<kind>/<shape>/<mode>" -> the taskd run.
  std::map<std::string, RunFigures> runs_;
};

void Bench::RunBaselinePass(const MessageSizes& sizes, int pass) {
  for (Shape shape : {Shape::kOneAtATime, Shape::kInFlight, Shape::kBatched}) {
    const std::string what =
        absl::StrCat("null RPC, shape ", ShapeKey(shape), ", pass ", pass);
    absl::StatusOr<RunFigures> run = RunEcho(env_, sizes, shape);
    if (!Check(run.status(), what)) continue;
    Progress(absl::StrCat(what, ": ", FormatNumber(run->rate), " tasks/s, ",
                          FormatNumber(run->cpu_us_per_task, 1),
                          " server CPU us per task"));
    baseline_[ShapeKey(shape)].push_back(*std::move(run));
  }
}

void Bench::RunSubmits(const std::string& mode) {
  for (Shape shape : {Shape::kOneAtATime, Shape::kInFlight, Shape::kBatched}) {
    const std::string what =
        absl::StrCat(mode, ": submit, shape ", ShapeKey(shape));
    absl::StatusOr<RunFigures> run = RunSubmit(env_, mode, shape);
    if (!Check(run.status(), what)) continue;
    Progress(absl::StrCat(what, ": ", FormatNumber(run->rate), " tasks/s, ",
                          FormatNumber(run->cpu_us_per_task, 1),
                          " server CPU us per task, ", run->errors, " errors"));
    runs_[absl::StrCat("submit/", ShapeKey(shape), "/", mode)] =
        *std::move(run);
  }
}

void Bench::RunEndToEnds(const std::string& mode) {
  for (Shape shape : {Shape::kOneAtATime, Shape::kInFlight, Shape::kBatched}) {
    const std::string what =
        absl::StrCat(mode, ": end to end, shape ", ShapeKey(shape));
    absl::StatusOr<RunFigures> run = RunEndToEnd(env_, mode, shape);
    if (!Check(run.status(), what)) continue;
    Progress(absl::StrCat(what, ": ", FormatNumber(run->rate), " tasks/s, ",
                          FormatNumber(run->cpu_us_per_task, 1),
                          " server CPU us per task, ", run->errors, " errors"));
    runs_[absl::StrCat("e2e/", ShapeKey(shape), "/", mode)] = *std::move(run);
  }
}

void Bench::RunLatency(const std::string& mode) {
  const std::string what = absl::StrCat(mode, ": submit+await round trips");
  absl::StatusOr<RunFigures> run = RunRoundTrips(env_, mode);
  if (!Check(run.status(), what)) return;
  Progress(absl::StrCat(what, ": p50 ", FormatNumber(run->p50_us / 1000, 3),
                        " ms, p99 ", FormatNumber(run->p99_us / 1000, 3),
                        " ms, ", run->errors, " errors"));
  runs_[absl::StrCat("rtt/1/", mode)] = *std::move(run);
}

Figure& Bench::AddRun(const std::string& row, const std::string& mode,
                      double value, const std::string& unit,
                      const RunFigures& run) {
  Figure& f = results_.Add(row, mode, value, unit);
  f.n = run.n;
  f.errors = run.errors;
  f.first_error = run.first_error;
  f.time_limited = run.time_limited;
  f.seconds = run.seconds;
  f.extra = run.extra;
  return f;
}

std::optional<double> Bench::BaselineMean(
    const std::string& key, const std::function<double(const RunFigures&)>& get,
    Figure* figure) const {
  auto it = baseline_.find(key);
  if (it == baseline_.end() || it->second.empty()) return std::nullopt;
  double sum = 0;
  int pass = 0;
  for (const RunFigures& run : it->second) {
    sum += get(run);
    if (figure != nullptr) {
      figure->extra.push_back({absl::StrCat("pass", ++pass), get(run)});
    }
  }
  return sum / static_cast<double>(it->second.size());
}

void Bench::AddCallFigures(const std::vector<std::string>& modes) {
  const auto rate = [](const RunFigures& r) { return r.rate; };
  const auto cpu = [](const RunFigures& r) { return r.cpu_us_per_task; };
  const auto p50_ms = [](const RunFigures& r) { return r.p50_us / 1000; };
  const auto p99_ms = [](const RunFigures& r) { return r.p99_us / 1000; };

  // The baseline: its rows, and the references of taskd's.
  std::map<std::string, std::optional<double>> reference;
  struct BaselineRow {
    const char* row;
    const char* shape;
    std::function<double(const RunFigures&)> get;
    const char* unit;
  };
  const BaselineRow baseline_rows[] = {
      {"submit_1", "1", rate, "tasks/s"},
      {"submit_64", "64", rate, "tasks/s"},
      {"submit_batch", "batch", rate, "tasks/s"},
      {"cpu_submit_64", "64", cpu, "us/task"},
      {"rtt_p50", "1", p50_ms, "ms"},
      {"rtt_p99", "1", p99_ms, "ms"},
  };
  for (const BaselineRow& b : baseline_rows) {
    auto it = baseline_.find(b.shape);
    if (it == baseline_.end() || it->second.empty()) continue;
    const RunFigures& first = it->second.front();
    Figure& f = AddRun(b.row, kNull, 0, b.unit, first);
    f.extra.clear();
    reference[b.row] = BaselineMean(b.shape, b.get, &f);
    f.value = reference[b.row].value_or(NAN);
    f.notes.push_back(
        {"what", "echo_server, one CQ thread, same message sizes"});
  }

  struct TaskdRow {
    const char* row;
    const char* run;  // key prefix in runs_
    std::function<double(const RunFigures&)> get;
    const char* unit;
    const char* reference;  // baseline row
  };
  const TaskdRow taskd_rows[] = {
      {"submit_1", "submit/1/", rate, "tasks/s", "submit_1"},
      {"submit_64", "submit/64/", rate, "tasks/s", "submit_64"},
      {"submit_batch", "submit/batch/", rate, "tasks/s", "submit_batch"},
      {"cpu_submit_64", "submit/64/", cpu, "us/task", "cpu_submit_64"},
      {"e2e_1", "e2e/1/", rate, "tasks/s", "submit_1"},
      {"e2e_64", "e2e/64/", rate, "tasks/s", "submit_64"},
      {"e2e_batch", "e2e/batch/", rate, "tasks/s", "submit_batch"},
      {"cpu_e2e_64", "e2e/64/", cpu, "us/task", "cpu_submit_64"},
      {"rtt_p50", "rtt/1/", p50_ms, "ms", "rtt_p50"},
      {"rtt_p99", "rtt/1/", p99_ms, "ms", "rtt_p99"},
  };
  for (const std::string& mode : modes) {
    for (const TaskdRow& t : taskd_rows) {
      auto it = runs_.find(absl::StrCat(t.run, mode));
      if (it == runs_.end()) continue;
      Figure& f = AddRun(t.row, mode, t.get(it->second), t.unit, it->second);
      if (auto ref = reference.find(t.reference);
          ref != reference.end() && ref->second.has_value()) {
        f.reference = ref->second;
        f.reference_of = absl::StrCat(kNull, ".", t.reference);
      }
    }
    // What one journal commit (one fsync in sync mode) carried.
    if (auto it = runs_.find(absl::StrCat("submit/64/", mode));
        it != runs_.end()) {
      for (const auto& [key, value] : it->second.extra) {
        if (key != "journal_records_per_commit") continue;
        AddRun("journal_records_per_commit_64", mode, value, "records",
               it->second)
            .extra.clear();
      }
    }
  }
}

void Bench::RunHeld(const std::string& mode) {
  const int64_t calls = absl::GetFlag(FLAGS_held);
  const int channels = absl::GetFlag(FLAGS_held_channels);
  const absl::Duration limit = absl::GetFlag(FLAGS_held_limit);
  struct Kind {
    HeldKind kind;
    const char* row;
    const char* mode;
    const char* what;
  };
  const Kind kinds[] = {
      {HeldKind::kEchoIdle, "held_idle_stream", kNull, "null RPC idle stream"},
      {HeldKind::kTaskdStream, "held_stream", "", "taskd idle Stream"},
      {HeldKind::kTaskdAwait, "held_await", "", "taskd pending Await"},
  };
  std::optional<double> idle_bytes;
  std::optional<double> idle_seconds;
  for (const Kind& k : kinds) {
    const std::string figure_mode = *k.mode != '\0' ? k.mode : mode;
    const std::string what = absl::StrCat(k.what, " (", figure_mode, ")");
    absl::StatusOr<HeldFigures> held =
        RunHeldCalls(env_, k.kind, mode, calls, channels, limit);
    if (!Check(held.status(), what)) continue;
    Progress(absl::StrCat(
        what, ": ", FormatNumber(held->rss_bytes_per_call), " bytes per call, ",
        held->held, " of ", calls, " registered in ",
        FormatNumber(held->register_seconds, 2), " s",
        held->error.empty() ? "" : absl::StrCat(" (", held->error, ")")));
    RunFigures run;
    run.n = held->held;
    run.errors = held->requested - held->held;
    run.first_error = held->error;
    run.time_limited = !held->complete;
    run.seconds = held->register_seconds;
    Figure& bytes = AddRun(absl::StrCat(k.row, "_bytes"), figure_mode,
                           held->rss_bytes_per_call, "bytes/call", run);
    bytes.extra = {{"rss_before", static_cast<double>(held->rss_before)},
                   {"rss_after", static_cast<double>(held->rss_after)},
                   {"channels", static_cast<double>(held->channels)},
                   {"requested", static_cast<double>(held->requested)}};
    Figure& seconds = AddRun(absl::StrCat(k.row, "_register_s"), figure_mode,
                             held->register_seconds, "s", run);
    if (k.kind == HeldKind::kEchoIdle) {
      idle_bytes = held->rss_bytes_per_call;
      idle_seconds = held->register_seconds;
    } else {
      bytes.reference = idle_bytes;
      seconds.reference = idle_seconds;
      bytes.reference_of = seconds.reference_of = "null_rpc.held_idle_stream";
    }
  }
}

void Bench::RunQueued(const std::string& mode) {
  const BenchConfig& config = env_.config();
  const int64_t queued = absl::GetFlag(FLAGS_queued);
  const int64_t dispatch = absl::GetFlag(FLAGS_dispatch_tasks);
  const std::string what = absl::StrCat(queued, " queued (", mode, ")");
  Progress(absl::StrCat(what, ": queueing..."));
  absl::StatusOr<BacklogFigures> b = RunBacklog(
      env_, mode, queued, dispatch, absl::GetFlag(FLAGS_queued_limit));
  if (!Check(b.status(), what)) return;
  Progress(absl::StrCat(
      what, ": ", FormatNumber(b->bytes_per_task), " bytes per task, ",
      "recovery ", FormatNumber(b->recovery_seconds, 2), " s, dispatch ",
      FormatNumber(b->dispatch_full.rate), " vs ",
      FormatNumber(b->dispatch_small.rate), " tasks/s"));
  RunFigures fill;
  fill.n = b->queued;
  fill.errors = b->failed_calls;
  fill.first_error = b->first_error;
  fill.time_limited = b->fill_time_limited;
  fill.seconds = b->fill_seconds;
  AddRun("queued_fill", mode, b->fill_rate, "tasks/s", fill);
  AddRun("queued_rss", mode, static_cast<double>(b->rss_full), "bytes", fill)
      .extra = {{"rss_empty", static_cast<double>(b->rss_empty)},
                {"payload_bytes", static_cast<double>(config.payload_bytes)}};
  AddRun("queued_bytes_per_task", mode, b->bytes_per_task, "bytes/task", fill);
  AddRun("queued_data_dir", mode, static_cast<double>(b->data_dir_bytes),
         "bytes", fill);
  RunFigures recovery;
  recovery.n = b->recovered_pending;
  recovery.seconds = b->recovery_seconds;
  Figure& r =
      AddRun("queued_recovery_s", mode, b->recovery_seconds, "s", recovery);
  r.extra = {{"recovered_pending", static_cast<double>(b->recovered_pending)},
             {"rss_recovered", static_cast<double>(b->rss_recovered)}};
  r.notes = {{"server_log", b->recovery_log}};
  const auto add_dispatch = [&](const char* row, const DispatchFigures& d) {
    RunFigures run;
    run.n = d.tasks;
    run.seconds = d.seconds;
    run.first_error = d.error;
    run.errors = d.error.empty() ? 0 : 1;
    return &AddRun(row, mode, d.rate, "tasks/s", run);
  };
  add_dispatch("dispatch_small", b->dispatch_small);
  Figure* full = add_dispatch("dispatch_backlog", b->dispatch_full);
  full->reference = b->dispatch_small.rate;
  full->reference_of = absl::StrCat(mode, ".dispatch_small");
}

void Bench::RunMetrics(const std::string& mode) {
  const int slices = absl::GetFlag(FLAGS_metrics_slices);
  const absl::Duration slice = absl::GetFlag(FLAGS_metrics_slice);
  const int in_flight = env_.config().in_flight;
  const std::string what = absl::StrCat("metrics on/off (", mode, ")");
  absl::StatusOr<MetricsOverhead> m =
      CompareMetrics(env_, mode, in_flight, slices, slice);
  if (!Check(m.status(), what)) return;
  Progress(absl::StrCat(what, ": ", FormatNumber(m->rate_on), " vs ",
                        FormatNumber(m->rate_off), " tasks/s"));
  RunFigures on;
  on.n = m->submits_on;
  on.errors = m->errors;
  RunFigures off;
  off.n = m->submits_off;
  Figure& rate_on = AddRun("metrics_on_rate", mode, m->rate_on, "tasks/s", on);
  AddRun("metrics_off_rate", mode, m->rate_off, "tasks/s", off);
  Figure& cpu_on =
      AddRun("metrics_on_cpu_us", mode, m->cpu_us_on, "us/task", on);
  AddRun("metrics_off_cpu_us", mode, m->cpu_us_off, "us/task", off);
  rate_on.reference = m->rate_off;
  cpu_on.reference = m->cpu_us_off;
  rate_on.reference_of = absl::StrCat(mode, ".metrics_off_rate");
  cpu_on.reference_of = absl::StrCat(mode, ".metrics_off_cpu_us");
  for (Figure* f : {&rate_on, &cpu_on}) {
    f->extra = {{"slices", static_cast<double>(slices)},
                {"slice_s", absl::ToDoubleSeconds(slice)},
                {"in_flight", static_cast<double>(in_flight)}};
  }
}

// --- Printing -------------------------------------------------------------

// "4,107 (0.66x)" for a figure with a reference.
std::string Cell(const Figure* f, int decimals) {
  if (f == nullptr) return "-";
  std::string cell = FormatNumber(f->value, decimals);
  if (std::optional<double> r = f->ratio(); r.has_value()) {
    absl::StrAppend(&cell, " (", FormatNumber(*r, 2), "x)");
  }
  if (f->errors > 0 || f->time_limited) absl::StrAppend(&cell, "*");
  return cell;
}

std::string Bytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  const double magnitude = std::fabs(bytes);
  if (magnitude >= 1024.0 * 1024 * 1024) {
    return absl::StrCat(FormatNumber(bytes / (1024.0 * 1024 * 1024), 2), " GiB");
  }
  if (magnitude >= 1024.0 * 1024) {
    return absl::StrCat(FormatNumber(bytes / (1024.0 * 1024), 1), " MiB");
  }
  if (magnitude >= 1024.0) {
    return absl::StrCat(FormatNumber(bytes / 1024, 1), " KiB");
  }
  return absl::StrCat(FormatNumber(bytes, 0), " B");
}

void PrintCallTable(const Results& results,
                    const std::vector<std::string>& modes, int64_t tasks,
                    int in_flight, int batch, int concurrency) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {
      absl::StrCat("N = ", FormatNumber(static_cast<double>(tasks)),
                   " no-op tasks"),
      "null RPC"};
  for (const std::string& mode : modes) header.push_back(mode);
  rows.push_back(header);
  struct Row {
    std::string label;
    const char* key;
    const char* null_key;  // the reference shown in the null RPC column
    int decimals;
  };
  const std::string fl = absl::StrCat(in_flight, " in flight");
  const std::string bt = absl::StrCat("batches of ", FormatNumber(batch));
  const Row table[] = {
      {"submit, one at a time (tasks/s)", "submit_1", "submit_1", 0},
      {absl::StrCat("submit, ", fl, " (tasks/s)"), "submit_64", "submit_64", 0},
      {absl::StrCat("submit, ", bt, " (tasks/s)"), "submit_batch",
       "submit_batch", 0},
      {absl::StrCat("server CPU per submit, ", fl, " (us)"), "cpu_submit_64",
       "cpu_submit_64", 1},
      {absl::StrCat("end to end, one at a time (tasks/s)"), "e2e_1", "submit_1",
       0},
      {absl::StrCat("end to end, ", fl, " (tasks/s)"), "e2e_64", "submit_64",
       0},
      {absl::StrCat("end to end, ", bt, " (tasks/s)"), "e2e_batch",
       "submit_batch", 0},
      {absl::StrCat("server CPU per e2e task, ", fl, " (us)"), "cpu_e2e_64",
       "cpu_submit_64", 1},
      {"submit+await round trip p50 (ms)", "rtt_p50", "rtt_p50", 3},
      {"submit+await round trip p99 (ms)", "rtt_p99", "rtt_p99", 3},
      {absl::StrCat("journal records per commit, ", fl),
       "journal_records_per_commit_64", "", 1},
  };
  for (const Row& r : table) {
    std::vector<std::string> cells = {r.label,
                                      Cell(results.Find(r.null_key, kNull),
                                           r.decimals)};
    bool any = false;
    for (const std::string& mode : modes) {
      const Figure* f = results.Find(r.key, mode);
      any = any || f != nullptr;
      cells.push_back(Cell(f, r.decimals));
    }
    if (any) rows.push_back(std::move(cells));
  }
  std::printf(
      "\nPer call: ratio = taskd / null RPC on the same client shape (end to "
      "end: / the null RPC's submit rate; p99: / its p99).\nEnd to end: the "
      "C++ SDK worker (concurrency %d) runs every task. * = errors or a time "
      "bound hit (see the JSON).\n",
      concurrency);
  PrintTable(stdout, rows);
}

void PrintHeldTable(const Results& results, const std::string& mode,
                    int64_t calls, int channels) {
  const Figure* any = results.Find("held_idle_stream_bytes", kNull);
  if (any == nullptr) any = results.Find("held_await_bytes", mode);
  if (any == nullptr) return;
  std::vector<std::vector<std::string>> rows = {
      {absl::StrCat("Held calls: ", FormatNumber(static_cast<double>(calls)),
                    " over ", channels, " connections"),
       "RSS per call", "ratio", "registered in", "ratio"}};
  struct Row {
    const char* label;
    const char* key;
    std::string mode;
  };
  const Row table[] = {
      {"null RPC idle stream", "held_idle_stream", kNull},
      {"taskd Stream on a quiet queue", "held_stream", mode},
      {"taskd Await on a pending task", "held_await", mode},
  };
  for (const Row& r : table) {
    const Figure* bytes = results.Find(absl::StrCat(r.key, "_bytes"), r.mode);
    const Figure* seconds =
        results.Find(absl::StrCat(r.key, "_register_s"), r.mode);
    if (bytes == nullptr) continue;
    const auto ratio = [](const Figure* f) {
      std::optional<double> x = f == nullptr ? std::nullopt : f->ratio();
      return x.has_value() ? absl::StrCat(FormatNumber(*x, 2), "x")
                           : std::string("-");
    };
    rows.push_back(
        {absl::StrCat(r.label, r.mode == kNull ? "" : absl::StrCat(" (", r.mode, ")")),
         absl::StrCat(Bytes(bytes->value), bytes->time_limited ? "*" : ""),
         ratio(bytes),
         seconds == nullptr ? "-"
                            : absl::StrCat(FormatNumber(seconds->value, 2), " s"),
         ratio(seconds)});
  }
  std::printf("\n");
  PrintTable(stdout, rows);
}

void PrintQueuedTable(const Results& results, const std::string& mode,
                      int64_t payload_bytes) {
  const Figure* rss = results.Find("queued_rss", mode);
  if (rss == nullptr) return;
  const Figure* per_task = results.Find("queued_bytes_per_task", mode);
  const Figure* fill = results.Find("queued_fill", mode);
  const Figure* disk = results.Find("queued_data_dir", mode);
  const Figure* recovery = results.Find("queued_recovery_s", mode);
  const Figure* full = results.Find("dispatch_backlog", mode);
  const Figure* small = results.Find("dispatch_small", mode);
  const double n = static_cast<double>(rss->n);
  std::vector<std::vector<std::string>> rows = {
      {absl::StrCat("Queued: ", FormatNumber(n), " pending tasks (", mode,
                    ", ", payload_bytes, "-byte payloads)"),
       ""}};
  const auto value = [](const Figure* f, const std::string& text) {
    if (f == nullptr) return std::string("-");
    return absl::StrCat(text, f->errors > 0 || f->time_limited ? "*" : "");
  };
  double rss_empty = NAN;
  for (const auto& [key, v] : rss->extra) {
    if (key == "rss_empty") rss_empty = v;
  }
  rows.push_back({"queueing them, SubmitTasks batches (tasks/s)",
                  value(fill, FormatNumber(fill ? fill->value : NAN))});
  rows.push_back({"server RSS, full (empty)",
                  absl::StrCat(Bytes(rss->value), " (", Bytes(rss_empty), ")")});
  rows.push_back({"RSS per task beyond its payload",
                  value(per_task, Bytes(per_task ? per_task->value : NAN))});
  rows.push_back(
      {"data directory (per task)",
       disk == nullptr ? "-"
                       : absl::StrCat(Bytes(disk->value), " (",
                                      Bytes(n > 0 ? disk->value / n : NAN),
                                      ")")});
  if (recovery != nullptr) {
    rows.push_back({"recovery after kill -9: restart to first answer",
                    absl::StrCat(FormatNumber(recovery->value, 2), " s")});
    for (const auto& [key, v] : recovery->extra) {
      if (key == "recovered_pending") {
        rows.push_back({"  pending after recovery", FormatNumber(v)});
      }
      if (key == "rss_recovered") {
        rows.push_back({"  server RSS after recovery", Bytes(v)});
      }
    }
  }
  if (full != nullptr) {
    rows.push_back(
        {absl::StrCat("dispatch: worker runs the first ",
                      FormatNumber(static_cast<double>(full->n)),
                      " of the backlog (tasks/s)"),
         Cell(full, 0)});
  }
  if (small != nullptr) {
    rows.push_back(
        {absl::StrCat("dispatch: the same on a fresh server holding only ",
                      FormatNumber(static_cast<double>(small->n)),
                      " (tasks/s)"),
         Cell(small, 0)});
  }
  std::printf("\n");
  PrintTable(stdout, rows);
  if (recovery != nullptr) {
    for (const auto& [key, v] : recovery->notes) {
      if (key == "server_log" && !v.empty()) std::printf("(%s)\n", v.c_str());
    }
  }
}

void PrintMetricsTable(const Results& results, const std::string& mode,
                       int in_flight) {
  const Figure* rate_on = results.Find("metrics_on_rate", mode);
  const Figure* rate_off = results.Find("metrics_off_rate", mode);
  const Figure* cpu_on = results.Find("metrics_on_cpu_us", mode);
  const Figure* cpu_off = results.Find("metrics_off_cpu_us", mode);
  if (rate_on == nullptr || rate_off == nullptr || cpu_on == nullptr ||
      cpu_off == nullptr) {
    return;
  }
  std::printf("\n");
  PrintTable(
      stdout,
      {{absl::StrCat("Metrics on/off (", mode, ", ", in_flight,
                     " in flight, interleaved slices)"),
        "on", "off", "difference"},
       {"submits (tasks/s)", FormatNumber(rate_on->value),
        FormatNumber(rate_off->value),
        absl::StrCat(FormatNumber((*rate_on->ratio() - 1) * 100, 1),
                     " % (budget -3 %)")},
       {"server CPU per submit (us)", FormatNumber(cpu_on->value, 1),
        FormatNumber(cpu_off->value, 1),
        absl::StrCat(FormatNumber((*cpu_on->ratio() - 1) * 100, 1), " %")}});
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "taskd_bench: taskd next to a null-RPC baseline in one run (see "
      "tests/bench/taskd_bench.cc)");
  NormalizeFlagNames(argc, argv);
  ApplyQuickDefaults(argc, argv);
  absl::ParseCommandLine(argc, argv);

  BenchConfig config;
  config.tasks = absl::GetFlag(FLAGS_tasks);
  config.in_flight = absl::GetFlag(FLAGS_in_flight);
  config.batch = absl::GetFlag(FLAGS_batch);
  config.worker_concurrency = absl::GetFlag(FLAGS_worker_concurrency);
  config.round_trips = absl::GetFlag(FLAGS_round_trips);
  config.run_limit = absl::GetFlag(FLAGS_run_limit);
  config.payload_bytes = absl::GetFlag(FLAGS_payload_bytes);
  const std::vector<std::string> modes =
      absl::StrSplit(absl::GetFlag(FLAGS_modes), ',', absl::SkipEmpty());
  const std::vector<std::string> sections =
      absl::StrSplit(absl::GetFlag(FLAGS_sections), ',', absl::SkipEmpty());
  const auto section = [&sections](absl::string_view name) {
    return std::find(sections.begin(), sections.end(), name) != sections.end();
  };
  if (config.tasks < 1 || config.in_flight < 1 || config.batch < 1 ||
      config.batch > 1000 || config.worker_concurrency < 1 ||
      config.round_trips < 1 || config.run_limit <= absl::ZeroDuration() ||
      config.payload_bytes < 0 || absl::GetFlag(FLAGS_held) < 1 ||
      absl::GetFlag(FLAGS_held_channels) < 1 ||
      absl::GetFlag(FLAGS_queued) < 1 ||
      absl::GetFlag(FLAGS_dispatch_tasks) < 1 || modes.empty()) {
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
    std::fprintf(stderr, "taskd_bench: %s; pass --taskd_bin / --echo_bin\n",
                 std::string((taskd.ok() ? echo.status() : taskd.status())
                                 .message())
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
  const std::string date = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", started,
                                            absl::UTCTimeZone());
  Results results({{"taskd_bin", config.taskd_bin},
                   {"date", date},
                   {"quick", absl::GetFlag(FLAGS_quick) ? "true" : "false"}});
  std::printf("taskd_bench %s: taskd %s, %u CPUs, data in %s%s\n",
              date.c_str(), config.taskd_bin.c_str(),
              std::thread::hardware_concurrency(), base.c_str(),
              absl::GetFlag(FLAGS_quick) ? " (--quick: figures meaningless)"
                                         : "");
  std::fflush(stdout);

  BenchEnv env(config);
  Bench bench(env, results);
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
    Progress(absl::StrCat("message sizes: SubmitTask ", sizes->submit_request,
                          " -> ", sizes->submit_response, " bytes, SubmitTasks ",
                          sizes->batch_request, " -> ", sizes->batch_response));
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
  if (section("metrics") && absl::GetFlag(FLAGS_metrics_slices) > 0) {
    bench.RunMetrics(metrics_mode);
  }

  PrintCallTable(results, modes, config.tasks, config.in_flight, config.batch,
                 config.worker_concurrency);
  PrintHeldTable(results, held_mode, absl::GetFlag(FLAGS_held),
                 absl::GetFlag(FLAGS_held_channels));
  PrintQueuedTable(results, queued_mode, config.payload_bytes);
  PrintMetricsTable(results, metrics_mode, config.in_flight);

  const std::string json_out = absl::GetFlag(FLAGS_json_out);
  absl::Status written = results.WriteJsonLines(json_out);
  std::printf("\n%zu figures in %s; %s in all\n", results.figures().size(),
              json_out.c_str(),
              absl::FormatDuration(absl::Trunc(absl::Now() - started,
                                               absl::Seconds(1)))
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
  return bench.failed() ? 1 : 0;
}

}  // namespace
}  // namespace taskd::bench

int main(int argc, char** argv) { return taskd::bench::Main(argc, argv); }
