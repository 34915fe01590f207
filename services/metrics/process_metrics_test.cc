#include "services/metrics/process_metrics.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "services/metrics/test_util.h"

namespace taskd {
namespace metrics {
namespace {

using testing::Value;

void Write(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(ProcessMetricsTest, ReadsAFakeProc) {
  const std::filesystem::path root =
      std::filesystem::path(std::getenv("TEST_TMPDIR")) / "proc";
  // Fields: pid (comm) state ... utime=14 stime=15 ... starttime=22
  // vsize=23 rss=24; the comm holds a space and a ')'.
  Write(root / "self/stat",
        "42 (tas kd)) S 1 42 42 0 -1 4194560 100 0 0 0 "
        "250 50 0 0 20 0 8 0 1000 123456789 300 18446744073709551615\n");
  Write(root / "stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 10\n");
  Write(root / "self/limits",
        "Limit                     Soft Limit           Hard Limit   Units\n"
        "Max open files            1024                 524288       files\n");
  for (const char* fd : {"100", "101", "102"}) Write(root / "self/fd" / fd, "");
  ProcSource source;
  source.root = root.string();
  source.ticks_per_second = 100;
  source.page_size = 4096;
  std::vector<prometheus::MetricFamily> f;
  CollectProcessMetrics(source, &f);
  EXPECT_DOUBLE_EQ(Value(f, "process_cpu_seconds_total"), 3.0);
  EXPECT_DOUBLE_EQ(Value(f, "process_virtual_memory_bytes"), 123456789.0);
  EXPECT_DOUBLE_EQ(Value(f, "process_resident_memory_bytes"), 300.0 * 4096);
  EXPECT_DOUBLE_EQ(Value(f, "process_start_time_seconds"), 1700000010.0);
  EXPECT_DOUBLE_EQ(Value(f, "process_max_fds"), 1024.0);
  EXPECT_DOUBLE_EQ(Value(f, "process_open_fds"), 3.0);
}

TEST(ProcessMetricsTest, MissingFilesLeaveMetricsOut) {
  ProcSource source;
  source.root = "/nonexistent/proc";
  std::vector<prometheus::MetricFamily> f;
  CollectProcessMetrics(source, &f);
  EXPECT_TRUE(f.empty());
}

TEST(ProcessMetricsTest, ThisProcessLooksSane) {
  std::vector<prometheus::MetricFamily> f;
  CollectProcessMetrics(ProcSource{}, &f);
  EXPECT_GT(Value(f, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(Value(f, "process_open_fds"), 3);
  EXPECT_GT(Value(f, "process_start_time_seconds"), 1.6e9);
  EXPECT_GE(Value(f, "process_cpu_seconds_total"), 0);
}

}  // namespace
}  // namespace metrics
}  // namespace taskd
