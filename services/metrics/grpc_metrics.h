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
//   MethodCells* cells = grpc_metrics.Find("/taskd.v1.TaskService/Get");
//   ...then, in the method's call handler, one CallMeter per call:
//   meter.Start(cells); meter.Received(); meter.Sent(); meter.Handled(s);
//
// The call handlers count their own calls (services/call.h), with the cells
// of their method found once when the server starts: a gRPC interceptor did
// the same at several percent of the server's CPU per call (it adds work to
// every operation of the asynchronous API). The method table is fixed
// before the server starts (label sets bounded by the services served).
// Like go-grpc-prometheus, every method's series exist from the start with
// 0 (every grpc_code included).
//
// Thread-safe once the table is built; AddService/AddMethod must happen
// before the first call is counted.
#ifndef TASKD_SERVICES_METRICS_GRPC_METRICS_H_
#define TASKD_SERVICES_METRICS_GRPC_METRICS_H_

#include <grpcpp/support/status.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "prometheus/metric_family.h"
#include "scheduler/clock.h"
#include "services/metrics/cells.h"

namespace taskd {
namespace metrics {

// grpc::StatusCode OK .. UNAUTHENTICATED.
inline constexpr int kGrpcCodes = 17;

struct MethodCells {
  Clock* clock = nullptr;  // times the calls (the GrpcMetrics' clock)
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

// One call's counts, kept by its handler: Start when the call arrives,
// Received/Sent per message, Handled once when its status is sent (or it
// ends without one). Without cells (metrics off) every method is a no-op.
// Start happens before the others; Received/Sent may run on any thread,
// Handled on one, once.
class CallMeter {
 public:
  // `cells` may be nullptr (nothing is counted); must outlive the call.
  void Start(MethodCells* cells) {
    cells_ = cells;
    if (cells_ == nullptr) return;
    start_ = cells_->clock->Now();
    cells_->started.Add();
  }
  void Received() {
    if (cells_ != nullptr) cells_->received.Add();
  }
  void Sent() {
    if (cells_ != nullptr) cells_->sent.Add();
  }
  void Handled(grpc::StatusCode code);

 private:
  MethodCells* cells_ = nullptr;
  absl::Time start_;
};

}  // namespace metrics
}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_GRPC_METRICS_H_
