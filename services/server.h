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

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "scheduler/engine.h"
#include "services/task_service.h"
#include "services/worker_service.h"

namespace taskd {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";
  int threads = 0;  // completion-queue threads; 0: hardware threads
  absl::Duration shutdown_grace = absl::Seconds(5);
  EngineOptions engine;
  Clock* clock = nullptr;  // nullptr: real time
};

class TaskdServer final {
 public:
  explicit TaskdServer(ServerOptions options);
  ~TaskdServer();  // calls Shutdown()
  TaskdServer(const TaskdServer&) = delete;
  TaskdServer& operator=(const TaskdServer&) = delete;

  // Binds, starts the CQ threads and the engine's timers, then reports
  // SERVING. A port that cannot be bound is an error (no silent fallback).
  absl::Status Start();

  // Health NOT_SERVING -> pending Awaits/Streams answered UNAVAILABLE and
  // Work streams closed -> Server::Shutdown(grace) while the CQ threads
  // still poll -> CQ shutdown -> drain -> engine timers stopped.
  void Shutdown();

  int port() const { return port_; }
  Engine& engine() { return *engine_; }

 private:
  const ServerOptions options_;
  std::unique_ptr<Engine> engine_;
  v1::TaskService::AsyncService task_service_;
  v1::WorkerService::AsyncService worker_service_;
  std::unique_ptr<TaskServiceHandlers> task_handlers_;
  std::unique_ptr<WorkerServiceHandlers> worker_handlers_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_SERVER_H_
