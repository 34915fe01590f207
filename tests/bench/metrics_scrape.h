// Reading a taskd's Prometheus endpoint from taskd_bench: one plain HTTP/1.0
// GET on loopback, and the value of a sample in the text exposition.
// Stateless functions, safe from any thread.
//
//   absl::StatusOr<int> port = MetricsPort(
//       server->LastLineContaining("metrics on"));
//   absl::StatusOr<std::string> text = ScrapeMetrics(*port, absl::Seconds(5));
//   absl::StatusOr<double> awaits = MetricSum(*text, "taskd_awaits");
#ifndef TASKD_TESTS_BENCH_METRICS_SCRAPE_H_
#define TASKD_TESTS_BENCH_METRICS_SCRAPE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace taskd::bench {

// The N of taskd's log line `taskd: metrics on http://ADDR/metrics (port N)`;
// NOT_FOUND for any other line (e.g. "" before the line was logged).
absl::StatusOr<int> MetricsPort(absl::string_view log_line);

// The body of GET /metrics from 127.0.0.1:`port`, waiting at most `timeout`.
absl::StatusOr<std::string> ScrapeMetrics(int port, absl::Duration timeout);

// The sum of every sample of `name` in `exposition` (all label sets; for a
// histogram, ask for `<name>_sum` or `<name>_count`). NOT_FOUND when there
// is none.
absl::StatusOr<double> MetricSum(absl::string_view exposition,
                                 absl::string_view name);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_METRICS_SCRAPE_H_
