#include "tests/bench/bench_runs.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/bench/backlog.h"
#include "tests/bench/held_calls.h"
#include "tests/bench/metrics_overhead.h"

namespace taskd::bench {
namespace {

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

// ", other processes 12 % of the CPUs" when they used any.
std::string OthersNote(const RunFigures& run) {
  if (!std::isfinite(run.others_cpu_share) || run.others_cpu_share < 0.005) {
    return "";
  }
  return absl::StrCat(", other processes ",
                      FormatNumber(run.others_cpu_share * 100),
                      " % of the CPUs");
}

}  // namespace

bool BenchRuns::Check(const absl::Status& status, const std::string& what) {
  if (status.ok()) return true;
  Progress(absl::StrCat(what, ": FAILED: ", status.message()));
  errors_.push_back(absl::StrCat(what, ": ", status.message()));
  return false;
}

void BenchRuns::RunShapes(
    const std::string& label,
    const std::function<absl::StatusOr<RunFigures>(Shape)>& run,
    const std::function<void(Shape, RunFigures)>& keep) {
  for (Shape shape : {Shape::kOneAtATime, Shape::kInFlight, Shape::kBatched}) {
    std::optional<RunFigures> figures = Repeated(
        absl::StrCat(label, ", shape ", ShapeKey(shape)),
        [&] { return run(shape); },
        [](const RunFigures& r) {
          return absl::StrCat(FormatNumber(r.rate), " tasks/s, ",
                              FormatNumber(r.cpu_us_per_task, 1),
                              " server CPU us per task");
        });
    if (figures.has_value()) keep(shape, *std::move(figures));
  }
}

std::optional<RunFigures> BenchRuns::Repeated(
    const std::string& what,
    const std::function<absl::StatusOr<RunFigures>()>& run,
    const std::function<std::string(const RunFigures&)>& describe) {
  const int repeat = env_.config().repeat;
  std::vector<RunFigures> runs;
  for (int i = 1; i <= repeat; ++i) {
    const std::string this_run =
        repeat == 1 ? what : absl::StrCat(what, ", run ", i, "/", repeat);
    absl::StatusOr<RunFigures> figures = run();
    if (!Check(figures.status(), this_run)) return std::nullopt;
    Progress(absl::StrCat(this_run, ": ", describe(*figures), ", ",
                          figures->errors, " errors", OthersNote(*figures)));
    runs.push_back(*std::move(figures));
  }
  return MedianOf(std::move(runs));
}

void BenchRuns::RunBaselinePass(const MessageSizes& sizes, int pass) {
  RunShapes(
      absl::StrCat("null RPC, pass ", pass),
      [&](Shape shape) { return RunEcho(env_, sizes, shape); },
      [&](Shape shape, RunFigures figures) {
        baseline_[ShapeKey(shape)].push_back(std::move(figures));
      });
}

void BenchRuns::RunSubmits(const std::string& mode) {
  RunShapes(
      absl::StrCat(mode, ": submit"),
      [&](Shape shape) { return RunSubmit(env_, mode, shape); },
      [&](Shape shape, RunFigures figures) {
        runs_[absl::StrCat("submit/", ShapeKey(shape), "/", mode)] =
            std::move(figures);
      });
}

void BenchRuns::RunEndToEnds(const std::string& mode) {
  RunShapes(
      absl::StrCat(mode, ": end to end"),
      [&](Shape shape) { return RunEndToEnd(env_, mode, shape); },
      [&](Shape shape, RunFigures figures) {
        runs_[absl::StrCat("e2e/", ShapeKey(shape), "/", mode)] =
            std::move(figures);
      });
}

void BenchRuns::RunLatency(const std::string& mode) {
  std::optional<RunFigures> run = Repeated(
      absl::StrCat(mode, ": submit+await round trips"),
      [&] { return RunRoundTrips(env_, mode); },
      [](const RunFigures& r) {
        return absl::StrCat("p50 ", FormatNumber(r.p50_us / 1000, 3),
                            " ms, p99 ", FormatNumber(r.p99_us / 1000, 3),
                            " ms");
      });
  if (run.has_value()) runs_[absl::StrCat("rtt/1/", mode)] = *std::move(run);
}

Figure& BenchRuns::AddRun(const std::string& row, const std::string& mode,
                          double value, const std::string& unit,
                          const RunFigures& run) {
  Figure& f = results_.Add(row, mode, value, unit);
  f.n = run.n;
  f.errors = run.errors;
  f.first_error = run.first_error;
  f.time_limited = run.time_limited;
  f.seconds = run.seconds;
  f.extra = run.extra;
  if (std::isfinite(run.others_cpu_share)) {
    f.extra.push_back({kOthersCpuShare, run.others_cpu_share});
  }
  return f;
}

std::optional<double> BenchRuns::BaselineMean(
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

void BenchRuns::AddCallFigures(const std::vector<std::string>& modes) {
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
    Figure& f = AddRun(b.row, kNullRpcMode, 0, b.unit, first);
    f.extra.clear();
    reference[b.row] = BaselineMean(b.shape, b.get, &f);
    f.value = reference[b.row].value_or(NAN);
    const std::optional<double> others = BaselineMean(
        b.shape, [](const RunFigures& r) { return r.others_cpu_share; });
    if (others.has_value() && std::isfinite(*others)) {
      f.extra.push_back({kOthersCpuShare, *others});
    }
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
        f.reference_of = absl::StrCat(kNullRpcMode, ".", t.reference);
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

void BenchRuns::RunHeld(const std::string& mode) {
  const BenchConfig& config = env_.config();
  const int64_t calls = config.held;
  const int channels = config.held_channels;
  const absl::Duration limit = config.held_limit;
  struct Kind {
    HeldKind kind;
    const char* row;
    const char* mode;
    const char* what;
  };
  const Kind kinds[] = {
      {HeldKind::kEchoIdle, "held_idle_stream", kNullRpcMode,
       "null RPC idle stream"},
      {HeldKind::kTaskdStream, "held_stream", "", "taskd idle Stream"},
      {HeldKind::kTaskdAwait, "held_await", "", "taskd pending Await"},
  };
  // The idle stream's figures: the references of taskd's.
  std::optional<double> idle_bytes;
  std::optional<double> idle_seconds;
  std::optional<double> idle_cpu;
  for (const Kind& k : kinds) {
    const std::string figure_mode = *k.mode != '\0' ? k.mode : mode;
    const std::string what = absl::StrCat(k.what, " (", figure_mode, ")");
    absl::StatusOr<HeldFigures> held =
        RunHeldCalls(env_, k.kind, mode, calls, channels, limit);
    if (!Check(held.status(), what)) continue;
    Progress(absl::StrCat(
        what, ": ", FormatNumber(held->rss_bytes_per_call), " bytes per call, ",
        held->held, " of ", calls, " registered in ",
        FormatNumber(held->register_seconds, 2), " s (opened by the client in ",
        FormatNumber(held->start_seconds, 2), " s), server CPU ",
        FormatNumber(held->server_cpu_us_per_call, 1), " us per call",
        held->error.empty() ? "" : absl::StrCat(" (", held->error, ")")));
    RunFigures run;
    run.n = held->held;
    run.errors = held->requested - held->held;
    run.first_error = held->error;
    run.time_limited = !held->complete;
    run.seconds = held->register_seconds;
    run.others_cpu_share = held->others_cpu_share;
    Figure& bytes = AddRun(absl::StrCat(k.row, "_bytes"), figure_mode,
                           held->rss_bytes_per_call, "bytes/call", run);
    bytes.extra.insert(bytes.extra.end(),
                       {{"client_start_s", held->start_seconds},
                        {"rss_before", static_cast<double>(held->rss_before)},
                        {"rss_after", static_cast<double>(held->rss_after)},
                        {"channels", static_cast<double>(held->channels)},
                        {"requested", static_cast<double>(held->requested)}});
    Figure& seconds = AddRun(absl::StrCat(k.row, "_register_s"), figure_mode,
                             held->register_seconds, "s", run);
    seconds.extra.push_back({"client_start_s", held->start_seconds});
    Figure& cpu = AddRun(absl::StrCat(k.row, "_cpu_us"), figure_mode,
                         held->server_cpu_us_per_call, "us/call", run);
    if (k.kind == HeldKind::kEchoIdle) {
      idle_bytes = held->rss_bytes_per_call;
      idle_seconds = held->register_seconds;
      idle_cpu = held->server_cpu_us_per_call;
    } else {
      bytes.reference = idle_bytes;
      seconds.reference = idle_seconds;
      cpu.reference = idle_cpu;
      bytes.reference_of = "null_rpc.held_idle_stream_bytes";
      seconds.reference_of = "null_rpc.held_idle_stream_register_s";
      cpu.reference_of = "null_rpc.held_idle_stream_cpu_us";
    }
  }
}

void BenchRuns::RunQueued(const std::string& mode) {
  const BenchConfig& config = env_.config();
  const int64_t queued = config.queued;
  const int64_t dispatch = config.dispatch_tasks;
  const std::string what = absl::StrCat(queued, " queued (", mode, ")");
  Progress(absl::StrCat(what, ": queueing..."));
  absl::StatusOr<BacklogFigures> b =
      RunBacklog(env_, mode, queued, dispatch, config.queued_limit);
  if (!Check(b.status(), what)) return;
  Progress(absl::StrCat(what, ": ", FormatNumber(b->bytes_per_task),
                        " bytes per task, ", "recovery ",
                        FormatNumber(b->recovery_seconds, 2), " s, dispatch ",
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

void BenchRuns::RunMetrics(const std::string& mode) {
  const int slices = env_.config().metrics_slices;
  const absl::Duration slice = env_.config().metrics_slice;
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

}  // namespace taskd::bench
