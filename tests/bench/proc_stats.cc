#include "tests/bench/proc_stats.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace taskd::bench {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<double> ProcessCpuSeconds(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  absl::StatusOr<std::string> stat = ReadFile(path);
  if (!stat.ok()) return stat.status();
  // Field 2, the command name, is in parentheses and may hold spaces: count
  // the fields from the last ')'.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 > stat->size()) {
    return absl::DataLossError(absl::StrCat("unexpected ", path));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 2), ' ');
  uint64_t utime = 0;
  uint64_t stime = 0;
  // fields[0] is field 3 (state), so fields 14 and 15 are [11] and [12].
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::DataLossError(absl::StrCat("unexpected ", path));
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

absl::StatusOr<double> MachineBusySeconds() {
  absl::StatusOr<std::string> stat = ReadFile("/proc/stat");
  if (!stat.ok()) return stat.status();
  // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
  const absl::string_view first =
      absl::string_view(*stat).substr(0, stat->find('\n'));
  std::vector<absl::string_view> fields =
      absl::StrSplit(first, ' ', absl::SkipEmpty());
  uint64_t ticks[8] = {};
  if (fields.size() < 9 || fields[0] != "cpu") {
    return absl::DataLossError("unexpected /proc/stat");
  }
  for (int i = 0; i < 8; ++i) {
    if (!absl::SimpleAtoi(fields[i + 1], &ticks[i])) {
      return absl::DataLossError("unexpected /proc/stat");
    }
  }
  // irq and softirq time (loopback networking, say) is charged to no
  // process, so leaving it out keeps a process's share comparable.
  const uint64_t busy = ticks[0] + ticks[1] + ticks[2] + ticks[7];
  return static_cast<double>(busy) / sysconf(_SC_CLK_TCK);
}

absl::StatusOr<double> LoadAverage() {
  absl::StatusOr<std::string> text = ReadFile("/proc/loadavg");
  if (!text.ok()) return text.status();
  double load = 0;
  if (!absl::SimpleAtod(absl::string_view(*text).substr(0, text->find(' ')),
                        &load)) {
    return absl::DataLossError("unexpected /proc/loadavg");
  }
  return load;
}

absl::StatusOr<int64_t> ProcessRssBytes(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/statm");
  absl::StatusOr<std::string> statm = ReadFile(path);
  if (!statm.ok()) return statm.status();
  std::vector<absl::string_view> fields =
      absl::StrSplit(*statm, ' ', absl::SkipEmpty());
  int64_t pages = 0;
  if (fields.size() < 2 || !absl::SimpleAtoi(fields[1], &pages)) {
    return absl::DataLossError(absl::StrCat("unexpected ", path));
  }
  return pages * static_cast<int64_t>(sysconf(_SC_PAGESIZE));
}

absl::StatusOr<int64_t> DirectoryBytes(const std::string& dir) {
  std::error_code error;
  std::filesystem::recursive_directory_iterator it(dir, error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot list ", dir, ": ", error.message()));
  }
  int64_t total = 0;
  // Increments with an error_code: a file the server deletes meanwhile must
  // not throw.
  for (; !error && it != std::filesystem::recursive_directory_iterator();
       it.increment(error)) {
    std::error_code ignored;
    if (it->is_regular_file(ignored)) {
      const uintmax_t size = it->file_size(ignored);
      if (!ignored) total += static_cast<int64_t>(size);
    }
  }
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot list ", dir, ": ", error.message()));
  }
  return total;
}

namespace {

// Spans shorter than this get no OthersShare().
constexpr double kShortestSpan = 0.25;  // seconds

double OrNan(const absl::StatusOr<double>& value) {
  return value.ok() ? *value : NAN;
}

}  // namespace

CpuMeter::CpuMeter(pid_t server)
    : server_(server),
      start_(absl::Now()),
      server_start_(OrNan(ProcessCpuSeconds(server))),
      self_start_(OrNan(ProcessCpuSeconds(getpid()))),
      machine_start_(OrNan(MachineBusySeconds())) {}

double CpuMeter::ServerMicrosPerTask(int64_t tasks) const {
  if (tasks <= 0) return NAN;
  return (OrNan(ProcessCpuSeconds(server_)) - server_start_) * 1e6 /
         static_cast<double>(tasks);
}

double CpuMeter::OthersShare() const {
  const double wall = absl::ToDoubleSeconds(absl::Now() - start_);
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  // /proc counts in 10 ms ticks: a shorter span says nothing.
  if (wall < kShortestSpan || cpus <= 0) return NAN;
  const double others = (OrNan(MachineBusySeconds()) - machine_start_) -
                        (OrNan(ProcessCpuSeconds(getpid())) - self_start_) -
                        (OrNan(ProcessCpuSeconds(server_)) - server_start_);
  return std::clamp(others / (wall * static_cast<double>(cpus)), 0.0, 1.0);
}

}  // namespace taskd::bench
