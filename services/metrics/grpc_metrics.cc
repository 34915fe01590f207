#include "services/metrics/grpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace taskd {
namespace metrics {
namespace {

constexpr std::array<const char*, kGrpcCodes> kCodeNames = {
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
};

const char* TypeName(bool client_streaming, bool server_streaming) {
  if (client_streaming && server_streaming) return "bidi_stream";
  if (client_streaming) return "client_stream";
  if (server_streaming) return "server_stream";
  return "unary";
}

}  // namespace

GrpcMetrics::GrpcMetrics(Clock* clock)
    : clock_(clock != nullptr ? clock : RealClock::Get()) {}

absl::Status GrpcMetrics::AddService(const std::string& full_name) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          full_name);
  if (service == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("service ", full_name, " is not linked in"));
  }
  for (int i = 0; i < service->method_count(); ++i) {
    const google::protobuf::MethodDescriptor* m = service->method(i);
    AddMethod(full_name, m->name(), m->client_streaming(),
              m->server_streaming());
  }
  return absl::OkStatus();
}

void GrpcMetrics::AddMethod(const std::string& service,
                            const std::string& method, bool client_streaming,
                            bool server_streaming) {
  std::string path = absl::StrCat("/", service, "/", method);
  if (by_path_.contains(path)) return;
  auto cells = std::make_unique<MethodCells>();
  cells->clock = clock_;
  cells->type = TypeName(client_streaming, server_streaming);
  cells->service = service;
  cells->method = method;
  by_path_.emplace(std::move(path), cells.get());
  methods_.push_back(std::move(cells));
}

void GrpcMetrics::AddStandardServices() {
  AddMethod("grpc.health.v1.Health", "Check", false, false);
  AddMethod("grpc.health.v1.Health", "Watch", false, true);
  AddMethod("grpc.reflection.v1alpha.ServerReflection", "ServerReflectionInfo",
            true, true);
}

MethodCells* GrpcMetrics::Find(const char* full_method) const {
  if (full_method == nullptr) return nullptr;
  auto it = by_path_.find(absl::string_view(full_method));
  return it == by_path_.end() ? nullptr : it->second;
}

void GrpcMetrics::Collect(std::vector<prometheus::MetricFamily>* out) const {
  using prometheus::MetricType;
  auto started = Family("grpc_server_started_total",
                        "Total number of RPCs started on the server.",
                        MetricType::Counter);
  auto handled = Family(
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success "
      "or failure.",
      MetricType::Counter);
  auto received = Family("grpc_server_msg_received_total",
                         "Total number of RPC stream messages received on "
                         "the server.",
                         MetricType::Counter);
  auto sent = Family("grpc_server_msg_sent_total",
                     "Total number of gRPC stream messages sent by the "
                     "server.",
                     MetricType::Counter);
  auto seconds = Family("grpc_server_handling_seconds",
                        "Histogram of response latency (seconds) of gRPC "
                        "that had been application-level handled by the "
                        "server.",
                        MetricType::Histogram);
  for (const auto& m : methods_) {
    const Labels labels = {{"grpc_method", m->method},
                           {"grpc_service", m->service},
                           {"grpc_type", m->type}};
    started.metric.push_back(m->started.ToClientMetric(labels));
    for (int code = 0; code < kGrpcCodes; ++code) {
      handled.metric.push_back(m->handled[code].ToClientMetric(
          {{"grpc_code", kCodeNames[code]},
           {"grpc_method", m->method},
           {"grpc_service", m->service},
           {"grpc_type", m->type}}));
    }
    received.metric.push_back(m->received.ToClientMetric(labels));
    sent.metric.push_back(m->sent.ToClientMetric(labels));
    seconds.metric.push_back(m->seconds.ToClientMetric(labels));
  }
  for (auto* f : {&started, &handled, &received, &sent, &seconds}) {
    out->push_back(std::move(*f));
  }
}

void CallMeter::Handled(grpc::StatusCode code) {
  if (cells_ == nullptr) return;
  const int i = static_cast<int>(code);
  cells_->handled[i >= 0 && i < kGrpcCodes ? i : grpc::StatusCode::UNKNOWN]
      .Add();
  cells_->seconds.Observe(
      std::max(0.0, absl::ToDoubleSeconds(cells_->clock->Now() - start_)));
}

}  // namespace metrics
}  // namespace taskd
