#include "tests/bench/backlog.h"

#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "tests/bench/bench_worker.h"
#include "tests/bench/load.h"
#include "tests/bench/proc_stats.h"

namespace taskd::bench {
namespace {

// SubmitTasks calls in flight while filling: enough to keep the server busy
// between one batch's answer and the next batch's arrival.
constexpr int kFillInFlight = 2;
// Longest wait from a restart to the server's first answer.
constexpr absl::Duration kRecoveryLimit = absl::Minutes(2);
// Seeds the backlog's payloads: the same bytes in every run.
constexpr uint64_t kPayloadSeed = 12;

struct Fill {
  int64_t queued = 0;
  LoadResult load;
};

// Queues about `count` tasks (whole batches) on `target`.
absl::StatusOr<Fill> FillQueue(const BenchConfig& config,
                               const std::string& target, int64_t count,
                               absl::Duration limit) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectChannel(target, 0);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<v1::TaskService::Stub> stub =
      v1::TaskService::NewStub(*channel);
  // Random payloads, a different one per task of a batch: storage that
  // compresses must not get the backlog's bytes for free.
  v1::SubmitTasksRequest batch;
  const int64_t per_call = std::min<int64_t>(config.batch, count);
  std::mt19937_64 random(kPayloadSeed);
  for (int64_t i = 0; i < per_call; ++i) {
    v1::TaskSpec* spec = batch.add_tasks();
    *spec = BenchSpec(config.payload_bytes);
    for (char& c : *spec->mutable_payload()) c = static_cast<char>(random());
  }
  LoadShape shape;
  shape.calls = (count + per_call - 1) / per_call;
  shape.in_flight = kFillInFlight;
  shape.time_limit = limit;
  shape.call_timeout = config.call_timeout;
  Fill fill;
  fill.load = RunLoad(
      shape, UnaryStarter<v1::SubmitTasksResponse>(
                 [&](grpc::ClientContext* context, grpc::CompletionQueue* cq) {
                   return stub->PrepareAsyncSubmitTasks(context, batch, cq);
                 },
                 static_cast<int>(per_call)));
  fill.queued = fill.load.items_ok;
  return fill;
}

// See DispatchFigures.
DispatchFigures Dispatch(const BenchConfig& config, const std::string& target,
                         int64_t tasks) {
  DispatchFigures figures;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectChannel(target, 1);
  if (!channel.ok()) {
    figures.error = std::string(channel.status().message());
    return figures;
  }
  std::unique_ptr<v1::TaskService::Stub> stub =
      v1::TaskService::NewStub(*channel);
  TaskCounter counter;
  const absl::Time begin = absl::Now();
  const absl::Time deadline = begin + config.run_limit;
  absl::StatusOr<std::unique_ptr<Worker>> worker =
      StartNoopWorker(target, config.worker_concurrency, &counter);
  if (!worker.ok()) {
    figures.error = std::string(worker.status().message());
    return figures;
  }
  const int64_t ran = std::min(counter.WaitFor(tasks, deadline), tasks);
  absl::Status done = AwaitSucceeded(*stub, counter.Recent(), deadline);
  const absl::Time end = absl::Now();
  (*worker)->Stop();
  if (ran < tasks) {
    figures.error =
        absl::StrCat("the worker ran ", ran, " of ", tasks, " tasks within ",
                     absl::FormatDuration(config.run_limit));
  } else if (!done.ok()) {
    figures.error = std::string(done.message());
  }
  figures.tasks = ran;
  figures.seconds = absl::ToDoubleSeconds(end - begin);
  figures.rate = figures.seconds > 0 ? ran / figures.seconds : NAN;
  return figures;
}

// The first successful call to a restarted server: GetQueue of kQueue,
// waiting for the server to be ready. Its pending count, or the error.
absl::StatusOr<int64_t> FirstAnswer(const std::string& target,
                                    absl::Time deadline) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectChannel(target, 0, deadline - absl::Now());
  if (!channel.ok()) return channel.status();
  std::unique_ptr<v1::QueueService::Stub> stub =
      v1::QueueService::NewStub(*channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  context.set_wait_for_ready(true);
  v1::GetQueueRequest request;
  request.set_queue(kQueue);
  v1::Queue queue;
  const grpc::Status status = stub->GetQueue(&context, request, &queue);
  if (!status.ok()) return CallError("GetQueue", status);
  return queue.pending();
}

// Kills `server` with SIGKILL and starts it again on its data; returns the
// seconds from the restart to its first answer and that answer (pending).
absl::StatusOr<std::pair<double, int64_t>> KillAndRecover(
    BenchEnv& env, absl::string_view mode, BenchEnv::Server& server) {
  absl::StatusOr<int> killed = server.process->Kill(SIGKILL);
  if (!killed.ok()) return killed.status();
  const absl::Time restart = absl::Now();
  if (absl::Status s = env.RestartTaskd(mode, server); !s.ok()) return s;
  absl::StatusOr<int64_t> pending =
      FirstAnswer(server.target(), restart + kRecoveryLimit);
  if (!pending.ok()) return pending.status();
  return std::make_pair(absl::ToDoubleSeconds(absl::Now() - restart), *pending);
}

}  // namespace

absl::StatusOr<BacklogFigures> RunBacklog(BenchEnv& env, absl::string_view mode,
                                          int64_t queued,
                                          int64_t dispatch_tasks,
                                          absl::Duration fill_limit) {
  const BenchConfig& config = env.config();
  BacklogFigures figures;
  {
    absl::StatusOr<BenchEnv::Server> server = env.StartTaskd(mode);
    if (!server.ok()) return server.status();
    absl::StatusOr<int64_t> rss = ProcessRssBytes(server->pid());
    if (!rss.ok()) return rss.status();
    figures.rss_empty = *rss;

    absl::StatusOr<Fill> fill =
        FillQueue(config, server->target(), queued, fill_limit);
    if (!fill.ok()) return fill.status();
    figures.queued = fill->queued;
    figures.failed_calls = fill->load.calls_failed;
    figures.first_error = fill->load.first_error;
    figures.fill_time_limited = fill->load.time_limited;
    figures.fill_rate = fill->load.ItemsPerSecond();
    figures.fill_seconds = absl::ToDoubleSeconds(fill->load.elapsed);
    if (figures.queued == 0) {
      return absl::UnavailableError(
          absl::StrCat("no task queued: ", figures.first_error));
    }
    rss = ProcessRssBytes(server->pid());
    if (!rss.ok()) return rss.status();
    figures.rss_full = *rss;
    figures.bytes_per_task =
        static_cast<double>(figures.rss_full - figures.rss_empty) /
            static_cast<double>(figures.queued) -
        config.payload_bytes;
    absl::StatusOr<int64_t> disk = DirectoryBytes(server->data_dir);
    if (!disk.ok()) return disk.status();
    figures.data_dir_bytes = *disk;

    absl::StatusOr<std::pair<double, int64_t>> recovered =
        KillAndRecover(env, mode, *server);
    if (!recovered.ok()) return recovered.status();
    figures.recovery_seconds = recovered->first;
    figures.recovered_pending = recovered->second;
    figures.recovery_log = server->process->LastLineContaining("recovered");
    rss = ProcessRssBytes(server->pid());
    if (rss.ok()) figures.rss_recovered = *rss;

    figures.dispatch_full = Dispatch(config, server->target(),
                                     std::min(dispatch_tasks, figures.queued));
  }
  absl::StatusOr<BenchEnv::Server> small = env.StartTaskd(mode);
  if (!small.ok()) return small.status();
  absl::StatusOr<Fill> fill =
      FillQueue(config, small->target(), dispatch_tasks, config.run_limit);
  if (!fill.ok()) return fill.status();
  // Recovered like the backlog, so that only the backlog's size differs.
  absl::StatusOr<std::pair<double, int64_t>> recovered =
      KillAndRecover(env, mode, *small);
  if (!recovered.ok()) return recovered.status();
  figures.dispatch_small =
      Dispatch(config, small->target(), std::min(dispatch_tasks, fill->queued));
  return figures;
}

}  // namespace taskd::bench
