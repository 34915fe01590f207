// HealthPort: a plaintext gRPC port that answers grpc.health.v1.Health/Check
// and nothing else (UNIMPLEMENTED), for Kubernetes gRPC probes, which speak
// neither TLS nor tokens. It reveals one bit (SERVING or NOT_SERVING).
//
//   auto port = HealthPort::Start("0.0.0.0:8081");
//   (*port)->SetServing(true);
//
// Thread-safe. Destroying it stops the listener.
#ifndef TASKD_SERVICES_HEALTH_PORT_H_
#define TASKD_SERVICES_HEALTH_PORT_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace taskd {

class HealthPort {
 public:
  // UNAVAILABLE naming `listen` when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<HealthPort>> Start(
      const std::string& listen);
  ~HealthPort();

  void SetServing(bool serving) { serving_.store(serving); }
  int port() const { return port_; }

 private:
  class Service;
  HealthPort();

  std::atomic<bool> serving_{false};
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_HEALTH_PORT_H_
