#include "tests/bench/metrics_overhead.h"

#include <memory>

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>

#include "absl/status/status.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "tests/bench/load.h"
#include "tests/bench/proc_stats.h"

namespace taskd::bench {
namespace {

// One of the two servers and what its slices added up to.
struct Side {
  BenchEnv::Server server;
  std::unique_ptr<v1::TaskService::Stub> stub;
  int64_t submits = 0;
  double seconds = 0;      // wall time under load
  double cpu_seconds = 0;  // the server's CPU time under load
};

}  // namespace

absl::StatusOr<MetricsOverhead> CompareMetrics(BenchEnv& env,
                                               absl::string_view mode,
                                               int in_flight, int slices,
                                               absl::Duration slice) {
  const BenchConfig& config = env.config();
  // StartTaskd passes --metrics_listen=127.0.0.1:0; a later flag wins.
  absl::StatusOr<BenchEnv::Server> on = env.StartTaskd(mode);
  if (!on.ok()) return on.status();
  absl::StatusOr<BenchEnv::Server> off =
      env.StartTaskd(mode, {"--metrics_listen="});
  if (!off.ok()) return off.status();
  Side sides[2] = {{*std::move(on)}, {*std::move(off)}};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ConnectChannel(sides[i].server.target(), i);
    if (!channel.ok()) return channel.status();
    sides[i].stub = v1::TaskService::NewStub(*channel);
  }
  v1::SubmitTaskRequest request;
  *request.mutable_task() = BenchSpec(config.payload_bytes);

  MetricsOverhead result;
  for (int i = 0; i < 2 * slices; ++i) {
    // on, off, off, on, on, off, ...: each order equally often.
    Side& side = sides[(i % 4 == 0 || i % 4 == 3) ? 0 : 1];
    v1::TaskService::Stub* stub = side.stub.get();
    LoadShape shape;
    shape.calls = config.tasks;
    shape.in_flight = in_flight;
    shape.time_limit = slice;
    shape.call_timeout = config.call_timeout;
    absl::StatusOr<double> cpu_before = ProcessCpuSeconds(side.server.pid());
    const LoadResult load = RunLoad(
        shape, UnaryStarter<v1::SubmitTaskResponse>(
                   [stub, &request](grpc::ClientContext* context,
                                    grpc::CompletionQueue* cq) {
                     return stub->PrepareAsyncSubmitTask(context, request, cq);
                   },
                   1));
    absl::StatusOr<double> cpu_after = ProcessCpuSeconds(side.server.pid());
    if (!cpu_before.ok() || !cpu_after.ok()) {
      return absl::UnavailableError("cannot read the servers' CPU time");
    }
    side.submits += load.items_ok;
    side.seconds += absl::ToDoubleSeconds(load.elapsed);
    side.cpu_seconds += *cpu_after - *cpu_before;
    result.errors += load.calls_failed;
  }
  result.submits_on = sides[0].submits;
  result.submits_off = sides[1].submits;
  if (sides[0].submits == 0 || sides[1].submits == 0) {
    return absl::UnavailableError("no successful submits");
  }
  result.rate_on = sides[0].submits / sides[0].seconds;
  result.rate_off = sides[1].submits / sides[1].seconds;
  result.cpu_us_on = sides[0].cpu_seconds * 1e6 / sides[0].submits;
  result.cpu_us_off = sides[1].cpu_seconds * 1e6 / sides[1].submits;
  return result;
}

}  // namespace taskd::bench
