// What taskd_bench reads of a server process and its data directory from
// /proc and the file system: CPU time, resident memory, bytes on disk.
// Linux only. Stateless functions, safe from any thread.
//
//   absl::StatusOr<double> before = ProcessCpuSeconds(server->pid());
//   ... load ...
//   absl::StatusOr<double> after = ProcessCpuSeconds(server->pid());
#ifndef TASKD_TESTS_BENCH_PROC_STATS_H_
#define TASKD_TESTS_BENCH_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace taskd::bench {

// User plus system CPU time process `pid` has used, all its threads, from
// fields 14 and 15 of /proc/<pid>/stat.
absl::StatusOr<double> ProcessCpuSeconds(pid_t pid);

// CPU time every process of the machine has used, all CPUs together, plus
// what the hypervisor took: user, nice, system and steal of the "cpu" line
// of /proc/stat (not idle, iowait, irq or softirq).
absl::StatusOr<double> MachineBusySeconds();

// The 1-minute load average (/proc/loadavg).
absl::StatusOr<double> LoadAverage();

// Resident set size of process `pid` in bytes (/proc/<pid>/statm).
absl::StatusOr<int64_t> ProcessRssBytes(pid_t pid);

// Sum of the sizes of the regular files under `dir`, recursively.
absl::StatusOr<int64_t> DirectoryBytes(const std::string& dir);

// What a server process and the rest of the machine spend in CPU time from
// construction to a reading: the server's CPU per task, and the share of the
// machine's CPUs that processes other than the server and this one used
// meanwhile, with the hypervisor's steal (other builds on a shared host,
// other guests: noise in every figure).
// Thread-compatible.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t server);

  // The server's CPU time since construction per task; NaN when unknown.
  double ServerMicrosPerTask(int64_t tasks) const;
  // 0..1: the other processes' CPU time since construction over all CPUs'
  // time; NaN when unknown or when less than 0.25 s passed (/proc's tick is
  // 10 ms).
  double OthersShare() const;

 private:
  const pid_t server_;
  const absl::Time start_;
  double server_start_;  // NaN when unknown, as the two below
  double self_start_;
  double machine_start_;
};

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_PROC_STATS_H_
