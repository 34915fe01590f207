// TaskdServer: the taskd gRPC server around an Engine.
//
//   TaskdServer server(options);
//   if (auto s = server.Start(); !s.ok()) { ... }
//   server.port();        // the bound port (useful with "127.0.0.1:0")
//   server.Shutdown();    // ordered as DESIGN.md says; idempotent
//
// One completion queue per polling thread. Start/Shutdown must be called
// from one thread; the rest is thread-safe.
#ifndef TASKD_SERVICES_SERVER_H_
#define TASKD_SERVICES_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "scheduler/engine.h"
#include "scheduler/journal.h"
#include "scheduler/schedule_table.h"
#include "scheduler/storage/storage.h"
#include "services/auth/server_security.h"
#include "services/call.h"
#include "services/health_port.h"
#include "services/grpc_std/health_service.h"
#include "services/grpc_std/reflection_service.h"
#include "services/metrics/exporter.h"
#include "services/schedule_service.h"
#include "services/queue_service.h"
#include "services/task_service.h"
#include "services/worker_service.h"

namespace taskd {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  int threads = 0;  // completion-queue threads; 0: hardware threads / 2
  absl::Duration shutdown_grace = absl::Seconds(5);
  EngineOptions engine;
  Clock* clock = nullptr;  // nullptr: real time
  // "sync" (fsync before acknowledging), "async" or "memory".
  std::string durability = "memory";
  std::string data_dir = "./taskd-data";
  // How often deleted records' space is reclaimed.
  absl::Duration compact_interval = absl::Minutes(10);
  // Messages one worker may have waiting unsent before it is assigned
  // nothing more (a worker that does not read its stream).
  size_t worker_outbox_bytes = 64 << 20;
  // Periodic schedules (ScheduleService).
  ScheduleTableOptions schedules;
  // Called once if a storage write fails; the default prints the error and
  // exits, so that a restart recovers from the last durable state.
  std::function<void(const absl::Status&)> on_storage_failure;
  // Prometheus /metrics on its own HTTP port ("host:port", port 0 picks
  // one); empty turns metrics off entirely (no counting either).
  std::string metrics_listen;
  // Queues with their own `queue` label; the rest report as "_other".
  int metrics_max_queues = 100;
  // A second, plaintext port serving only grpc.health.v1 ("host:port"; empty:
  // none), for Kubernetes gRPC probes, which cannot speak TLS or send
  // tokens. Its status follows the main port's.
  std::string health_listen;
  // TLS/mTLS, bearer tokens and the listen policy (auth/server_security.h).
  // Default: plain, which Start() accepts on a loopback address only.
  auth::SecurityOptions security;
};

class TaskdServer final {
 public:
  explicit TaskdServer(ServerOptions options);
  ~TaskdServer();  // calls Shutdown()
  TaskdServer(const TaskdServer&) = delete;
  TaskdServer& operator=(const TaskdServer&) = delete;

  // Opens the store and recovers from it, binds, starts the CQ threads and
  // the engine's timers, then reports SERVING. Storage errors (directory in
  // use by another process, corruption, ...) and a port that cannot be
  // bound are errors with a clear message (no silent fallback).
  absl::Status Start();

  // Health NOT_SERVING -> pending Awaits/Streams answered UNAVAILABLE and
  // Work streams closed -> no new calls or connections -> the calls in
  // flight finish, for at most shutdown_grace -> connections get up to
  // 250 ms to flush and close, then the rest are closed -> CQ shutdown ->
  // drain -> engine timers stopped. Only unary calls in flight can make it
  // wait for the grace; open streams and idle clients do not.
  void Shutdown();

  int port() const { return port_; }
  // Valid after Start().
  Engine& engine() { return *engine_; }
  // Valid after Start().
  ScheduleTable& schedules() { return *schedule_table_; }
  const RecoveryStats& recovery() const { return recovery_; }
  absl::Duration recovery_time() const { return recovery_time_; }
  // The bound metrics port; 0 when metrics are off. Valid after Start().
  int metrics_port() const {
    return metrics_endpoint_ ? metrics_endpoint_->port() : 0;
  }
  // The bound health-only port; 0 without one. Valid after Start().
  int health_port() const { return health_port_ ? health_port_->port() : 0; }
  // How the port is protected, e.g. "TLS, tokens from F". Valid after Start().
  const std::string& security_summary() const { return security_.summary; }
  // What --insecure exposes, for the start-up log. Valid after Start().
  const std::vector<std::string>& security_warnings() const {
    return security_.warnings;
  }
  // Re-reads the token file (SIGHUP). FAILED_PRECONDITION without one; on a
  // parse error the previous tokens stay in force.
  absl::Status ReloadTokens();

 private:
  absl::Status OpenAndRecover();
  // Registers the served methods and starts the HTTP endpoint.
  absl::Status StartMetrics();
  // Starts the health-only server, if asked for.
  absl::Status StartHealthPort();
  // Stops the gRPC server (see Shutdown) while the CQ threads still poll.
  void StopServing();

  const ServerOptions options_;
  auth::ServerSecurity security_;
  // Metrics (nullptr when off); outlives the engine and journal it counts.
  std::shared_ptr<metrics::TaskdMetrics> metrics_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Engine> engine_;
  RecoveryStats recovery_;
  absl::Duration recovery_time_;
  absl::Notification stop_compaction_;
  std::thread compaction_;
  // What every call handler shares; outlives them all (they are gone once
  // the CQs are drained).
  std::unique_ptr<CallSites> sites_;
  v1::TaskService::AsyncService task_service_;
  v1::WorkerService::AsyncService worker_service_;
  std::unique_ptr<TaskServiceHandlers> task_handlers_;
  v1::QueueService::AsyncService queue_service_;
  std::unique_ptr<QueueServiceHandlers> queue_handlers_;
  std::unique_ptr<WorkerServiceHandlers> worker_handlers_;
  // ScheduleService: created after (and destroyed before) engine_.
  std::unique_ptr<ScheduleTable> schedule_table_;
  v1::ScheduleService::AsyncService schedule_service_;
  std::unique_ptr<ScheduleServiceHandlers> schedule_handlers_;
  // grpc.health.v1 and reflection, on the same completion queues.
  HealthServiceHandlers::Service health_service_;
  std::unique_ptr<HealthServiceHandlers> health_handlers_;
  ReflectionServiceHandlers::Service reflection_service_;
  std::unique_ptr<ReflectionServiceHandlers> reflection_handlers_;
  // Declared before server_ so that the server is destroyed first.
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HealthPort> health_port_;  // options_.health_listen
  std::vector<std::thread> threads_;
  int port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  // Last: destroyed first, so no scrape reads the engine after it is gone.
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint_;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_SERVER_H_
