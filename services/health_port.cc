#include "services/health_port.h"

#include <grpcpp/generic/async_generic_service.h>

#include "absl/strings/str_cat.h"

namespace taskd {

// Answers Check from the callback API's own threads: read the request, write
// HealthCheckResponse{status}, finish. The response is encoded by hand (field
// 1, varint: SERVING = 1, NOT_SERVING = 2) to keep the health proto out of
// the build.
class HealthPort::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(const std::atomic<bool>* serving) : serving_(serving) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new Reactor(context->method() == "/grpc.health.v1.Health/Check",
                       serving_->load());
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    Reactor(bool check, bool serving) : serving_(serving) {
      if (!check) {
        Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                            "this port serves grpc.health.v1.Health/Check "
                            "only"));
        return;
      }
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
        return;
      }
      const char bytes[2] = {0x08, static_cast<char>(serving_ ? 1 : 2)};
      grpc::Slice slice(bytes, sizeof(bytes));
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    const bool serving_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
  };

  const std::atomic<bool>* const serving_;
};

HealthPort::HealthPort() : service_(std::make_unique<Service>(&serving_)) {}

HealthPort::~HealthPort() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

absl::StatusOr<std::unique_ptr<HealthPort>> HealthPort::Start(
    const std::string& listen) {
  std::unique_ptr<HealthPort> port(new HealthPort());
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(),
                           &port->port_);
  builder.RegisterCallbackGenericService(port->service_.get());
  port->server_ = builder.BuildAndStart();
  if (port->server_ == nullptr || port->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen,
                     " (--health-listen: address in use, or not host:port)"));
  }
  return port;
}

}  // namespace taskd
