// Lock-free metric cells for hot paths: a counter and a histogram made of
// relaxed atomics, turned into prometheus-cpp ClientMetrics at scrape time.
//
//   Counter submitted;
//   submitted.Add();                                   // any thread
//   Histogram wait(&kLatencyBuckets);
//   wait.Observe(0.25);
//   prometheus::ClientMetric m = wait.ToClientMetric({{"queue", "q"}});
//
// prometheus-cpp's own Histogram takes a mutex per Observe; these never
// block. A scrape may see a histogram mid-update (a bucket counted, the sum
// not yet), which Prometheus tolerates: count is derived from the buckets,
// so buckets and count always agree.
//
// Thread-safe.
#ifndef TASKD_SERVICES_METRICS_CELLS_H_
#define TASKD_SERVICES_METRICS_CELLS_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"

namespace taskd {
namespace metrics {

using Labels = std::vector<prometheus::ClientMetric::Label>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  prometheus::ClientMetric ToClientMetric(Labels labels) const;

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  // `bounds`: increasing upper bounds (without +Inf); must outlive this.
  explicit Histogram(const std::vector<double>* bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  // Cumulative buckets, the last one +Inf.
  prometheus::ClientMetric ToClientMetric(Labels labels) const;

 private:
  const std::vector<double>* const bounds_;
  // buckets_[i] counts values <= bounds[i] and > bounds[i-1]; the last one
  // is the +Inf bucket. Not cumulative (one increment per Observe).
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

// Bucket layouts shared by the exporter's histograms.
extern const std::vector<double> kTaskSecondsBuckets;    // wait/run/turnaround
extern const std::vector<double> kGrpcSecondsBuckets;    // as go-grpc-prometheus
extern const std::vector<double> kCommitSecondsBuckets;  // fsync latency
extern const std::vector<double> kCommitRecordsBuckets;  // changes per commit

// A family with `type`, name and help, ready for metrics to be added.
prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type);
// A gauge sample.
prometheus::ClientMetric GaugeSample(double value, Labels labels = {});
// Appends a family of one sample (a counter or a gauge).
void AddSingle(std::vector<prometheus::MetricFamily>* out, const char* name,
               const char* help, prometheus::MetricType type, double value,
               Labels labels = {});

}  // namespace metrics
}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_CELLS_H_
