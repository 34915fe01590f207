// BenchRuns: taskd_bench's runs, one group of rows per method, and the
// figures they make (report.h). The per-call runs are kept until
// AddCallFigures(), because their references are the baseline's mean over
// its passes, and its last pass runs after them.
//
//   BenchRuns runs(env, results);
//   runs.RunBaselinePass(sizes, 1);
//   for (const std::string& mode : modes) runs.RunSubmits(mode);
//   runs.RunBaselinePass(sizes, 2);
//   runs.AddCallFigures(modes);
//   runs.RunHeld("memory");
//
// A run that cannot be made (a server that does not start, ...) is logged on
// stderr and listed in errors(); its rows are missing. Progress goes to
// stderr. Thread-compatible.
#ifndef TASKD_TESTS_BENCH_BENCH_RUNS_H_
#define TASKD_TESTS_BENCH_BENCH_RUNS_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/bench/bench_env.h"
#include "tests/bench/report.h"
#include "tests/bench/throughput.h"

namespace taskd::bench {

class BenchRuns {
 public:
  // Both must outlive the BenchRuns.
  BenchRuns(BenchEnv& env, Results& results) : env_(env), results_(results) {}

  // Why runs failed, one line each; empty when all ran.
  const std::vector<std::string>& errors() const { return errors_; }

  // The null RPC on the three client shapes; `pass` counts from 1.
  void RunBaselinePass(const MessageSizes& sizes, int pass);
  // taskd in `mode`: submits, end to end, round trips.
  void RunSubmits(const std::string& mode);
  void RunEndToEnds(const std::string& mode);
  void RunLatency(const std::string& mode);
  // Adds the figures of the runs above, with the baseline as reference.
  void AddCallFigures(const std::vector<std::string>& modes);

  // These add their figures at once.
  void RunHeld(const std::string& mode);
  void RunQueued(const std::string& mode);
  void RunMetrics(const std::string& mode);

 private:
  // Runs `run` on each client shape, logging it as `label`, and hands what
  // it measured to `keep`.
  void RunShapes(const std::string& label,
                 const std::function<absl::StatusOr<RunFigures>(Shape)>& run,
                 const std::function<void(Shape, RunFigures)>& keep);
  // Runs `run` BenchConfig::repeat times (logging each as `what` with
  // `describe`'s summary) and returns the median (MedianOf); nothing when a
  // run failed.
  std::optional<RunFigures> Repeated(
      const std::string& what,
      const std::function<absl::StatusOr<RunFigures>()>& run,
      const std::function<std::string(const RunFigures&)>& describe);
  // Records the failure of a run; returns false.
  bool Check(const absl::Status& status, const std::string& what);
  // A figure from a run, with its error fields.
  Figure& AddRun(const std::string& row, const std::string& mode, double value,
                 const std::string& unit, const RunFigures& run);
  // The baseline's mean of `get` over its passes of `shape`; each pass's
  // value goes into `figure`'s extra fields when given.
  std::optional<double> BaselineMean(
      const std::string& shape,
      const std::function<double(const RunFigures&)>& get,
      Figure* figure = nullptr) const;

  BenchEnv& env_;
  Results& results_;
  std::vector<std::string> errors_;
  // Shape key -> the baseline's runs, one per pass.
  std::map<std::string, std::vector<RunFigures>> baseline_;
  // "<kind>/<shape>/<mode>" -> the taskd run.
  std::map<std::string, RunFigures> runs_;
};

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_BENCH_RUNS_H_
