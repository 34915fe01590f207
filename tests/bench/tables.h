// taskd_bench's text tables: the figures of report.h as people read them,
// each taskd figure with its ratio to its reference. Each prints nothing when
// its rows were not run. Stateless; call from one thread at a time.
#ifndef TASKD_TESTS_BENCH_TABLES_H_
#define TASKD_TESTS_BENCH_TABLES_H_

#include <string>
#include <vector>

#include "tests/bench/bench_env.h"
#include "tests/bench/report.h"

namespace taskd::bench {

// Submits, end to end, server CPU and round trips: a null RPC column and one
// column per mode of `modes`.
void PrintCallTable(const Results& results,
                    const std::vector<std::string>& modes,
                    const BenchConfig& config);

// RSS per held call and time to register them: the null RPC's idle stream,
// taskd's Stream and Await in `mode`.
void PrintHeldTable(const Results& results, const std::string& mode,
                    const BenchConfig& config);

// The queued backlog in `mode`.
void PrintQueuedTable(const Results& results, const std::string& mode,
                      const BenchConfig& config);

// Metrics on/off in `mode`.
void PrintMetricsTable(const Results& results, const std::string& mode,
                       const BenchConfig& config);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_TABLES_H_
