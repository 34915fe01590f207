// taskd: the task scheduler server.
//
//   taskd --listen=127.0.0.1:50051 --threads=2
//
// SIGTERM or SIGINT shuts down gracefully (see TaskdServer::Shutdown).
#include <signal.h>

#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "address to serve on");
ABSL_FLAG(int, threads, 0,
          "completion-queue threads (0: one per hardware thread)");
ABSL_FLAG(int64_t, max_payload_bytes, 1 << 20,
          "largest task payload (and result) in bytes");
ABSL_FLAG(absl::Duration, result_ttl, absl::Hours(24),
          "default retention of finished tasks");
ABSL_FLAG(absl::Duration, heartbeat_timeout, absl::Seconds(30),
          "default lease: a worker silent this long loses its tasks");
ABSL_FLAG(int64_t, max_tasks, 2'000'000,
          "tasks held at once (any state); submits beyond are refused");
ABSL_FLAG(int64_t, event_log_capacity, 1 << 16,
          "events retained for Stream replay");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "how long shutdown waits for calls in flight");
ABSL_FLAG(std::string, durability, "memory",
          "memory (this version keeps tasks in memory only)");
ABSL_FLAG(std::string, data_dir, "./taskd-data",
          "data directory (used by durable modes)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "taskd: task scheduler server (gRPC API taskd.v1)");
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  if (absl::GetFlag(FLAGS_durability) != "memory") {
    std::fprintf(stderr,
                 "taskd: --durability=%s is not available in this version; "
                 "use --durability=memory\n",
                 absl::GetFlag(FLAGS_durability).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_max_payload_bytes) <= 0 ||
      absl::GetFlag(FLAGS_max_tasks) <= 0 ||
      absl::GetFlag(FLAGS_event_log_capacity) <= 0 ||
      absl::GetFlag(FLAGS_threads) < 0) {
    std::fprintf(stderr,
                 "taskd: --max_payload_bytes, --max_tasks and "
                 "--event_log_capacity must be positive, --threads >= 0\n");
    return 2;
  }

  // Signals are taken synchronously by the main thread; every other thread
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  taskd::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.engine.limits.max_payload_bytes =
      absl::GetFlag(FLAGS_max_payload_bytes);
  options.engine.default_result_ttl = absl::GetFlag(FLAGS_result_ttl);
  options.engine.default_heartbeat_timeout =
      absl::GetFlag(FLAGS_heartbeat_timeout);
  options.engine.max_tasks = absl::GetFlag(FLAGS_max_tasks);
  options.engine.event_log_capacity = absl::GetFlag(FLAGS_event_log_capacity);

  taskd::TaskdServer server(options);
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "taskd: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "taskd: serving on %s (port %d)\n",
               options.listen.c_str(), server.port());

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "taskd: %s received, shutting down\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server.Shutdown();
  std::fprintf(stderr, "taskd: stopped\n");
  return 0;
}
