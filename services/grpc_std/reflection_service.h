// grpc.reflection.v1alpha.ServerReflection served on taskd's own completion
// queues, from the descriptors compiled into the binary: stock tools can
// list the services and fetch every .proto they use (with dependencies).
// gRPC's own reflection plugin runs a synchronous service with its own
// polling threads, which compete with the CQ threads for every call.
//
//   ReflectionServiceHandlers reflection(&service, {"taskd.v1.TaskService"},
//                                        &sites);
//   builder.RegisterService(&service);
//   reflection.Arm(cq);                 // for each CQ
//   reflection.Shutdown();              // ends open streams
//
// Thread-safe.
#ifndef TASKD_SERVICES_GRPC_STD_REFLECTION_SERVICE_H_
#define TASKD_SERVICES_GRPC_STD_REFLECTION_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "services/call.h"
#include "services/grpc_std/reflection.grpc.pb.h"

namespace taskd {

class ReflectionCall;

class ReflectionServiceHandlers final {
 public:
  using Service = grpc::reflection::v1alpha::ServerReflection::AsyncService;

  // `services`: the full names list_services answers. `service` and `sites`
  // must outlive every armed handler.
  ReflectionServiceHandlers(Service* service, std::vector<std::string> services,
                            CallSites* sites)
      : service_(service), services_(std::move(services)), sites_(sites) {}
  ReflectionServiceHandlers(const ReflectionServiceHandlers&) = delete;
  ReflectionServiceHandlers& operator=(const ReflectionServiceHandlers&) =
      delete;

  void Arm(grpc::ServerCompletionQueue* cq);
  // Ends every open stream (UNAVAILABLE) and refuses new ones.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // The answer to one request. Pure: reads the generated descriptor pool.
  grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& request) const;

  Service* service() const { return service_; }
  bool Register(ReflectionCall* call) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(ReflectionCall* call) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Service* const service_;
  const std::vector<std::string> services_;
  CallSites* const sites_;

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<ReflectionCall*> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace taskd

#endif  // TASKD_SERVICES_GRPC_STD_REFLECTION_SERVICE_H_
