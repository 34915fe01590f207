// soak_worker: a worker process of the soak test (tests/soak/soak_test.cc)
// built on the C++ worker SDK (//clients/cpp:worker). The test SIGKILLs and
// restarts it at random, and SIGKILLs the server under it; it reconnects
// whenever its work stream ends, until --max_lifetime has passed.
//
// Task types (queue --queue):
//   sdk.echo   succeeds at once.
//   sdk.slow   runs for the payload's number of milliseconds, reporting
//              progress every 100 ms; stops when cancelled.
//   sdk.flaky  fails its first attempt with a retryable error when the
//              task id's hash is even, else succeeds.
// A result names the task, the attempt, this process and a random number,
// so that no two executions produce the same result: a task run again
// after a client saw its result shows up as a changed result.
//
// Prints "soak_worker: ... serving on <server> (port N)" to stderr at start
// (the line tests/taskd_process.h waits for).
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>


#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clients/cpp/task_context.h"
#include "clients/cpp/worker.h"
#include "tests/soak/soak_channel.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "taskd address");
ABSL_FLAG(std::string, queue, "soak-sdk", "queue served");
ABSL_FLAG(int, concurrency, 4, "tasks run at once");
ABSL_FLAG(std::string, worker_id, "", "worker id (empty: the SDK's default)");
ABSL_FLAG(absl::Duration, max_lifetime, absl::Hours(2),
          "exit after this long, even if nobody kills this process");

namespace taskd::soak {
namespace {

// Pause between two work streams: pacing while the server restarts.
constexpr absl::Duration kReconnectPause = absl::Milliseconds(200);
constexpr absl::Duration kProgressPeriod = absl::Milliseconds(100);
constexpr int64_t kMaxSlowMs = 60'000;

// A random number per result, from a generator shared by the pool threads.
uint64_t Nonce() {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937_64* rng = new std::mt19937_64(std::random_device{}());
  absl::MutexLock lock(&mu);
  return (*rng)();
}

std::string Result(const TaskContext& ctx) {
  return absl::StrCat("sdk/", ctx.id(), "/", ctx.attempt(), "/", getpid(), "/",
                      Nonce());
}

absl::StatusOr<std::string> Echo(TaskContext& ctx) { return Result(ctx); }

absl::StatusOr<std::string> Slow(TaskContext& ctx) {
  int64_t ms = 0;
  if (!absl::SimpleAtoi(ctx.payload(), &ms) || ms < 0 || ms > kMaxSlowMs) {
    return absl::InvalidArgumentError("payload: want milliseconds");
  }
  const absl::Time end = absl::Now() + absl::Milliseconds(ms);
  for (int step = 0; absl::Now() < end; ++step) {
    ctx.ReportProgress(std::min(99, step), "working").IgnoreError();
    const absl::Duration wait = std::min(kProgressPeriod, end - absl::Now());
    if (ctx.WaitCancelled(wait)) return absl::CancelledError("cancelled");
  }
  return Result(ctx);
}

absl::StatusOr<std::string> Flaky(TaskContext& ctx) {
  if (ctx.attempt() == 1 && std::hash<std::string>()(ctx.id()) % 2 == 0) {
    return absl::UnavailableError("flaky: first attempt fails");
  }
  return Result(ctx);
}

int Main() {
  const std::string server = absl::GetFlag(FLAGS_server);
  const absl::Time end = absl::Now() + absl::GetFlag(FLAGS_max_lifetime);
  std::signal(SIGPIPE, SIG_IGN);
  const size_t colon = server.rfind(':');
  std::fprintf(stderr, "soak_worker: %s serving on %s (port %s)\n",
               absl::GetFlag(FLAGS_worker_id).c_str(), server.c_str(),
               colon == std::string::npos ? "0"
                                          : server.substr(colon + 1).c_str());
  std::fflush(stderr);
  for (int stream = 0; absl::Now() < end; ++stream) {
    Worker::Options options;
    options.channel = NewSoakChannel(server);
    options.worker_id = absl::GetFlag(FLAGS_worker_id);
    options.queues = {absl::GetFlag(FLAGS_queue)};
    options.concurrency = absl::GetFlag(FLAGS_concurrency);
    options.heartbeat_interval = absl::Seconds(1);
    options.shutdown_timeout = absl::Seconds(2);
    Worker worker(options);
    for (const auto& [type, handler] :
         {std::pair<const char*, Worker::Handler>{"sdk.echo", Echo},
          {"sdk.slow", Slow},
          {"sdk.flaky", Flaky}}) {
      if (absl::Status s = worker.RegisterHandler(type, handler); !s.ok()) {
        std::fprintf(stderr, "soak_worker: %s\n", s.ToString().c_str());
        return 2;
      }
    }
    const absl::Status status = worker.Run();
    std::fprintf(stderr, "soak_worker: work stream %d ended: %s\n", stream,
                 status.ToString().c_str());
    absl::SleepFor(kReconnectPause);
  }
  std::fprintf(stderr, "soak_worker: lifetime over\n");
  return 0;
}

}  // namespace
}  // namespace taskd::soak

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return taskd::soak::Main();
}
