// Helpers for the metrics tests: find a sample in collected families.
#ifndef TASKD_SERVICES_METRICS_TEST_UTIL_H_
#define TASKD_SERVICES_METRICS_TEST_UTIL_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace taskd {
namespace metrics {
namespace testing {

// The sample of family `name` whose labels include all of `labels`.
inline std::optional<prometheus::ClientMetric> Sample(
    const std::vector<prometheus::MetricFamily>& families,
    const std::string& name,
    const std::map<std::string, std::string>& labels = {}) {
  for (const auto& f : families) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      size_t matched = 0;
      for (const auto& l : m.label) {
        auto it = labels.find(l.name);
        if (it != labels.end() && it->second == l.value) ++matched;
      }
      if (matched == labels.size()) return m;
    }
  }
  return std::nullopt;
}

// Counter or gauge value; -1 when absent.
inline double Value(const std::vector<prometheus::MetricFamily>& families,
                    const std::string& name,
                    const std::map<std::string, std::string>& labels = {}) {
  auto m = Sample(families, name, labels);
  if (!m) return -1;
  for (const auto& f : families) {
    if (f.name == name) {
      return f.type == prometheus::MetricType::Counter ? m->counter.value
                                                       : m->gauge.value;
    }
  }
  return -1;
}

}  // namespace testing
}  // namespace metrics
}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_TEST_UTIL_H_
