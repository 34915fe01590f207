#include "tests/bench/throughput.h"

#include <algorithm>
#include <memory>

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "tests/bench/bench_worker.h"
#include "tests/bench/echo.grpc.pb.h"
#include "tests/bench/load.h"
#include "tests/bench/metrics_scrape.h"
#include "tests/bench/proc_stats.h"

namespace taskd::bench {
namespace {

LoadShape ShapeOf(const BenchConfig& config, Shape shape) {
  LoadShape load;
  load.time_limit = config.run_limit;
  load.call_timeout = config.call_timeout;
  switch (shape) {
    case Shape::kOneAtATime:
      load.calls = config.tasks;
      load.in_flight = 1;
      break;
    case Shape::kInFlight:
      load.calls = config.tasks;
      load.in_flight = config.in_flight;
      break;
    case Shape::kBatched:
      load.calls = (config.tasks + config.batch - 1) / config.batch;
      load.in_flight = 1;
      break;
  }
  return load;
}

int TasksPerCall(const BenchConfig& config, Shape shape) {
  return shape == Shape::kBatched ? config.batch : 1;
}

// Fills the common figures of `run` from `load`.
void TakeLoad(LoadResult& load, RunFigures& run) {
  run.rate = load.ItemsPerSecond();
  run.n = load.items_ok;
  run.errors = load.calls_failed;
  run.first_error = load.first_error;
  run.time_limited = load.time_limited;
  run.seconds = absl::ToDoubleSeconds(load.elapsed);
  run.p50_us =
      load.latencies_us.empty() ? NAN : Quantile(load.latencies_us, 0.5);
  run.p99_us =
      load.latencies_us.empty() ? NAN : Quantile(load.latencies_us, 0.99);
}

// A starter of SubmitTask or SubmitTasks calls for `shape`; the requests
// live in `submit` and `batch`, which must outlive the starter.
CallStarter SubmitStarter(v1::TaskService::Stub* stub, Shape shape,
                          const v1::SubmitTaskRequest* submit,
                          const v1::SubmitTasksRequest* batch) {
  if (shape == Shape::kBatched) {
    return UnaryStarter<v1::SubmitTasksResponse>(
        [stub, batch](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
          return stub->PrepareAsyncSubmitTasks(context, *batch, cq);
        },
        batch->tasks_size());
  }
  return UnaryStarter<v1::SubmitTaskResponse>(
      [stub, submit](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
        return stub->PrepareAsyncSubmitTask(context, *submit, cq);
      },
      1);
}

struct SubmitRequests {
  v1::SubmitTaskRequest submit;
  v1::SubmitTasksRequest batch;
};

SubmitRequests MakeRequests(const BenchConfig& config) {
  SubmitRequests requests;
  const v1::TaskSpec spec = BenchSpec(config.payload_bytes);
  *requests.submit.mutable_task() = spec;
  for (int i = 0; i < config.batch; ++i) *requests.batch.add_tasks() = spec;
  return requests;
}

// An EchoRequest of about `request_bytes` asking for a reply of about
// `reply_bytes` (both within a few bytes of field overhead).
EchoRequest EchoRequestOf(size_t request_bytes, size_t reply_bytes) {
  EchoRequest request;
  // A reply body of n bytes serializes to n plus a tag and a length.
  const size_t reply_overhead = reply_bytes < 128     ? 2
                                : reply_bytes < 16384 ? 3
                                                      : 4;
  request.set_reply_bytes(static_cast<uint32_t>(
      reply_bytes > reply_overhead ? reply_bytes - reply_overhead : 0));
  const size_t fixed = request.ByteSizeLong() + (request_bytes < 128     ? 2
                                                 : request_bytes < 16384 ? 3
                                                                         : 4);
  request.set_body(
      std::string(request_bytes > fixed ? request_bytes - fixed : 0, 'x'));
  return request;
}

// The mean of taskd_journal_commit_records (records per commit) since the
// server started; NaN when it has no commits (memory mode) or no metrics.
double JournalRecordsPerCommit(const BenchEnv::Server& server) {
  absl::StatusOr<int> port = server.MetricsPort();
  if (!port.ok()) return NAN;
  absl::StatusOr<std::string> text = ScrapeMetrics(*port, absl::Seconds(10));
  if (!text.ok()) return NAN;
  absl::StatusOr<double> sum =
      MetricSum(*text, "taskd_journal_commit_records_sum");
  absl::StatusOr<double> count =
      MetricSum(*text, "taskd_journal_commit_records_count");
  if (!sum.ok() || !count.ok() || *count <= 0) return NAN;
  return *sum / *count;
}

// One SubmitTask on `cq` (see CallOnce).
grpc::Status SubmitOnce(grpc::CompletionQueue& cq, v1::TaskService::Stub& stub,
                        const v1::SubmitTaskRequest& request,
                        absl::Time deadline, v1::SubmitTaskResponse* response) {
  return CallOnce(
      cq,
      [&](grpc::ClientContext* context, grpc::CompletionQueue* q) {
        return stub.PrepareAsyncSubmitTask(context, request, q);
      },
      deadline, response);
}

// A fresh taskd, the SDK worker serving it (if asked for) and a client stub
// on a connection of its own. Members are destroyed in reverse order: the
// stub, the worker (stopped), its counter, the server (killed).
struct ServedTaskd {
  explicit ServedTaskd(BenchEnv::Server s) : server(std::move(s)) {}

  BenchEnv::Server server;
  TaskCounter counter;
  std::unique_ptr<Worker> worker;
  std::unique_ptr<v1::TaskService::Stub> stub;
};

absl::StatusOr<std::unique_ptr<ServedTaskd>> StartServedTaskd(
    BenchEnv& env, absl::string_view mode, bool with_worker = true) {
  absl::StatusOr<BenchEnv::Server> server = env.StartTaskd(mode);
  if (!server.ok()) return server.status();
  auto served = std::make_unique<ServedTaskd>(*std::move(server));
  if (with_worker) {
    absl::StatusOr<std::unique_ptr<Worker>> worker =
        StartNoopWorker(served->server.target(),
                        env.config().worker_concurrency, &served->counter);
    if (!worker.ok()) return worker.status();
    served->worker = *std::move(worker);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectChannel(served->server.target(), 1);
  if (!channel.ok()) return channel.status();
  served->stub = v1::TaskService::NewStub(*channel);
  return served;
}

}  // namespace

RunFigures MedianOf(std::vector<RunFigures> runs) {
  if (runs.size() == 1) return std::move(runs.front());
  const auto median = [&runs](double RunFigures::*field) {
    std::vector<double> values;
    for (const RunFigures& r : runs) values.push_back(r.*field);
    return Quantile(values, 0.5);
  };
  // The extra figures come from the run whose rate is the median.
  std::sort(
      runs.begin(), runs.end(),
      [](const RunFigures& a, const RunFigures& b) { return a.rate < b.rate; });
  RunFigures merged = runs[(runs.size() - 1) / 2];
  merged.rate = median(&RunFigures::rate);
  merged.cpu_us_per_task = median(&RunFigures::cpu_us_per_task);
  merged.p50_us = median(&RunFigures::p50_us);
  merged.p99_us = median(&RunFigures::p99_us);
  merged.others_cpu_share = 0;
  merged.n = 0;
  merged.errors = 0;
  merged.seconds = 0;
  merged.time_limited = false;
  merged.first_error.clear();
  for (const RunFigures& r : runs) {
    merged.others_cpu_share += r.others_cpu_share / runs.size();
    merged.n += r.n;
    merged.errors += r.errors;
    merged.seconds += r.seconds;
    merged.time_limited = merged.time_limited || r.time_limited;
    if (merged.first_error.empty()) merged.first_error = r.first_error;
  }
  merged.extra.push_back({"runs", static_cast<double>(runs.size())});
  merged.extra.push_back({"rate_min", runs.front().rate});
  merged.extra.push_back({"rate_max", runs.back().rate});
  return merged;
}

absl::StatusOr<MessageSizes> ProbeMessageSizes(BenchEnv& env) {
  absl::StatusOr<std::unique_ptr<ServedTaskd>> served =
      StartServedTaskd(env, "memory", /*with_worker=*/false);
  if (!served.ok()) return served.status();
  v1::TaskService::Stub* stub = (*served)->stub.get();
  const SubmitRequests requests = MakeRequests(env.config());
  const absl::Time deadline = absl::Now() + env.config().call_timeout;
  MessageSizes sizes;
  grpc::CompletionQueue cq;
  v1::SubmitTaskResponse submitted;
  grpc::Status status =
      SubmitOnce(cq, *stub, requests.submit, deadline, &submitted);
  if (!status.ok()) return CallError("SubmitTask", status);
  v1::SubmitTasksResponse batch;
  status = CallOnce(
      cq,
      [&](grpc::ClientContext* context, grpc::CompletionQueue* q) {
        return stub->PrepareAsyncSubmitTasks(context, requests.batch, q);
      },
      deadline, &batch);
  if (!status.ok()) return CallError("SubmitTasks", status);
  ShutdownAndDrain(cq);
  sizes.submit_request = requests.submit.ByteSizeLong();
  sizes.submit_response = submitted.ByteSizeLong();
  sizes.batch_request = requests.batch.ByteSizeLong();
  sizes.batch_response = batch.ByteSizeLong();
  return sizes;
}

absl::StatusOr<RunFigures> RunEcho(BenchEnv& env, const MessageSizes& sizes,
                                   Shape shape) {
  const BenchConfig& config = env.config();
  absl::StatusOr<BenchEnv::Server> server = env.StartEcho();
  if (!server.ok()) return server.status();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectChannel(server->target(), 0);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<Echo::Stub> stub = Echo::NewStub(*channel);
  const EchoRequest request =
      shape == Shape::kBatched
          ? EchoRequestOf(sizes.batch_request, sizes.batch_response)
          : EchoRequestOf(sizes.submit_request, sizes.submit_response);
  const CallStarter start = UnaryStarter<EchoReply>(
      [&stub, &request](grpc::ClientContext* context,
                        grpc::CompletionQueue* cq) {
        return stub->PrepareAsyncCall(context, request, cq);
      },
      TasksPerCall(config, shape));
  const CpuMeter cpu(server->pid());
  LoadResult load = RunLoad(ShapeOf(config, shape), start);
  RunFigures run;
  run.cpu_us_per_task = cpu.ServerMicrosPerTask(load.items_ok);
  run.others_cpu_share = cpu.OthersShare();
  TakeLoad(load, run);
  run.extra.push_back(
      {"request_bytes", static_cast<double>(request.ByteSizeLong())});
  return run;
}

absl::StatusOr<RunFigures> RunSubmit(BenchEnv& env, absl::string_view mode,
                                     Shape shape) {
  const BenchConfig& config = env.config();
  absl::StatusOr<std::unique_ptr<ServedTaskd>> served =
      StartServedTaskd(env, mode, /*with_worker=*/false);
  if (!served.ok()) return served.status();
  const BenchEnv::Server& server = (*served)->server;
  v1::TaskService::Stub* stub = (*served)->stub.get();
  const SubmitRequests requests = MakeRequests(config);
  const CpuMeter cpu(server.pid());
  LoadResult load =
      RunLoad(ShapeOf(config, shape),
              SubmitStarter(stub, shape, &requests.submit, &requests.batch));
  RunFigures run;
  run.cpu_us_per_task = cpu.ServerMicrosPerTask(load.items_ok);
  run.others_cpu_share = cpu.OthersShare();
  TakeLoad(load, run);
  if (shape == Shape::kInFlight) {
    const double per_commit = JournalRecordsPerCommit(server);
    if (!std::isnan(per_commit)) {
      run.extra.push_back({"journal_records_per_commit", per_commit});
    }
  }
  return run;
}

absl::StatusOr<RunFigures> RunEndToEnd(BenchEnv& env, absl::string_view mode,
                                       Shape shape) {
  const BenchConfig& config = env.config();
  absl::StatusOr<std::unique_ptr<ServedTaskd>> served =
      StartServedTaskd(env, mode);
  if (!served.ok()) return served.status();
  TaskCounter& counter = (*served)->counter;
  v1::TaskService::Stub* stub = (*served)->stub.get();
  const SubmitRequests requests = MakeRequests(config);

  const CpuMeter cpu((*served)->server.pid());
  const absl::Time begin = absl::Now();
  // Submitting is bounded by run_limit; running what was submitted gets as
  // long again.
  const absl::Time deadline = begin + 2 * config.run_limit;
  LoadResult load =
      RunLoad(ShapeOf(config, shape),
              SubmitStarter(stub, shape, &requests.submit, &requests.batch));
  const int64_t ran = counter.WaitFor(load.items_ok, deadline);
  absl::Status done =
      ran >= load.items_ok
          ? AwaitSucceeded(*stub, counter.Recent(), deadline)
          : absl::DeadlineExceededError(absl::StrCat(
                "the worker ran ", ran, " of ", load.items_ok, " tasks"));
  const absl::Time end = absl::Now();
  RunFigures run;
  run.cpu_us_per_task = cpu.ServerMicrosPerTask(load.items_ok);
  run.others_cpu_share = cpu.OthersShare();
  (*served)->worker->Stop();
  TakeLoad(load, run);  // submit latencies and errors
  if (!done.ok()) {
    ++run.errors;
    run.time_limited = true;
    if (run.first_error.empty()) run.first_error = std::string(done.message());
  }
  run.seconds = absl::ToDoubleSeconds(end - begin);
  run.rate =
      run.seconds > 0 ? std::min<int64_t>(ran, load.items_ok) / run.seconds : 0;
  run.extra.push_back({"submit_seconds", absl::ToDoubleSeconds(load.elapsed)});
  return run;
}

absl::StatusOr<RunFigures> RunRoundTrips(BenchEnv& env,
                                         absl::string_view mode) {
  const BenchConfig& config = env.config();
  absl::StatusOr<std::unique_ptr<ServedTaskd>> served =
      StartServedTaskd(env, mode);
  if (!served.ok()) return served.status();
  v1::TaskService::Stub* stub = (*served)->stub.get();
  const SubmitRequests requests = MakeRequests(config);

  RunFigures run;
  const CpuMeter cpu((*served)->server.pid());
  std::vector<double> latencies_us;
  latencies_us.reserve(static_cast<size_t>(config.round_trips));
  grpc::CompletionQueue cq;
  const absl::Time begin = absl::Now();
  const absl::Time stop = begin + config.run_limit;
  int64_t i = 0;
  for (; i < config.round_trips && absl::Now() < stop; ++i) {
    const absl::Time start = absl::Now();
    const absl::Time deadline = start + config.call_timeout;
    v1::SubmitTaskResponse submitted;
    grpc::Status status =
        SubmitOnce(cq, *stub, requests.submit, deadline, &submitted);
    v1::AwaitResponse awaited;
    if (status.ok()) {
      v1::AwaitRequest await;
      await.add_ids(submitted.task().id());
      status = CallOnce(
          cq,
          [&](grpc::ClientContext* context, grpc::CompletionQueue* q) {
            return stub->PrepareAsyncAwait(context, await, q);
          },
          deadline, &awaited);
    }
    const absl::Time end = absl::Now();
    if (status.ok() && awaited.done() && awaited.tasks_size() == 1 &&
        awaited.tasks(0).state() == v1::TASK_STATE_SUCCEEDED) {
      latencies_us.push_back(absl::ToDoubleMicroseconds(end - start));
      continue;
    }
    ++run.errors;
    if (run.first_error.empty()) {
      run.first_error =
          status.ok() ? absl::StrCat("task not succeeded: ",
                                     awaited.ShortDebugString().substr(0, 200))
                      : DescribeGrpcError(status);
    }
  }
  ShutdownAndDrain(cq);
  run.others_cpu_share = cpu.OthersShare();
  run.time_limited = i < config.round_trips;
  run.seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  run.n = static_cast<int64_t>(latencies_us.size());
  run.rate = run.seconds > 0 ? run.n / run.seconds : 0;
  if (!latencies_us.empty()) {
    run.p50_us = Quantile(latencies_us, 0.5);
    run.p99_us = Quantile(latencies_us, 0.99);
  }
  (*served)->worker->Stop();
  return run;
}

}  // namespace taskd::bench
