// What every part of taskd_bench shares: the resolved settings, fresh
// server processes (taskd in a durability mode, or the echo_server null
// baseline) each with a fresh data directory, and client channels that
// each get their own connection.
//
//   BenchEnv env(config);
//   absl::StatusOr<BenchEnv::Server> server = env.StartTaskd("sync");
//   absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
//       ConnectChannel(server->target(), 0);
//   ... load; read server->process->pid() ...
//   // the server is SIGKILLed and its directory removed when `server` goes
//
// Thread-compatible.
#ifndef TASKD_TESTS_BENCH_BENCH_ENV_H_
#define TASKD_TESTS_BENCH_BENCH_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "tests/taskd_process.h"

namespace taskd::bench {

// The benchmark's settings, resolved from the flags of taskd_bench.cc.
struct BenchConfig {
  std::string taskd_bin;  // the taskd under test
  std::string echo_bin;   // echo_server, the null-RPC baseline
  std::string work_dir;   // holds every run's data directory

  int64_t tasks = 20000;        // tasks per throughput run
  int in_flight = 64;           // calls in flight in the "64" shapes
  int batch = 1000;             // tasks per SubmitTasks call
  int worker_concurrency = 50;  // the SDK worker's concurrency
  int64_t round_trips = 5000;   // submit+await round trips per mode
  int repeat = 3;  // runs of each per-call measurement; the median counts
  absl::Duration run_limit = absl::Seconds(60);  // per run
  absl::Duration call_timeout = absl::Seconds(30);
  int payload_bytes = 16;  // payload of every task

  int64_t held = 100000;   // calls held open (held_calls.h)
  int held_channels = 16;  // connections they are spread over
  absl::Duration held_limit = absl::Seconds(120);

  int64_t queued = 1000000;        // tasks of the backlog (backlog.h)
  int64_t dispatch_tasks = 20000;  // taken from its front
  absl::Duration queued_limit = absl::Minutes(10);

  int metrics_slices = 20;  // metrics on/off (metrics_overhead.h)
  absl::Duration metrics_slice = absl::Milliseconds(250);
};

// The queue and task type every task of the benchmark uses.
inline constexpr char kQueue[] = "bench";
inline constexpr char kTaskType[] = "noop";

// A TaskSpec of the benchmark: kQueue, kTaskType, `payload_bytes` of 'x'.
v1::TaskSpec BenchSpec(int payload_bytes);

// A channel to `target` with its own connection (no subchannel shared with
// another `index`), connected or failed within `timeout`.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(
    const std::string& target, int index,
    absl::Duration timeout = absl::Seconds(10));

// "DEADLINE_EXCEEDED: message" for a failed call.
std::string DescribeGrpcError(const grpc::Status& status);

// UNAVAILABLE "<what>: DEADLINE_EXCEEDED: message" for a failed call.
absl::Status CallError(absl::string_view what, const grpc::Status& status);

class BenchEnv {
 public:
  // A server process and the data directory it alone uses. The destructor
  // SIGKILLs the process (a benchmark has no use for a graceful stop) and
  // then removes the directory.
  struct Server {
    Server() = default;
    // The moved-from Server owns nothing (its destructor removes nothing).
    Server(Server&& other) noexcept
        : process(std::move(other.process)),
          data_dir(std::exchange(other.data_dir, std::string())) {}
    Server& operator=(Server&&) = delete;
    ~Server();

    std::string target() const { return process->target(); }
    pid_t pid() const { return process->pid(); }
    // The port of taskd's /metrics, from its log line, which follows the
    // line Start() waits for; waits for it at most `timeout`.
    absl::StatusOr<int> MetricsPort(
        absl::Duration timeout = absl::Seconds(10)) const;

    std::unique_ptr<testing::TaskdProcess> process;
    std::string data_dir;  // empty for the echo server
  };

  explicit BenchEnv(BenchConfig config) : config_(std::move(config)) {}

  const BenchConfig& config() const { return config_; }

  // A fresh taskd in `mode` ("memory", "async", "sync") with a fresh data
  // directory, serving on a free loopback port, metrics on a free port.
  // `extra_flags` are appended to its command line.
  absl::StatusOr<Server> StartTaskd(absl::string_view mode,
                                    std::vector<std::string> extra_flags = {});

  // Starts taskd again on `server`'s data directory, keeping the directory:
  // SIGKILLs `server.process` if it still runs, then starts a new one.
  absl::Status RestartTaskd(absl::string_view mode, Server& server);

  // A fresh echo_server.
  absl::StatusOr<Server> StartEcho();

 private:
  std::string NewDataDir();
  // A taskd serving `data_dir` in `mode` (see StartTaskd), as `name`.
  testing::TaskdProcess::Options TaskdOptions(absl::string_view mode,
                                              const std::string& data_dir,
                                              std::string name) const;
  static absl::StatusOr<std::unique_ptr<testing::TaskdProcess>> Spawn(
      testing::TaskdProcess::Options options);

  const BenchConfig config_;
  int next_dir_ = 0;
};

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_BENCH_ENV_H_
