#include "tests/bench/tables.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace taskd::bench {
namespace {

// "4,107 (0.66x)" for a figure with a reference.
std::string Cell(const Figure* f, int decimals) {
  if (f == nullptr) return "-";
  std::string cell = FormatNumber(f->value, decimals);
  if (std::optional<double> r = f->ratio(); r.has_value()) {
    absl::StrAppend(&cell, " (", FormatNumber(*r, *r < 0.1 ? 3 : 2), "x)");
  }
  if (f->errors > 0 || f->time_limited) absl::StrAppend(&cell, "*");
  return cell;
}

std::string Bytes(double bytes) {
  if (!std::isfinite(bytes)) return "-";
  const double magnitude = std::fabs(bytes);
  if (magnitude >= 1024.0 * 1024 * 1024) {
    return absl::StrCat(FormatNumber(bytes / (1024.0 * 1024 * 1024), 2),
                        " GiB");
  }
  if (magnitude >= 1024.0 * 1024) {
    return absl::StrCat(FormatNumber(bytes / (1024.0 * 1024), 1), " MiB");
  }
  if (magnitude >= 1024.0) {
    return absl::StrCat(FormatNumber(bytes / 1024, 1), " KiB");
  }
  return absl::StrCat(FormatNumber(bytes, 0), " B");
}

// "+1.5 %": how far `f` is above its reference; "-" without one.
std::string Difference(const Figure& f) {
  const std::optional<double> ratio = f.ratio();
  if (!ratio.has_value()) return "-";
  return absl::StrCat(*ratio >= 1 ? "+" : "",
                      FormatNumber((*ratio - 1) * 100, 1), " %");
}

}  // namespace

void PrintCallTable(const Results& results,
                    const std::vector<std::string>& modes,
                    const BenchConfig& config) {
  const int64_t tasks = config.tasks;
  const int in_flight = config.in_flight;
  const int batch = config.batch;
  const int concurrency = config.worker_concurrency;
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
    std::vector<std::string> cells = {
        r.label, Cell(results.Find(r.null_key, kNullRpcMode), r.decimals)};
    bool any = false;
    for (const std::string& mode : modes) {
      const Figure* f = results.Find(r.key, mode);
      any = any || f != nullptr;
      cells.push_back(Cell(f, r.decimals));
    }
    if (any) rows.push_back(std::move(cells));
  }
  if (rows.size() == 1) return;  // no per-call run
  std::printf(
      "\nPer call, median of %d runs: ratio = taskd / null RPC on the same "
      "client shape (end to end: / the null RPC's submit rate; p99: / its "
      "p99).\nEnd to end: the C++ SDK worker (concurrency %d) runs every "
      "task. * = errors or a time bound hit (see the JSON).\n",
      config.repeat, concurrency);
  PrintTable(stdout, rows);
  // What else ran on the machine meanwhile.
  double sum = 0;
  double most = 0;
  int count = 0;
  for (const Figure& f : results.figures()) {
    for (const auto& [key, value] : f.extra) {
      if (key != kOthersCpuShare) continue;
      sum += value;
      most = std::max(most, value);
      ++count;
    }
  }
  if (count > 0) {
    std::printf(
        "Other processes used %s %% of the CPUs during these runs on average "
        "(at most %s %%)%s\n",
        FormatNumber(sum / count * 100).c_str(),
        FormatNumber(most * 100).c_str(),
        most > 0.1 ? ": the ratios are unreliable; rerun on a quiet machine"
                   : "");
  }
}

void PrintHeldTable(const Results& results, const std::string& mode,
                    const BenchConfig& config) {
  const Figure* any = results.Find("held_idle_stream_bytes", kNullRpcMode);
  if (any == nullptr) any = results.Find("held_await_bytes", mode);
  if (any == nullptr) return;
  std::vector<std::vector<std::string>> rows = {
      {absl::StrCat(
           "Held calls: ", FormatNumber(static_cast<double>(config.held)),
           " over ", config.held_channels, " connections"),
       "RSS per call", "server CPU per call", "registered in",
       "(client opened)"}};
  struct Row {
    const char* label;
    const char* key;
    std::string mode;
  };
  const Row table[] = {
      {"null RPC idle stream", "held_idle_stream", kNullRpcMode},
      {"taskd Stream on a quiet queue", "held_stream", mode},
      {"taskd Await on a pending task", "held_await", mode},
  };
  for (const Row& r : table) {
    const Figure* bytes = results.Find(absl::StrCat(r.key, "_bytes"), r.mode);
    const Figure* cpu = results.Find(absl::StrCat(r.key, "_cpu_us"), r.mode);
    const Figure* seconds =
        results.Find(absl::StrCat(r.key, "_register_s"), r.mode);
    if (bytes == nullptr) continue;
    // "14.6 KiB (1.01x)"
    const auto cell = [](const Figure* f, const std::string& value) {
      if (f == nullptr) return std::string("-");
      std::optional<double> ratio = f->ratio();
      return absl::StrCat(
          value,
          ratio.has_value() ? absl::StrCat(" (", FormatNumber(*ratio, 2), "x)")
                            : "",
          f->errors > 0 || f->time_limited ? "*" : "");
    };
    std::string opened = "-";
    for (const auto& [key, value] : bytes->extra) {
      if (key == "client_start_s") {
        opened = absl::StrCat("(", FormatNumber(value, 2), " s)");
      }
    }
    rows.push_back(
        {r.mode == kNullRpcMode ? std::string(r.label)
                                : absl::StrCat(r.label, " (", r.mode, ")"),
         cell(bytes, Bytes(bytes->value)),
         cell(cpu, cpu == nullptr
                       ? ""
                       : absl::StrCat(FormatNumber(cpu->value, 1), " us")),
         cell(seconds,
              seconds == nullptr
                  ? ""
                  : absl::StrCat(FormatNumber(seconds->value, 2), " s")),
         opened});
  }
  std::printf("\n");
  PrintTable(stdout, rows);
  std::printf(
      "RSS per call: the server's RSS growth over the calls it counted; "
      "server CPU: its CPU time from the first call opened until it counted "
      "them all, per call; registered in: that time (this client opens the "
      "calls on one thread: last column).\n");
}

void PrintQueuedTable(const Results& results, const std::string& mode,
                      const BenchConfig& config) {
  const int payload_bytes = config.payload_bytes;
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
      {absl::StrCat("Queued: ", FormatNumber(n), " pending tasks (", mode, ", ",
                    payload_bytes, "-byte payloads)"),
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
  rows.push_back(
      {"server RSS, full (empty)",
       absl::StrCat(Bytes(rss->value), " (", Bytes(rss_empty), ")")});
  rows.push_back({"RSS per task beyond its payload",
                  value(per_task, Bytes(per_task ? per_task->value : NAN))});
  rows.push_back(
      {"data directory (per task)",
       disk == nullptr
           ? "-"
           : absl::StrCat(Bytes(disk->value), " (",
                          Bytes(n > 0 ? disk->value / n : NAN), ")")});
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
  for (const auto& [f, text] :
       {std::make_pair(full,
                       "dispatch: worker runs the first %s of the "
                       "backlog after recovery (tasks/s)"),
        std::make_pair(small,
                       "dispatch: the same with only %s queued "
                       "(tasks/s)")}) {
    if (f == nullptr) continue;
    rows.push_back(
        {absl::StrFormat(text, FormatNumber(static_cast<double>(f->n))),
         Cell(f, 0)});
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
                       const BenchConfig& config) {
  const int in_flight = config.in_flight;
  const Figure* rate_on = results.Find("metrics_on_rate", mode);
  const Figure* rate_off = results.Find("metrics_off_rate", mode);
  const Figure* cpu_on = results.Find("metrics_on_cpu_us", mode);
  const Figure* cpu_off = results.Find("metrics_off_cpu_us", mode);
  if (rate_on == nullptr || rate_off == nullptr || cpu_on == nullptr ||
      cpu_off == nullptr) {
    return;
  }
  std::printf("\n");
  PrintTable(stdout,
             {{absl::StrCat("Metrics on/off (", mode, ", ", in_flight,
                            " in flight, interleaved slices)"),
               "on", "off", "difference"},
              {"submits (tasks/s)", FormatNumber(rate_on->value),
               FormatNumber(rate_off->value),
               absl::StrCat(Difference(*rate_on), " (budget -3 %)")},
              {"server CPU per submit (us)", FormatNumber(cpu_on->value, 1),
               FormatNumber(cpu_off->value, 1), Difference(*cpu_on)}});
}

}  // namespace taskd::bench
