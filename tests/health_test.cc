// The server answers grpc.health.v1 SERVING once started and NOT_SERVING
// while it drains.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "services/grpc_std/health.grpc.pb.h"
#include "tests/test_server.h"

namespace taskd {
namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

TEST(HealthTest, ServingThenNotServingOnShutdown) {
  auto server = testing::StartServer();
  auto channel = grpc::CreateChannel(testing::Target(*server),
                                     grpc::InsecureChannelCredentials());
  auto stub = Health::NewStub(channel);
  {
    grpc::ClientContext ctx;
    HealthCheckRequest req;
    HealthCheckResponse resp;
    grpc::Status status = stub->Check(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING);
  }
  // Watch sees the switch to NOT_SERVING when shutdown begins.
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
  HealthCheckRequest req;
  auto reader = stub->Watch(&watch_ctx, req);
  HealthCheckResponse first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_EQ(first.status(), HealthCheckResponse::SERVING);
  std::thread stopper([&] { server->Shutdown(); });
  HealthCheckResponse next;
  bool saw_not_serving = false;
  while (reader->Read(&next)) {
    if (next.status() == HealthCheckResponse::NOT_SERVING) {
      saw_not_serving = true;
      break;
    }
  }
  watch_ctx.TryCancel();
  reader->Finish();
  stopper.join();
  EXPECT_TRUE(saw_not_serving);
}

// Health is served from taskd's own completion queues: named services as
// the protocol says (known: the overall status; unknown: NOT_FOUND).
TEST(HealthTest, NamedServices) {
  auto server = testing::StartServer();
  auto stub = Health::NewStub(grpc::CreateChannel(
      testing::Target(*server), grpc::InsecureChannelCredentials()));
  for (const char* name : {"taskd.v1.TaskService", "taskd.v1.WorkerService"}) {
    grpc::ClientContext ctx;
    HealthCheckRequest req;
    req.set_service(name);
    HealthCheckResponse resp;
    ASSERT_TRUE(stub->Check(&ctx, req, &resp).ok()) << name;
    EXPECT_EQ(resp.status(), HealthCheckResponse::SERVING) << name;
  }
  grpc::ClientContext ctx;
  HealthCheckRequest req;
  req.set_service("no.such.Service");
  HealthCheckResponse resp;
  EXPECT_EQ(stub->Check(&ctx, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace taskd
