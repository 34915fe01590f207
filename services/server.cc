#include "services/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/call.h"

namespace taskd {

TaskdServer::TaskdServer(ServerOptions options)
    : options_(std::move(options)),
      engine_(std::make_unique<Engine>(
          options_.engine,
          options_.clock ? options_.clock : RealClock::Get())),
      task_handlers_(
          std::make_unique<TaskServiceHandlers>(engine_.get(), &task_service_)),
      worker_handlers_(std::make_unique<WorkerServiceHandlers>(
          engine_.get(), &worker_service_)) {}

TaskdServer::~TaskdServer() { Shutdown(); }

absl::Status TaskdServer::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // A port clash must fail loudly instead of sharing the port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(),
                           &port_);
  builder.RegisterService(&task_service_);
  builder.RegisterService(&worker_service_);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(options_.engine.limits.max_payload_bytes) * 2 +
      (1 << 20));
  int threads = options_.threads > 0
                    ? options_.threads
                    : std::max(1u, std::thread::hardware_concurrency());
  for (int i = 0; i < threads; ++i) cqs_.push_back(builder.AddCompletionQueue());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    for (auto& cq : cqs_) cq->Shutdown();
    for (auto& cq : cqs_) {
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) {
      }
    }
    cqs_.clear();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.listen,
        " (address in use, or not a valid host:port)"));
  }
  started_ = true;
  for (auto& cq : cqs_) {
    task_handlers_->Arm(cq.get());
    worker_handlers_->Arm(cq.get());
    threads_.emplace_back(RunCompletionQueue, cq.get());
  }
  engine_->StartTimerThread();
  server_->GetHealthCheckService()->SetServingStatus(true);
  return absl::OkStatus();
}

void TaskdServer::Shutdown() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  engine_->Shutdown();            // Awaits and Streams: UNAVAILABLE
  worker_handlers_->CloseAll();   // Work streams: UNAVAILABLE
  server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
  for (auto& cq : cqs_) cq->Shutdown();
  for (auto& t : threads_) t.join();  // each drains its queue
  threads_.clear();
  engine_->StopTimerThread();
}

}  // namespace taskd
