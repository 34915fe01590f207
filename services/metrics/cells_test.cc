#include "services/metrics/cells.h"

#include <cmath>
#include <sstream>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace taskd {
namespace metrics {
namespace {

TEST(CounterTest, CountsFromManyThreads) {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.Add();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(c.ToClientMetric({{"queue", "q"}}).counter.value, 40000.0);
}

TEST(HistogramTest, BucketsAreCumulativeAndEndWithInf) {
  const std::vector<double> bounds = {1, 2, 5};
  Histogram h(&bounds);
  for (double v : {0.5, 1.0, 1.5, 3.0, 7.0, 9.0}) h.Observe(v);
  auto m = h.ToClientMetric({});
  ASSERT_EQ(m.histogram.bucket.size(), 4u);
  // le=1 holds 0.5 and 1.0 (upper bounds are inclusive).
  EXPECT_EQ(m.histogram.bucket[0].cumulative_count, 2u);
  EXPECT_EQ(m.histogram.bucket[1].cumulative_count, 3u);
  EXPECT_EQ(m.histogram.bucket[2].cumulative_count, 4u);
  EXPECT_EQ(m.histogram.bucket[3].cumulative_count, 6u);
  EXPECT_TRUE(std::isinf(m.histogram.bucket[3].upper_bound));
  EXPECT_EQ(m.histogram.sample_count, 6u);
  EXPECT_DOUBLE_EQ(m.histogram.sample_sum, 22.0);
}

TEST(HistogramTest, SerializesWithOneInfBucket) {
  const std::vector<double> bounds = {1};
  Histogram h(&bounds);
  h.Observe(0.5);
  auto f = Family("x_seconds", "help", prometheus::MetricType::Histogram);
  f.metric.push_back(h.ToClientMetric({{"queue", "q"}}));
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, {f});
  const std::string text = out.str();
  EXPECT_NE(text.find("x_seconds_count{queue=\"q\"} 1"), std::string::npos)
      << text;
  size_t infs = 0;
  for (size_t at = text.find("+Inf"); at != std::string::npos;
       at = text.find("+Inf", at + 1)) {
    ++infs;
  }
  EXPECT_EQ(infs, 1u) << text;
}

}  // namespace
}  // namespace metrics
}  // namespace taskd
