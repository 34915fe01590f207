// WorkerService.Work on the completion-queue API: one bidirectional stream
// per worker process. The handler is the engine's WorkerSink for that worker.
//
// WorkerServiceHandlers is thread-safe; it also tracks live Work streams so
// that shutdown can end them with UNAVAILABLE instead of waiting for them.
#ifndef TASKD_SERVICES_WORKER_SERVICE_H_
#define TASKD_SERVICES_WORKER_SERVICE_H_

#include <atomic>
#include <cstdint>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "scheduler/engine.h"
#include "services/call.h"

namespace taskd {

class WorkCall;

class WorkerServiceHandlers final {
 public:
  // `outbox_bytes`: messages one worker may have waiting unsent before the
  // dispatcher stops assigning it more (a worker that does not read).
  // `engine`, `service` and `sites` must outlive every armed handler.
  WorkerServiceHandlers(Engine* engine,
                        v1::WorkerService::AsyncService* service,
                        CallSites* sites, size_t outbox_bytes = 64 << 20)
      : engine_(engine),
        service_(service),
        sites_(sites),
        outbox_bytes_(outbox_bytes) {}

  // Posts a waiting Work handler on `cq`.
  void Arm(grpc::ServerCompletionQueue* cq);

  // Ends every live Work stream with UNAVAILABLE (server shutting down).
  void CloseAll() ABSL_LOCKS_EXCLUDED(mu_);

  Engine* engine() const { return engine_; }
  size_t outbox_bytes() const { return outbox_bytes_; }
  // Bytes waiting unsent to all workers now (for the metric).
  size_t queued_bytes() const {
    const int64_t n = queued_bytes_.load();
    return n > 0 ? static_cast<size_t>(n) : 0;
  }
  void AddQueuedBytes(int64_t delta) { queued_bytes_.fetch_add(delta); }
  v1::WorkerService::AsyncService* service() const { return service_; }

  // Registry of live streams, used by WorkCall.
  void Register(WorkCall* call) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(WorkCall* call) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Engine* const engine_;
  v1::WorkerService::AsyncService* const service_;
  CallSites* const sites_;
  const size_t outbox_bytes_;
  std::atomic<int64_t> queued_bytes_{0};

  absl::Mutex mu_;
  absl::flat_hash_set<WorkCall*> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace taskd

#endif  // TASKD_SERVICES_WORKER_SERVICE_H_
