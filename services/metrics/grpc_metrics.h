// GrpcMetrics: per-method RPC metrics with the names and labels of the gRPC
// ecosystem's Prometheus middleware (go-grpc-prometheus), so stock gRPC
// dashboards work: grpc_server_started_total, grpc_server_handled_total
// (grpc_code), grpc_server_msg_received_total, grpc_server_msg_sent_total
// and the histogram grpc_server_handling_seconds, each labelled grpc_type
// (unary, server_stream, client_stream, bidi_stream), grpc_service and
// grpc_method.
//
//   GrpcMetrics grpc_metrics(clock);
//   grpc_metrics.AddService("taskd.v1.TaskService");   // before serving
//   builder.experimental().SetInterceptorCreators(
//       MakeInterceptorCreators(&grpc_metrics));      // async API included
//
// The method table is fixed before the server starts (label sets bounded by
// the services served; calls to unknown methods are not counted). Each call
// gets an interceptor that finds its method's cells once, in an immutable
// map, then only increments relaxed atomics. Like go-grpc-prometheus, every
// method's series exist from the start with 0 (every grpc_code included).
//
// Thread-safe once the table is built; AddService/AddMethod must happen
// before the first call is intercepted.
#ifndef TASKD_SERVICES_METRICS_GRPC_METRICS_H_
#define TASKD_SERVICES_METRICS_GRPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "prometheus/metric_family.h"
#include "scheduler/clock.h"
#include "services/metrics/cells.h"

namespace taskd {
namespace metrics {

// grpc::StatusCode OK .. UNAUTHENTICATED.
inline constexpr int kGrpcCodes = 17;

struct MethodCells {
  std::string type;     // grpc_type
  std::string service;  // grpc_service, e.g. "taskd.v1.TaskService"
  std::string method;   // grpc_method, e.g. "SubmitTask"
  Counter started;
  std::array<Counter, kGrpcCodes> handled;
  Counter received;
  Counter sent;
  Histogram seconds{&kGrpcSecondsBuckets};
};

class GrpcMetrics {
 public:
  // `clock` times calls (nullptr: real time); it must outlive this.
  explicit GrpcMetrics(Clock* clock = nullptr);
  GrpcMetrics(const GrpcMetrics&) = delete;
  GrpcMetrics& operator=(const GrpcMetrics&) = delete;

  // Adds every method of a service in the generated protobuf descriptor
  // pool (e.g. "taskd.v1.TaskService"); NOT_FOUND when it is not linked in.
  absl::Status AddService(const std::string& full_name);
  // Adds one method; `client_streaming`/`server_streaming` give grpc_type.
  void AddMethod(const std::string& service, const std::string& method,
                 bool client_streaming, bool server_streaming);
  // The standard services a taskd server also serves: grpc.health.v1.Health
  // and server reflection.
  void AddStandardServices();

  // Cells of "/service/method" (gRPC's full method name), or nullptr.
  MethodCells* Find(const char* full_method) const;
  Clock* clock() const { return clock_; }

  // Appends the five grpc_server_* families.
  void Collect(std::vector<prometheus::MetricFamily>* out) const;

 private:
  Clock* const clock_;
  std::vector<std::unique_ptr<MethodCells>> methods_;
  absl::flat_hash_map<std::string, MethodCells*> by_path_;
};

// The interceptor factory that feeds `metrics` (which must outlive the
// server), wrapped as ServerBuilder::experimental().SetInterceptorCreators
// wants it.
std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
MakeInterceptorCreators(GrpcMetrics* metrics);

}  // namespace metrics
}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_GRPC_METRICS_H_
