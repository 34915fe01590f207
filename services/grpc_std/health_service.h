// grpc.health.v1.Health served on taskd's own completion queues: Check for
// probes (Kubernetes' native gRPC probe, grpc_health_probe) and Watch for
// clients that follow the status. gRPC's default health service would start
// its own polling threads that compete with the CQ threads for every call.
//
//   HealthServiceHandlers health(&service, {"taskd.v1.TaskService", ...},
//                                &sites);
//   builder.RegisterService(&service);
//   ... health.Arm(cq) for each CQ, then health.SetServing(true) ...
//   health.Shutdown();   // NOT_SERVING, and every Watch ends
//
// The overall status (service "") and every listed service share one status.
// An unlisted service is NOT_FOUND for Check and SERVICE_UNKNOWN for Watch,
// as the protocol says. Thread-safe.
#ifndef TASKD_SERVICES_GRPC_STD_HEALTH_SERVICE_H_
#define TASKD_SERVICES_GRPC_STD_HEALTH_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "services/call.h"
#include "services/grpc_std/health.grpc.pb.h"

namespace taskd {

class WatchCall;

class HealthServiceHandlers final {
 public:
  using Service = grpc::health::v1::Health::AsyncService;
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // `service` and `sites` must outlive every armed handler.
  HealthServiceHandlers(Service* service, std::vector<std::string> services,
                        CallSites* sites);
  HealthServiceHandlers(const HealthServiceHandlers&) = delete;
  HealthServiceHandlers& operator=(const HealthServiceHandlers&) = delete;

  // Posts a waiting Check and Watch handler on `cq`.
  void Arm(grpc::ServerCompletionQueue* cq);

  // SERVING or NOT_SERVING, for every service; Watches are told.
  void SetServing(bool serving) ABSL_LOCKS_EXCLUDED(mu_);
  // NOT_SERVING, then ends every Watch (OK) and refuses new ones: call
  // before the server shuts down, while the CQs are still polled.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // The status `service` has now (SERVICE_UNKNOWN when not listed).
  Status StatusOf(const std::string& service) const ABSL_LOCKS_EXCLUDED(mu_);
  bool Known(const std::string& service) const {
    return services_.contains(service);
  }

  Service* service() const { return service_; }

  // Watch registry, used by WatchCall. Register is false after Shutdown.
  bool Register(WatchCall* call) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(WatchCall* call) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Status StatusLocked(const std::string& service) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Service* const service_;
  const absl::flat_hash_set<std::string> services_;  // "" included
  CallSites* const sites_;

  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<WatchCall*> watches_ ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // changes of serving_
};

}  // namespace taskd

#endif  // TASKD_SERVICES_GRPC_STD_HEALTH_SERVICE_H_
