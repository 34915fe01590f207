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

namespace taskd::bench {

// User plus system CPU time process `pid` has used, all its threads, from
// fields 14 and 15 of /proc/<pid>/stat.
absl::StatusOr<double> ProcessCpuSeconds(pid_t pid);

// Resident set size of process `pid` in bytes (/proc/<pid>/statm).
absl::StatusOr<int64_t> ProcessRssBytes(pid_t pid);

// Sum of the sizes of the regular files under `dir`, recursively.
absl::StatusOr<int64_t> DirectoryBytes(const std::string& dir);

}  // namespace taskd::bench

#endif  // TASKD_TESTS_BENCH_PROC_STATS_H_
