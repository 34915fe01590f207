#include "services/metrics/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "services/metrics/cells.h"

namespace taskd {
namespace metrics {
namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

constexpr auto kGauge = prometheus::MetricType::Gauge;

}  // namespace

void CollectProcessMetrics(const ProcSource& source,
                           std::vector<prometheus::MetricFamily>* out) {
  const double ticks = static_cast<double>(
      source.ticks_per_second > 0 ? source.ticks_per_second
                                  : sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(
      source.page_size > 0 ? source.page_size : sysconf(_SC_PAGESIZE));

  // /proc/self/stat: "pid (comm) state f4 ..."; comm may hold spaces and
  // parentheses, so fields are counted from the last ')'.
  std::string stat;
  double start_ticks = -1;
  if (ReadFile(source.root + "/self/stat", &stat)) {
    const size_t close = stat.rfind(')');
    if (close != std::string::npos) {
      std::vector<absl::string_view> f = absl::StrSplit(
          absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
      // f[0] is field 3 (state): field N is f[N - 3].
      uint64_t utime, stime, start, vsize;
      int64_t rss;
      if (f.size() > 21 && absl::SimpleAtoi(f[11], &utime) &&
          absl::SimpleAtoi(f[12], &stime) && absl::SimpleAtoi(f[19], &start) &&
          absl::SimpleAtoi(f[20], &vsize) && absl::SimpleAtoi(f[21], &rss)) {
        AddSingle(out, "process_cpu_seconds_total",
                  "Total user and system CPU time spent in seconds.",
                  prometheus::MetricType::Counter,
                  static_cast<double>(utime + stime) / ticks);
        AddSingle(out, "process_virtual_memory_bytes",
                  "Virtual memory size in bytes.", kGauge,
                  static_cast<double>(vsize));
        AddSingle(out, "process_resident_memory_bytes",
                  "Resident memory size in bytes.", kGauge,
                  static_cast<double>(rss) * page);
        start_ticks = static_cast<double>(start);
      }
    }
  }
  std::string system_stat;
  if (start_ticks >= 0 && ReadFile(source.root + "/stat", &system_stat)) {
    for (absl::string_view line : absl::StrSplit(system_stat, '\n')) {
      uint64_t btime;
      if (absl::ConsumePrefix(&line, "btime ") &&
          absl::SimpleAtoi(line, &btime)) {
        AddSingle(out, "process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.",
                  kGauge, static_cast<double>(btime) + start_ticks / ticks);
      }
    }
  }
  if (DIR* dir = opendir((source.root + "/self/fd").c_str())) {
    // The descriptor of the listing itself is not the process's own.
    const std::string own = std::to_string(dirfd(dir));
    int n = 0;
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.' && own != e->d_name) ++n;
    }
    closedir(dir);
    AddSingle(out, "process_open_fds", "Number of open file descriptors.",
              kGauge, n);
  }
  std::string limits;
  if (ReadFile(source.root + "/self/limits", &limits)) {
    for (absl::string_view line : absl::StrSplit(limits, '\n')) {
      if (!absl::ConsumePrefix(&line, "Max open files")) continue;
      std::vector<absl::string_view> f =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      uint64_t soft;
      if (!f.empty() && absl::SimpleAtoi(f[0], &soft)) {
        AddSingle(out, "process_max_fds",
                  "Maximum number of open file descriptors.", kGauge,
                  static_cast<double>(soft));
      }
    }
  }
}

}  // namespace metrics
}  // namespace taskd
