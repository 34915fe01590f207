// The figures taskd_bench measures, and their two outputs: JSON lines (one
// object per figure, for tools and before/after comparisons) and the
// aligned text tables people read.
//
//   Results results({{"taskd_bin", path}});
//   Figure& f = results.Add("submit_64", "memory", 9210, "tasks/s");
//   f.reference = 17726;  // the null RPC's figure on the same shape
//   f.reference_of = "null_rpc";
//   results.WriteJsonLines("bench-results.jsonl");
//
// Thread-compatible.
#ifndef TASKD_TESTS_BENCH_REPORT_H_
#define TASKD_TESTS_BENCH_REPORT_H_

#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace taskd::bench {

// The mode of the null-RPC baseline's figures.
inline constexpr char kNullRpcMode[] = "null_rpc";

// Figure::extra key: the share (0..1) of the machine's CPUs that other
// processes used while the figure was measured.
inline constexpr char kOthersCpuShare[] = "others_cpu_share";

struct Figure {
  std::string row;   // stable key, e.g. "submit_64" (see taskd_bench.cc)
  std::string mode;  // "memory", "async", "sync", "null_rpc", ...
  double value = 0;
  std::string unit;  // "tasks/s", "us", "ms", "bytes", "s", ...
  // What `value` is compared with (the null RPC on the same client shape,
  // an empty server, ...), and its name; the ratio is value / reference.
  std::optional<double> reference;
  std::string reference_of;
  int64_t n = 0;       // tasks or calls measured
  int64_t errors = 0;  // failed calls
  std::string first_error;
  bool time_limited = false;  // stopped by its time bound before n
  double seconds = 0;         // wall time of the measurement
  std::vector<std::pair<std::string, double>> extra;  // more numbers
  std::vector<std::pair<std::string, std::string>> notes;

  std::optional<double> ratio() const;
};

class Results {
 public:
  // `labels` go into every JSON line (binary, date, flags...).
  explicit Results(std::vector<std::pair<std::string, std::string>> labels);

  // A new figure; the reference stays valid for the life of the Results.
  Figure& Add(std::string row, std::string mode, double value,
              std::string unit);
  // The figure of `row` in `mode`, or null.
  const Figure* Find(absl::string_view row, absl::string_view mode) const;
  const std::deque<Figure>& figures() const { return figures_; }

  // Writes every figure as one JSON object per line, replacing `path`.
  absl::Status WriteJsonLines(const std::string& path) const;
  // The line of one figure (no newline).
  std::string JsonLine(const Figure& figure) const;

 private:
  const std::vector<std::pair<std::string, std::string>> labels_;
  std::deque<Figure> figures_;  // a deque keeps references valid
};

// Rows of cells printed as an aligned table; the first column is left
// aligned, the others right aligned, two spaces apart.
void PrintTable(std::FILE* out,
                const std::vector<std::vector<std::string>>& rows);

// `value` with `decimals` places and thousands separators: "12,345" for
// FormatNumber(12345.4), "0.71" for FormatNumber(0.714, 2); "-" for NaN.
std::string FormatNumber(double value, int decimals = 0);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_REPORT_H_
