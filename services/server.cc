#include "services/server.h"


#include <algorithm>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scheduler/storage/open_storage.h"
#include <grpc/grpc.h>

#include "services/call.h"

namespace taskd {
namespace {

// How long shutdown lets connections close by themselves once no call is
// left (see StopServing): ample for a client that reads to take its last
// answer and the GOAWAY, short enough for a prompt exit.
constexpr absl::Duration kFlushWait = absl::Milliseconds(250);

gpr_timespec ToGprTimespec(absl::Time t) {
  const timespec ts = absl::ToTimespec(t);
  gpr_timespec out;
  out.tv_sec = ts.tv_sec;
  out.tv_nsec = static_cast<int32_t>(ts.tv_nsec);
  out.clock_type = GPR_CLOCK_REALTIME;
  return out;
}

}  // namespace

TaskdServer::TaskdServer(ServerOptions options)
    : options_(std::move(options)) {}

TaskdServer::~TaskdServer() {
  Shutdown();
  if (security_.processor) auth::SetCallerSource(nullptr);  // failed Start
  // Also after a failed Start: no background work may outlive the engine.
  if (compaction_.joinable()) {
    stop_compaction_.Notify();
    compaction_.join();
  }
  if (journal_) journal_->Stop();
}

absl::Status TaskdServer::OpenAndRecover() {
  auto durability = ParseDurability(options_.durability);
  if (!durability.ok()) return durability.status();
  EngineOptions engine_options = options_.engine;
  Clock* clock = options_.clock ? options_.clock : RealClock::Get();
  if (!options_.metrics_listen.empty()) {
    if (options_.metrics_max_queues < 1) {
      return absl::InvalidArgumentError(
          "metrics_max_queues: must be at least 1");
    }
    metrics_ = std::make_shared<metrics::TaskdMetrics>(
        options_.metrics_max_queues, clock);
    engine_options.metrics = metrics_->queues();
  }
  if (*durability != Durability::kMemory) {
    auto storage = OpenStorage(*durability, options_.data_dir);
    if (!storage.ok()) return storage.status();
    storage_ = *std::move(storage);
    auto on_failure = options_.on_storage_failure;
    if (!on_failure) {
      on_failure = [](const absl::Status& status) {
        std::fprintf(stderr,
                     "taskd: FATAL: %s\ntaskd: stopping so that a restart "
                     "recovers from the last durable state\n",
                     status.ToString().c_str());
        std::_Exit(1);
      };
    }
    journal_ = std::make_unique<Journal>(
        storage_.get(), std::move(on_failure),
        metrics_ ? metrics_->journal() : nullptr);
    engine_options.journal = journal_.get();
  }
  engine_ = std::make_unique<Engine>(engine_options, clock);
  if (storage_ != nullptr) {
    absl::Time start = absl::Now();
    auto stats = engine_->Recover(*storage_);
    if (!stats.ok()) {
      return absl::Status(stats.status().code(),
                          absl::StrCat("recovery from ", options_.data_dir,
                                       " failed: ", stats.status().message()));
    }
    recovery_ = *stats;
    recovery_time_ = absl::Now() - start;
    compaction_ = std::thread([this] {
      while (!stop_compaction_.WaitForNotificationWithTimeout(
          options_.compact_interval)) {
        if (auto s = storage_->Compact(); !s.ok()) {
          std::fprintf(stderr, "taskd: compaction failed: %s\n",
                       s.ToString().c_str());
        }
      }
    });
  }
  // ScheduleService: the table recovers after the engine, whose tasks its
  // recovered firings deduplicate against.
  schedule_table_ =
      std::make_unique<ScheduleTable>(options_.schedules, engine_.get());
  if (storage_ != nullptr) {
    if (auto s = schedule_table_->Recover(*storage_); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("recovery of schedules from ",
                                                 options_.data_dir,
                                                 " failed: ", s.message()));
    }
  }
  sites_ = std::make_unique<CallSites>(metrics_ ? metrics_->grpc() : nullptr);
  schedule_handlers_ = std::make_unique<ScheduleServiceHandlers>(
      schedule_table_.get(), &schedule_service_, sites_.get());
  task_handlers_ = std::make_unique<TaskServiceHandlers>(
      engine_.get(), &task_service_, sites_.get());
  queue_handlers_ = std::make_unique<QueueServiceHandlers>(
      engine_.get(), &queue_service_, sites_.get());
  worker_handlers_ = std::make_unique<WorkerServiceHandlers>(
      engine_.get(), &worker_service_, sites_.get(),
      options_.worker_outbox_bytes);
  return absl::OkStatus();
}

absl::Status TaskdServer::StartMetrics() {
  if (metrics_ == nullptr) return absl::OkStatus();
  metrics::GrpcMetrics* grpc_metrics = metrics_->grpc();
  for (const char* service : {v1::TaskService::service_full_name(),
                              v1::WorkerService::service_full_name(),
                              v1::QueueService::service_full_name(),
                              v1::ScheduleService::service_full_name()}) {
    if (auto s = grpc_metrics->AddService(service); !s.ok()) return s;
  }
  grpc_metrics->AddStandardServices();
  metrics::ScrapeSources sources;
  sources.engine = engine_.get();
  sources.schedules = schedule_table_.get();
  if (storage_ != nullptr) sources.data_dir = options_.data_dir;
  sources.recovered_tasks = recovery_.tasks;
  sources.quarantined_records = recovery_.quarantined;
  sources.worker_outbox_bytes = [this] {
    return worker_handlers_ ? worker_handlers_->queued_bytes() : 0;
  };
  sources.recovery_time = recovery_time_;
  metrics_->SetSources(std::move(sources));
  auto endpoint =
      metrics::MetricsEndpoint::Start(options_.metrics_listen, metrics_);
  if (!endpoint.ok()) return endpoint.status();
  metrics_endpoint_ = *std::move(endpoint);
  return absl::OkStatus();
}

absl::Status TaskdServer::StartHealthPort() {
  if (options_.health_listen.empty()) return absl::OkStatus();
  auto port = HealthPort::Start(options_.health_listen);
  if (!port.ok()) return port.status();
  health_port_ = *std::move(port);
  return absl::OkStatus();
}

absl::Status TaskdServer::ReloadTokens() {
  if (security_.processor == nullptr) {
    return absl::FailedPreconditionError("no --auth-tokens file to reload");
  }
  return security_.processor->Reload();
}

absl::Status TaskdServer::Start() {
  // Before any storage is opened: a refused configuration changes nothing.
  auth::SecurityOptions security_options = options_.security;
  // metrics_ is made below, before the port serves any call.
  security_options.on_denied = [this, also = options_.security.on_denied](
                                   absl::string_view reason) {
    if (metrics_ != nullptr) metrics_->auth()->OnDenied(reason);
    if (also) also(reason);
  };
  auto security = auth::MakeServerSecurity(options_.listen, security_options);
  if (!security.ok()) return security.status();
  security_ = *std::move(security);
  // Handlers identify scoped callers through the token table (caller.h);
  // registered before the port opens, so no call finds it missing.
  if (security_.processor) auth::SetCallerSource(security_.processor);
  if (auto s = OpenAndRecover(); !s.ok()) return s;
  if (auto s = StartMetrics(); !s.ok()) return s;
  // Health and reflection are served on the CQs below: gRPC's default
  // health service and reflection plugin would each start polling threads
  // that compete with the CQ threads for every call.
  const std::vector<std::string> services = {
      v1::TaskService::service_full_name(),
      v1::WorkerService::service_full_name(),
      v1::QueueService::service_full_name(),
      v1::ScheduleService::service_full_name(),
      grpc::health::v1::Health::service_full_name(),
      grpc::reflection::v1alpha::ServerReflection::service_full_name()};
  health_handlers_ = std::make_unique<HealthServiceHandlers>(
      &health_service_, services, sites_.get());
  reflection_handlers_ = std::make_unique<ReflectionServiceHandlers>(
      &reflection_service_, services, sites_.get());

  grpc::ServerBuilder builder;
  // A port clash must fail loudly instead of sharing the port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.listen, security_.credentials, &port_);
  builder.RegisterService(&task_service_);
  builder.RegisterService(&worker_service_);
  builder.RegisterService(&queue_service_);
  builder.RegisterService(&schedule_service_);
  builder.RegisterService(&health_service_);
  builder.RegisterService(&reflection_service_);
  // Room for a payload (or a result) of the largest size plus the rest of
  // the message; computed in 64 bits and capped, so that a limit of 1 GiB
  // or more cannot overflow into a negative (unlimited) size.
  const int64_t receive_limit = std::min<int64_t>(
      options_.engine.limits.max_payload_bytes * 2 + (1 << 20),
      std::numeric_limits<int>::max());
  builder.SetMaxReceiveMessageSize(static_cast<int>(receive_limit));
  // By default one completion-queue thread per two hardware threads: each
  // more thread polling the same connections costs a hand-off (a futex wake
  // and a context switch) per call. Measured on 2 cores (taskd_bench, memory
  // mode, 64 in flight): one thread took 18.5-20 us of CPU per submit and
  // served 51-53K/s; two took 25.5-26.5 us and served 22-35K/s.
  int threads = options_.threads > 0
                    ? options_.threads
                    : std::max(1u, std::thread::hardware_concurrency() / 2);
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
  if (auto s = StartHealthPort(); !s.ok()) {
    server_->Shutdown();
    for (auto& cq : cqs_) cq->Shutdown();
    for (auto& cq : cqs_) {
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) {
      }
    }
    return s;
  }
  started_ = true;
  for (auto& cq : cqs_) {
    task_handlers_->Arm(cq.get());
    worker_handlers_->Arm(cq.get());
    queue_handlers_->Arm(cq.get());
    schedule_handlers_->Arm(cq.get());
    health_handlers_->Arm(cq.get());
    reflection_handlers_->Arm(cq.get());
    threads_.emplace_back(RunCompletionQueue, cq.get());
  }
  schedule_table_->Start();  // ScheduleService: firings from here on
  engine_->StartTimerThread();
  health_handlers_->SetServing(true);
  if (health_port_) health_port_->SetServing(true);
  return absl::OkStatus();
}

void TaskdServer::StopServing() {
  const absl::Time grace_end = absl::Now() + options_.shutdown_grace;
  // No new calls or connections, GOAWAY to every client; the handlers that
  // wait for a call get it back (ok = false) and go. (gRPC's C API: the C++
  // one has no way to end the wait below before the grace is over.)
  grpc_server* server = server_->c_server();
  grpc_completion_queue* notified =
      grpc_completion_queue_create_for_next(nullptr);
  grpc_server_shutdown_and_notify(server, notified, nullptr);
  // Left: the calls in flight, and the streams ended above finishing.
  const bool drained = sites_->live().WaitNone(grace_end);
  // A connection closes once its client has answered the GOAWAY and the
  // last answers on it are written. An idle client (no call of its own)
  // answers late: it reads its socket only every few seconds, or never if
  // it is stuck, and gRPC would wait for it until the grace ends. So give
  // the connections a moment to flush and close, then close the rest.
  grpc_completion_queue_next(
      notified,
      ToGprTimespec(std::min(grace_end, absl::Now() + kFlushWait)),
      nullptr);
  grpc_server_cancel_all_calls(server);  // after the grace: calls, too
  server_->Shutdown();  // returns once the connections are gone
  grpc_completion_queue_shutdown(notified);
  while (grpc_completion_queue_next(notified,
                                    gpr_inf_future(GPR_CLOCK_REALTIME),
                                    nullptr)
             .type != GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(notified);
  // Handlers of cancelled calls may start one last operation: let the CQ
  // threads finish them first (an operation after CQ shutdown is a bug).
  if (!drained) sites_->live().WaitNone(absl::Now() + absl::Seconds(2));
}

void TaskdServer::Shutdown() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  health_handlers_->Shutdown();      // NOT_SERVING; Watch streams end
  if (health_port_) health_port_->SetServing(false);
  reflection_handlers_->Shutdown();
  schedule_table_->Stop();        // ScheduleService: no more firings
  engine_->Shutdown();            // Awaits and Streams: UNAVAILABLE
  worker_handlers_->CloseAll();   // Work streams: UNAVAILABLE
  StopServing();
  // Commits what is queued and answers the calls still waiting for it while
  // the CQs are polled (a Finish after CQ shutdown would be a bug).
  if (journal_) journal_->Stop();
  health_port_.reset();
  for (auto& cq : cqs_) cq->Shutdown();
  for (auto& t : threads_) t.join();  // each drains its queue
  threads_.clear();
  engine_->StopTimerThread();
  if (compaction_.joinable()) {
    stop_compaction_.Notify();
    compaction_.join();
  }
  if (security_.processor) {
    auth::SetCallerSource(nullptr);
    security_.processor->StopWatching();
  }
  metrics_endpoint_.reset();  // before anything it reads goes
  if (storage_) {
    if (auto s = storage_->Close(); !s.ok()) {
      std::fprintf(stderr, "taskd: closing storage: %s\n", s.ToString().c_str());
    }
  }
}

}  // namespace taskd
