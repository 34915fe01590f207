// Process metrics as Prometheus' own client libraries name them, read from
// Linux /proc at scrape time: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes,
// process_open_fds, process_max_fds, process_start_time_seconds.
//
//   CollectProcessMetrics(ProcSource{}, &families);          // this process
//   CollectProcessMetrics(ProcSource{"/tmp/fake/proc"}, ...); // tests
//
// A file that cannot be read leaves its metrics out (never an error).
// Thread-safe (no state).
#ifndef TASKD_SERVICES_METRICS_PROCESS_METRICS_H_
#define TASKD_SERVICES_METRICS_PROCESS_METRICS_H_

#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace taskd {
namespace metrics {

struct ProcSource {
  // Reads <root>/self/stat, <root>/self/fd/, <root>/self/limits and
  // <root>/stat (btime).
  std::string root = "/proc";
  // 0: sysconf(_SC_CLK_TCK) and the page size of this machine.
  long ticks_per_second = 0;
  long page_size = 0;
};

void CollectProcessMetrics(const ProcSource& source,
                           std::vector<prometheus::MetricFamily>* out);

}  // namespace metrics
}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_PROCESS_METRICS_H_
