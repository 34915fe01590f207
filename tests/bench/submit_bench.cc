// submit_bench: SubmitTask throughput and latency of a real `taskd` process
// in each durability mode, at several client concurrencies, next to the raw
// fdatasync rate of the disk under --dir.
//
//   bazel run //tests/bench:submit_bench -- --duration=3s --max_submits=20000
//
// Each (mode, concurrency) run starts a fresh `services/taskd` subprocess on
// 127.0.0.1 with a fresh data directory under --dir, keeps `concurrency`
// SubmitTask calls in flight from one completion-queue thread until
// --duration passes or --max_submits calls were started, drains, and stops
// the server. Throughput counts successful submits over the run's wall time;
// latencies are per call. A mode the server refuses (e.g. a build without
// durable storage) is reported as such and skipped.
//
// The raw rate is probed before and after the runs (4 KiB writes, each
// fdatasynced, each kind for --fsync_duration in all): in place, the flush
// rate, and appending, where each sync also commits the file's new size. The
// ratio on the last line, sync throughput at the highest concurrency over
// the in-place rate, estimates the tasks each fsync carries: well above 1
// means group commit works. (An estimate: the server's log may sync faster
// or slower than the probe's file.)
//
// Metrics on/off: the cost of /metrics (counters, histograms, the gRPC
// interceptor) is measured last. Two servers run side by side in
// --metrics_mode, one with --metrics_listen=127.0.0.1:0 and one with metrics
// off (--metrics_listen=); the load (--metrics_concurrency calls in flight)
// goes to them in alternating short slices (--metrics_slices of
// --metrics_slice each), so that the other work of a shared machine hits
// both alike. Printed: throughput and the server's CPU time per submit of
// each, and their difference (the budget is 3 %). The table above runs with
// metrics on, as taskd does by default.
//
// Flags may be spelled with dashes as well (--max-submits), as for taskd.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/status.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "api/taskd/v1/taskd.pb.h"
#include "tests/taskd_process.h"

ABSL_FLAG(absl::Duration, duration, absl::Seconds(3),
          "longest load phase of one run");
ABSL_FLAG(int64_t, max_submits, 20000, "most submits started in one run");
ABSL_FLAG(std::string, dir, "",
          "directory for the runs' data directories and the fsync probe "
          "(default: $TMPDIR or /tmp); put it on the disk to measure");
ABSL_FLAG(std::string, modes, "memory,async,sync",
          "durability modes to run, comma-separated");
ABSL_FLAG(std::string, concurrency, "1,16,256",
          "SubmitTask calls kept in flight, comma-separated");
ABSL_FLAG(int, server_threads, 0,
          "taskd --threads (0: leave the server's default)");
ABSL_FLAG(int, payload_bytes, 64, "payload size of each task");
ABSL_FLAG(int, metrics_slices, 20,
          "load slices against each of the metrics-on and metrics-off "
          "servers (0: skip the comparison)");
ABSL_FLAG(absl::Duration, metrics_slice, absl::Milliseconds(250),
          "length of one slice of the metrics on/off comparison");
ABSL_FLAG(std::string, metrics_mode, "memory",
          "durability mode of the metrics on/off comparison");
ABSL_FLAG(int, metrics_concurrency, 64,
          "client concurrency of the metrics on/off comparison");
ABSL_FLAG(absl::Duration, fsync_duration, absl::Seconds(2),
          "total length of the raw fdatasync probes");
ABSL_FLAG(std::string, taskd, "",
          "taskd binary (default: $TASKD_BINARY, else services/taskd from "
          "the runfiles)");

namespace taskd {
namespace {

using testing::TaskdProcess;

// Dashes in a flag's name (not its value) become underscores, absl's
// spelling, so --max-submits works like --max_submits.
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

constexpr absl::Duration kStartLimit = absl::Seconds(60);
constexpr absl::Duration kExitLimit = absl::Seconds(15);
constexpr absl::Duration kCallTimeout = absl::Seconds(30);

struct RunResult {
  int64_t ok = 0;
  int64_t failed = 0;
  std::string first_error;
  double tasks_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// One SubmitTask call in flight; a ClientContext serves one call only.
struct Call {
  grpc::ClientContext context;
  v1::SubmitTaskResponse response;
  grpc::Status status;
  absl::Time start;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::SubmitTaskResponse>>
      reader;
};

double Percentile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1,
                            static_cast<size_t>(q * (sorted.size() - 1) + 0.5));
  return sorted[i];
}

// Keeps `concurrency` SubmitTask calls in flight against `target` until
// `duration` passes or `max_submits` calls were started, then drains.
RunResult RunLoad(const std::string& target, int concurrency,
                  absl::Duration duration, int64_t max_submits) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  std::unique_ptr<v1::TaskService::Stub> stub =
      v1::TaskService::NewStub(channel);
  RunResult result;
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
    result.first_error = "could not connect";
    return result;
  }

  v1::SubmitTaskRequest request;
  request.mutable_task()->set_queue("bench");
  request.mutable_task()->set_type("bench");
  request.mutable_task()->set_payload(
      std::string(absl::GetFlag(FLAGS_payload_bytes), 'x'));

  grpc::CompletionQueue cq;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(max_submits);
  int64_t started = 0;
  int in_flight = 0;
  const absl::Time begin = absl::Now();
  const absl::Time stop_starting = begin + duration;
  auto start_call = [&] {
    auto* call = new Call;
    call->context.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
    call->start = absl::Now();
    call->reader = stub->AsyncSubmitTask(&call->context, request, &cq);
    call->reader->Finish(&call->response, &call->status, call);
    ++started;
    ++in_flight;
  };
  for (int i = 0; i < concurrency && started < max_submits; ++i) start_call();

  absl::Time end = begin;
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && cq.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --in_flight;
    end = absl::Now();
    if (ok && call->status.ok()) {
      ++result.ok;
      latencies_ms.push_back(absl::ToDoubleMilliseconds(end - call->start));
    } else {
      ++result.failed;
      if (result.first_error.empty()) {
        result.first_error = ok ? call->status.error_message() : "cq not ok";
      }
    }
    if (started < max_submits && end < stop_starting) start_call();
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) delete static_cast<Call*>(tag);

  const double seconds = absl::ToDoubleSeconds(end - begin);
  result.tasks_per_second = seconds > 0 ? result.ok / seconds : 0;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  result.p50_ms = Percentile(latencies_ms, 0.50);
  result.p99_ms = Percentile(latencies_ms, 0.99);
  return result;
}

// How the fsync probe writes its 4 KiB blocks.
enum class ProbeWrites {
  kOverwrite,  // in place, over a pre-written 1 MiB region: data only
  kAppend,     // at the end, so each fdatasync also commits the new size
};

// Writes 4 KiB and fdatasyncs it, over and over for `duration`; the rate.
absl::StatusOr<double> RawFdatasyncRate(const std::string& dir,
                                        absl::Duration duration,
                                        ProbeWrites writes) {
  const std::string path = absl::StrCat(dir, "/fsync-probe");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("open ", path, ": errno ", errno));
  }
  constexpr int kBlocks = 256;
  const std::string block(4096, 'f');
  absl::Status status;
  if (writes == ProbeWrites::kOverwrite) {
    for (int i = 0; i < kBlocks && status.ok(); ++i) {
      if (write(fd, block.data(), block.size()) !=
          static_cast<ssize_t>(block.size())) {
        status = absl::InternalError(absl::StrCat("write: errno ", errno));
      }
    }
    if (status.ok() && fsync(fd) != 0) {
      status = absl::InternalError(absl::StrCat("fsync: errno ", errno));
    }
  }
  int64_t syncs = 0;
  const absl::Time begin = absl::Now();
  while (status.ok() && absl::Now() - begin < duration) {
    const ssize_t written =
        writes == ProbeWrites::kOverwrite
            ? pwrite(fd, block.data(), block.size(),
                     (syncs % kBlocks) * static_cast<off_t>(block.size()))
            : write(fd, block.data(), block.size());
    if (written != static_cast<ssize_t>(block.size()) || fdatasync(fd) != 0) {
      status =
          absl::InternalError(absl::StrCat("write/fdatasync: errno ", errno));
      break;
    }
    ++syncs;
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  close(fd);
  unlink(path.c_str());
  if (!status.ok()) return status;
  return syncs / seconds;
}

// Both probes, each run before and after the benchmark runs (a shared
// disk's rate drifts); the means.
struct RawRates {
  double overwrite = 0;
  double append = 0;
};

absl::Status ProbeDisk(const std::string& dir, RawRates* sum) {
  for (ProbeWrites writes : {ProbeWrites::kOverwrite, ProbeWrites::kAppend}) {
    absl::StatusOr<double> rate =
        RawFdatasyncRate(dir, absl::GetFlag(FLAGS_fsync_duration) / 2, writes);
    if (!rate.ok()) return rate.status();
    (writes == ProbeWrites::kOverwrite ? sum->overwrite : sum->append) +=
        *rate / 2;
  }
  return absl::OkStatus();
}

std::string DefaultDir() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// CPU seconds (user + system) process `pid` has used; -1 when unknown.
double ProcessCpuSeconds(pid_t pid) {
  std::FILE* f = std::fopen(absl::StrCat("/proc/", pid, "/stat").c_str(), "r");
  if (f == nullptr) return -1;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = std::strrchr(buf, ')');
  if (close == nullptr) return -1;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(close + 2), ' ');
  uint64_t utime = 0, stime = 0;  // fields 14 and 15; fields[0] is field 3
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -1;
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// A taskd on a free port in `mode` with its data in `data_dir`;
// `metrics_flag` is its --metrics_listen flag.
TaskdProcess::Options ServerOptions(const std::string& taskd,
                                    const std::string& data_dir,
                                    const std::string& mode,
                                    const std::string& metrics_flag) {
  TaskdProcess::Options options;
  options.binary = taskd;
  options.flags = {"--listen=127.0.0.1:0", metrics_flag,
                   absl::StrCat("--durability=", mode),
                   absl::StrCat("--data_dir=", data_dir)};
  if (absl::GetFlag(FLAGS_server_threads) > 0) {
    options.flags.push_back(
        absl::StrCat("--threads=", absl::GetFlag(FLAGS_server_threads)));
  }
  options.start_limit = kStartLimit;
  options.exit_limit = kExitLimit;
  return options;
}

// Prints the metrics on/off comparison (see the file comment).
void CompareMetrics(const std::string& taskd, const std::string& work) {
  const int slices = absl::GetFlag(FLAGS_metrics_slices);
  if (slices <= 0) return;
  const std::string mode = absl::GetFlag(FLAGS_metrics_mode);
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_metrics_concurrency));
  const absl::Duration slice = absl::GetFlag(FLAGS_metrics_slice);
  struct Side {
    const char* flag;
    std::unique_ptr<TaskdProcess> server;
    int64_t ok = 0;
    double seconds = 0;      // wall time under load
    double cpu_seconds = 0;  // the server's CPU time under load
  };
  Side sides[2] = {{"--metrics_listen=127.0.0.1:0"}, {"--metrics_listen="}};
  for (int i = 0; i < 2; ++i) {
    auto server = TaskdProcess::Start(ServerOptions(
        taskd, absl::StrCat(work, "/metrics-", i), mode, sides[i].flag));
    if (!server.ok()) {
      std::printf("metrics on/off: server failed: %s\n",
                  std::string(server.status().message()).c_str());
      return;
    }
    sides[i].server = *std::move(server);
  }
  for (int i = 0; i < 2 * slices; ++i) {
    // on, off, off, on, on, off, ...: each order equally often.
    Side& side = sides[(i % 4 == 0 || i % 4 == 3) ? 0 : 1];
    const double cpu_before = ProcessCpuSeconds(side.server->pid());
    const RunResult r =
        RunLoad(side.server->target(), concurrency, slice, 1'000'000);
    const double cpu_after = ProcessCpuSeconds(side.server->pid());
    side.ok += r.ok;
    side.seconds += r.ok / std::max(1.0, r.tasks_per_second);
    side.cpu_seconds += cpu_after - cpu_before;
  }
  for (Side& side : sides) side.server->Stop().IgnoreError();
  if (sides[0].ok == 0 || sides[1].ok == 0) {
    std::printf("metrics on/off: no successful submits; no comparison\n");
    return;
  }
  const double rate[2] = {sides[0].ok / sides[0].seconds,
                          sides[1].ok / sides[1].seconds};
  const double cpu_us[2] = {sides[0].cpu_seconds * 1e6 / sides[0].ok,
                            sides[1].cpu_seconds * 1e6 / sides[1].ok};
  std::printf(
      "metrics on/off (%s, conc %d, %d interleaved %s slices each): on %.0f "
      "tasks/s, off %.0f tasks/s, difference %+.1f %% (budget 3 %%)\n"
      "  server CPU per submit: on %.1f us, off %.1f us (%+.1f %%)\n",
      mode.c_str(), concurrency, slices, absl::FormatDuration(slice).c_str(),
      rate[0], rate[1], (rate[0] - rate[1]) / rate[1] * 100.0, cpu_us[0],
      cpu_us[1], (cpu_us[0] - cpu_us[1]) / cpu_us[1] * 100.0);
  std::fflush(stdout);
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "submit_bench: SubmitTask throughput per durability mode and "
      "concurrency, against a taskd subprocess");
  NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const int64_t max_submits = absl::GetFlag(FLAGS_max_submits);
  const std::string base = absl::GetFlag(FLAGS_dir).empty()
                               ? DefaultDir()
                               : absl::GetFlag(FLAGS_dir);
  std::vector<int> concurrencies;
  for (absl::string_view c : absl::StrSplit(absl::GetFlag(FLAGS_concurrency),
                                            ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(c, &n) || n < 1 || n > 10000) {
      std::fprintf(stderr, "submit_bench: bad --concurrency entry '%s'\n",
                   std::string(c).c_str());
      return 2;
    }
    concurrencies.push_back(n);
  }
  const std::vector<std::string> modes =
      absl::StrSplit(absl::GetFlag(FLAGS_modes), ',', absl::SkipEmpty());
  if (duration <= absl::ZeroDuration() || max_submits < 1 ||
      concurrencies.empty() || modes.empty()) {
    std::fprintf(stderr,
                 "submit_bench: --duration and --max_submits must be "
                 "positive, --modes and --concurrency non-empty\n");
    return 2;
  }
  absl::StatusOr<std::string> taskd =
      testing::FindTaskdBinary(absl::GetFlag(FLAGS_taskd), argv[0]);
  if (!taskd.ok()) {
    std::fprintf(stderr, "submit_bench: %s; pass --taskd=PATH\n",
                 std::string(taskd.status().message()).c_str());
    return 2;
  }
  std::string pattern = absl::StrCat(base, "/taskd-bench-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "submit_bench: cannot create a directory in %s\n",
                 base.c_str());
    return 2;
  }
  const std::string work = pattern;

  RawRates raw;
  absl::Status probed = ProbeDisk(work, &raw);

  std::printf("%-7s %5s %9s %8s %8s  %s\n", "mode", "conc", "tasks/s", "p50_ms",
              "p99_ms", "errors");
  std::fflush(stdout);
  // Highest-concurrency sync throughput, for the group-commit line.
  double sync_best_conc_rate = 0;
  int sync_best_conc = 0;
  int run_index = 0;
  for (const std::string& mode : modes) {
    for (int concurrency : concurrencies) {
      const std::string data_dir = absl::StrCat(work, "/run-", run_index++);
      absl::StatusOr<std::unique_ptr<TaskdProcess>> server =
          TaskdProcess::Start(ServerOptions(*taskd, data_dir, mode,
                                            "--metrics_listen=127.0.0.1:0"));
      if (!server.ok()) {
        std::printf("%-7s %5d %9s %8s %8s  server failed: %s\n", mode.c_str(),
                    concurrency, "-", "-", "-",
                    std::string(server.status().message()).c_str());
        std::fflush(stdout);
        std::error_code ignored;
        std::filesystem::remove_all(data_dir, ignored);
        continue;
      }
      const RunResult r =
          RunLoad((*server)->target(), concurrency, duration, max_submits);
      (*server)->Stop().IgnoreError();
      std::error_code ignored;
      std::filesystem::remove_all(data_dir, ignored);
      std::printf(
          "%-7s %5d %9.0f %8.3f %8.3f  %s\n", mode.c_str(), concurrency,
          r.tasks_per_second, r.p50_ms, r.p99_ms,
          r.failed == 0
              ? "0"
              : absl::StrCat(r.failed, " (", r.first_error, ")").c_str());
      std::fflush(stdout);
      if (mode == "sync" && r.ok > 0 && concurrency >= sync_best_conc) {
        sync_best_conc = concurrency;
        sync_best_conc_rate = r.tasks_per_second;
      }
    }
  }

  CompareMetrics(*taskd, work);

  if (probed.ok()) probed = ProbeDisk(work, &raw);
  std::error_code ignored;
  std::filesystem::remove_all(work, ignored);
  if (!probed.ok()) {
    std::printf("raw fdatasync/s on %s: failed (%s)\n", base.c_str(),
                std::string(probed.message()).c_str());
    return 1;
  }
  std::printf(
      "raw fdatasync/s on %s: %.0f (4 KiB in place; appending 4 KiB: %.0f)\n",
      base.c_str(), raw.overwrite, raw.append);
  if (sync_best_conc > 0 && raw.overwrite > 0) {
    std::printf(
        "sync@%d / raw fsync rate = %.1f tasks per fsync  (group commit "
        "efficiency)\n",
        sync_best_conc, sync_best_conc_rate / raw.overwrite);
  } else {
    std::printf("sync: no successful run, no group commit figure\n");
  }
  return 0;
}

}  // namespace
}  // namespace taskd

int main(int argc, char** argv) { return taskd::Main(argc, argv); }
