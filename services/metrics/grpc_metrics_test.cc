#include "services/metrics/grpc_metrics.h"

#include <set>
#include <string>
#include <vector>

#include "api/taskd/v1/taskd.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/metrics/test_util.h"

namespace taskd {
namespace metrics {
namespace {

using testing::Value;

TEST(GrpcMetricsTest, MethodsOfAServiceGetTheirTypes) {
  GrpcMetrics m;
  ASSERT_TRUE(m.AddService(v1::TaskService::service_full_name()).ok());
  ASSERT_TRUE(m.AddService(v1::WorkerService::service_full_name()).ok());
  MethodCells* submit = m.Find("/taskd.v1.TaskService/SubmitTask");
  ASSERT_NE(submit, nullptr);
  EXPECT_EQ(submit->type, "unary");
  EXPECT_EQ(submit->service, "taskd.v1.TaskService");
  EXPECT_EQ(submit->method, "SubmitTask");
  EXPECT_EQ(m.Find("/taskd.v1.TaskService/Stream")->type, "server_stream");
  EXPECT_EQ(m.Find("/taskd.v1.WorkerService/Work")->type, "bidi_stream");
  EXPECT_EQ(m.Find("/taskd.v1.TaskService/NoSuchMethod"), nullptr);
  EXPECT_EQ(m.Find(nullptr), nullptr);
}

TEST(GrpcMetricsTest, UnknownServiceIsNotFound) {
  GrpcMetrics m;
  EXPECT_EQ(m.AddService("no.such.Service").code(),
            absl::StatusCode::kNotFound);
}

TEST(GrpcMetricsTest, EverySeriesExistsFromTheStartWithEveryCode) {
  GrpcMetrics m;
  m.AddStandardServices();
  std::vector<prometheus::MetricFamily> f;
  m.Collect(&f);
  std::set<std::string> names;
  for (const auto& family : f) names.insert(family.name);
  EXPECT_EQ(names, (std::set<std::string>{
                       "grpc_server_started_total", "grpc_server_handled_total",
                       "grpc_server_msg_received_total",
                       "grpc_server_msg_sent_total",
                       "grpc_server_handling_seconds"}));
  EXPECT_EQ(Value(f, "grpc_server_handled_total",
                  {{"grpc_service", "grpc.health.v1.Health"},
                   {"grpc_method", "Check"},
                   {"grpc_type", "unary"},
                   {"grpc_code", "Unavailable"}}),
            0);
  for (const auto& family : f) {
    if (family.name == "grpc_server_handled_total") {
      EXPECT_EQ(family.metric.size(), 3u * kGrpcCodes);
    }
  }
}

TEST(GrpcMetricsTest, CellsShowInTheirSeries) {
  GrpcMetrics m;
  m.AddMethod("s.S", "M", false, false);
  MethodCells* cells = m.Find("/s.S/M");
  cells->started.Add();
  cells->handled[5].Add();  // NOT_FOUND
  cells->seconds.Observe(0.2);
  std::vector<prometheus::MetricFamily> f;
  m.Collect(&f);
  EXPECT_EQ(Value(f, "grpc_server_started_total", {{"grpc_method", "M"}}), 1);
  EXPECT_EQ(Value(f, "grpc_server_handled_total",
                  {{"grpc_method", "M"}, {"grpc_code", "NotFound"}}),
            1);
  EXPECT_EQ(Value(f, "grpc_server_handled_total",
                  {{"grpc_method", "M"}, {"grpc_code", "OK"}}),
            0);
}

}  // namespace
}  // namespace metrics
}  // namespace taskd
