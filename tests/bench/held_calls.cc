#include "tests/bench/held_calls.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/async_unary_call.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "tests/bench/echo.grpc.pb.h"
#include "tests/bench/load.h"
#include "tests/bench/metrics_scrape.h"
#include "tests/bench/proc_stats.h"

namespace taskd::bench {
namespace {

// Neither server can tell us when a call it holds is registered: its count
// is read this often until it reaches the target.
constexpr absl::Duration kCountInterval = absl::Milliseconds(20);
// How long cancelled calls may take to come back from the client's queue.
constexpr absl::Duration kDrainLimit = absl::Seconds(60);

// One held call; every completion of it carries its address as the tag. It
// has no deadline, as a client waiting for a result has none: a gRPC
// deadline would add a timer to each call on both sides (about doubling the
// CPU per held call in gRPC 1.51), which is not what is measured here. The
// calls end when they are cancelled.
struct HeldCall {
  virtual ~HeldCall() = default;
  grpc::ClientContext context;
  grpc::Status status;
};

template <typename Response>
struct HeldUnary final : HeldCall {
  static constexpr int kTags = 1;  // Finish
  Response response;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
};

template <typename Message>
struct HeldStream final : HeldCall {
  static constexpr int kTags = 2;  // StartCall, Finish
  std::unique_ptr<grpc::ClientAsyncReader<Message>> reader;
};

// Starts one held call on connection `index` with its completions on `cq`.
using HeldStarter =
    std::function<std::unique_ptr<HeldCall>(int index, grpc::CompletionQueue*)>;

// What the server reports open now.
using OpenCounter = std::function<absl::StatusOr<int64_t>()>;

OpenCounter GaugeCounter(const BenchEnv::Server& server, std::string gauge) {
  return [&server, gauge]() -> absl::StatusOr<int64_t> {
    absl::StatusOr<int> port = server.MetricsPort();
    if (!port.ok()) return port.status();
    absl::StatusOr<std::string> text = ScrapeMetrics(*port, absl::Seconds(5));
    if (!text.ok()) return text.status();
    absl::StatusOr<double> value = MetricSum(*text, gauge);
    if (!value.ok()) return value.status();
    return static_cast<int64_t>(*value);
  };
}

// Submits `count` pending tasks (SubmitTasks of up to 1,000) and returns
// their ids; at most `limit`.
absl::StatusOr<std::vector<std::string>> SubmitPending(
    v1::TaskService::Stub& stub, const BenchConfig& config, int64_t count,
    absl::Duration limit) {
  std::vector<std::string> ids;
  ids.reserve(static_cast<size_t>(count));
  const v1::TaskSpec spec = BenchSpec(config.payload_bytes);
  const absl::Time deadline = absl::Now() + limit;
  while (static_cast<int64_t>(ids.size()) < count) {
    v1::SubmitTasksRequest request;
    const int64_t n =
        std::min<int64_t>(1000, count - static_cast<int64_t>(ids.size()));
    for (int64_t i = 0; i < n; ++i) *request.add_tasks() = spec;
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    v1::SubmitTasksResponse response;
    const grpc::Status status = stub.SubmitTasks(&context, request, &response);
    if (!status.ok()) return CallError("SubmitTasks", status);
    for (const v1::Task& task : response.tasks()) ids.push_back(task.id());
  }
  return ids;
}

}  // namespace

absl::StatusOr<HeldFigures> RunHeldCalls(BenchEnv& env, HeldKind kind,
                                         absl::string_view mode, int64_t calls,
                                         int channels, absl::Duration limit) {
  const BenchConfig& config = env.config();
  absl::StatusOr<BenchEnv::Server> server =
      kind == HeldKind::kEchoIdle ? env.StartEcho() : env.StartTaskd(mode);
  if (!server.ok()) return server.status();

  HeldFigures figures;
  figures.requested = calls;
  figures.channels = channels;
  std::vector<std::shared_ptr<grpc::Channel>> connections;
  for (int i = 0; i < channels; ++i) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ConnectChannel(server->target(), i);
    if (!channel.ok()) return channel.status();
    connections.push_back(*std::move(channel));
  }

  // The stubs, the requests and the counter of this kind.
  std::vector<std::unique_ptr<Echo::Stub>> echo_stubs;
  std::vector<std::unique_ptr<v1::TaskService::Stub>> task_stubs;
  for (const auto& channel : connections) {
    if (kind == HeldKind::kEchoIdle) {
      echo_stubs.push_back(Echo::NewStub(channel));
    } else {
      task_stubs.push_back(v1::TaskService::NewStub(channel));
    }
  }
  std::vector<std::string> ids;
  if (kind == HeldKind::kTaskdAwait) {
    absl::StatusOr<std::vector<std::string>> submitted =
        SubmitPending(*task_stubs[0], config, calls, limit);
    if (!submitted.ok()) return submitted.status();
    ids = *std::move(submitted);
  }
  HeldStarter start;
  OpenCounter open;
  EchoRequest idle_request;
  v1::StreamRequest stream_request;
  stream_request.set_queue("held-idle");  // a queue nothing happens on
  int64_t next_id = 0;
  switch (kind) {
    case HeldKind::kEchoIdle:
      start = [&](int index, grpc::CompletionQueue* cq) {
        auto call = std::make_unique<HeldStream<EchoReply>>();
        call->reader = echo_stubs[index]->PrepareAsyncIdle(&call->context,
                                                           idle_request, cq);
        call->reader->StartCall(call.get());
        call->reader->Finish(&call->status, call.get());
        return std::unique_ptr<HeldCall>(std::move(call));
      };
      open = [&]() -> absl::StatusOr<int64_t> {
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
        CountReply reply;
        const grpc::Status status =
            echo_stubs[0]->Count(&context, CountRequest(), &reply);
        if (!status.ok()) return CallError("Count", status);
        return reply.idle_calls();
      };
      break;
    case HeldKind::kTaskdStream:
      start = [&](int index, grpc::CompletionQueue* cq) {
        auto call = std::make_unique<HeldStream<v1::TaskEvent>>();
        call->reader = task_stubs[index]->PrepareAsyncStream(
            &call->context, stream_request, cq);
        call->reader->StartCall(call.get());
        call->reader->Finish(&call->status, call.get());
        return std::unique_ptr<HeldCall>(std::move(call));
      };
      open = GaugeCounter(*server, "taskd_streams");
      break;
    case HeldKind::kTaskdAwait:
      start = [&](int index, grpc::CompletionQueue* cq) {
        auto call = std::make_unique<HeldUnary<v1::AwaitResponse>>();
        v1::AwaitRequest request;
        request.add_ids(ids[static_cast<size_t>(next_id++)]);
        call->reader =
            task_stubs[index]->PrepareAsyncAwait(&call->context, request, cq);
        call->reader->StartCall();
        call->reader->Finish(&call->response, &call->status, call.get());
        return std::unique_ptr<HeldCall>(std::move(call));
      };
      open = GaugeCounter(*server, "taskd_awaits");
      break;
  }
  const int tags_per_call = kind == HeldKind::kTaskdAwait
                                ? HeldUnary<v1::AwaitResponse>::kTags
                                : HeldStream<EchoReply>::kTags;

  absl::StatusOr<int64_t> open_before = open();
  if (!open_before.ok()) return open_before.status();
  absl::StatusOr<int64_t> rss_before = ProcessRssBytes(server->pid());
  if (!rss_before.ok()) return rss_before.status();
  figures.rss_before = *rss_before;
  const CpuMeter cpu(server->pid());

  // Heap-allocated so that a failure to drain it can leave it (and the
  // calls) alive rather than destroy them with completions pending.
  auto cq = std::make_unique<grpc::CompletionQueue>();
  std::vector<std::unique_ptr<HeldCall>> held;
  held.reserve(static_cast<size_t>(calls));
  const absl::Time begin = absl::Now();
  const absl::Time deadline = begin + limit;
  for (int64_t i = 0; i < calls && absl::Now() < deadline; ++i) {
    held.push_back(start(static_cast<int>(i % channels), cq.get()));
  }
  figures.start_seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  const int64_t target = *open_before + static_cast<int64_t>(held.size());
  while (true) {
    absl::StatusOr<int64_t> now_open = open();
    if (!now_open.ok()) {
      figures.error = std::string(now_open.status().message());
      break;
    }
    figures.held = *now_open - *open_before;
    if (*now_open >= target) {
      figures.register_seconds = absl::ToDoubleSeconds(absl::Now() - begin);
      figures.complete = figures.held >= calls;
      break;
    }
    if (absl::Now() >= deadline) {
      figures.error =
          absl::StrCat("the server held ", figures.held, " of ", calls,
                       " calls after ", absl::FormatDuration(limit));
      break;
    }
    absl::SleepFor(kCountInterval);  // see kCountInterval
  }
  figures.server_cpu_us_per_call = cpu.ServerMicrosPerTask(figures.held);
  figures.others_cpu_share = cpu.OthersShare();
  absl::StatusOr<int64_t> rss_after = ProcessRssBytes(server->pid());
  if (rss_after.ok()) {
    figures.rss_after = *rss_after;
    if (figures.held > 0) {
      figures.rss_bytes_per_call =
          static_cast<double>(figures.rss_after - figures.rss_before) /
          static_cast<double>(figures.held);
    }
  }
  if (!figures.complete && figures.error.empty()) {
    figures.error =
        absl::StrCat("the server held ", figures.held, " of ", calls, " calls");
  }

  // Cancelled calls complete on the client at once, whatever the server does.
  for (const std::unique_ptr<HeldCall>& call : held) call->context.TryCancel();
  int64_t tags = static_cast<int64_t>(held.size()) * tags_per_call;
  const absl::Time drain_deadline = absl::Now() + kDrainLimit;
  void* tag = nullptr;
  bool ok = false;
  while (tags > 0 &&
         cq->AsyncNext(&tag, &ok, absl::ToChronoTime(drain_deadline)) ==
             grpc::CompletionQueue::GOT_EVENT) {
    --tags;
  }
  if (tags > 0) {
    // gRPC still holds tags of these calls: leak them and their queue.
    for (std::unique_ptr<HeldCall>& call : held) call.release();
    cq.release();
    return absl::InternalError(
        absl::StrCat(tags, " completions of cancelled calls missing after ",
                     absl::FormatDuration(kDrainLimit)));
  }
  ShutdownAndDrain(*cq);
  return figures;
}

}  // namespace taskd::bench
