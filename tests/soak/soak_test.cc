// Soak and fault test (issue 10 item 12; DESIGN.md reliability invariants).
//
// For SOAK_DURATION (default 60s; `make soak DURATION=1h` for longer) a
// durable taskd (--durability=sync, data in TEST_TMPDIR, one fixed loopback
// port) serves clients and workers while a chaos thread
//   - SIGKILLs a random worker process every 0.5-3 s and restarts it after
//     0-2 s (taskd-worker with shell handlers, soak_worker on the C++ SDK);
//   - SIGKILLs the server SOAK_SERVER_KILLS times (default 2) at random
//     points and restarts it on the same port and data directory.
// Meanwhile client threads (soak_clients.h) submit with idempotency keys
// (re-submitting a key after any unknown outcome), await, get, cancel, and
// follow the event stream; one stream consumer stops reading for a while.
// Then the workload stops, every acknowledged task is awaited until
// terminal (the drain), and the ledger (soak_ledger.h) checks that none is
// lost, none changed after a client saw it terminal, none had two terminal
// events, and no key named two tasks. A thread reads the server's VmRSS
// every 200 ms; its maximum must stay under the bound stated at the start.
//
// stdout gets one line:
//   acked=N completed=N cancelled=N failed=N retried=N lost=0 changed=0 max_rss_mb=N
// stderr gets the seed (SOAK_SEED repeats a run's choices, not its timing),
// chaos events, client counters and every problem found. Other settings
// from the environment: SOAK_SERVER_KILLS, SOAK_MAX_RSS_MB (the bound), and
// SOAK_SERVER_FLAGS (more taskd flags; `--durability=memory` shows what the
// checker reports when a server does lose tasks).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/soak/soak_clients.h"
#include "tests/soak/soak_fleet.h"
#include "tests/soak/soak_ledger.h"
#include "tests/taskd_process.h"

namespace taskd::soak {
namespace {

// Workload and chaos.
constexpr double kSubmitRate = 40;  // tasks per second
constexpr int kShellWorkers = 2;
constexpr int kSdkWorkers = 2;
constexpr int kWorkerConcurrency = 8;
constexpr absl::Duration kMinWorkerKillGap = absl::Milliseconds(500);
constexpr absl::Duration kMaxWorkerKillGap = absl::Seconds(3);
constexpr absl::Duration kMaxWorkerDowntime = absl::Seconds(2);
constexpr int kMaxChaosSteps = 10'000'000;

// After the workload: a key being retried gets this long to be
// acknowledged, and the drain this long to see every task terminal.
constexpr absl::Duration kAckLimit = absl::Seconds(15);
constexpr absl::Duration kDrainLimit = absl::Seconds(120);

// The server's RSS bound: a base for the process (gRPC, RocksDB memtables
// and caches, the event ring) plus an allowance per task it retains
// (every task is kept for the default result TTL, 24 h). SOAK_MAX_RSS_MB
// overrides it.
constexpr int64_t kRssBaseMb = 160;
constexpr int64_t kRssKbPerTask = 4;
constexpr absl::Duration kRssPeriod = absl::Milliseconds(200);
constexpr absl::Duration kReportPeriod = absl::Seconds(60);

struct SoakConfig {
  absl::Duration duration = absl::Seconds(60);
  uint64_t seed = 0;
  int server_kills = 2;
  int64_t max_rss_mb = 0;
};

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

SoakConfig ReadConfig() {
  SoakConfig c;
  const std::string duration = Env("SOAK_DURATION");
  int64_t seconds = 0;
  if (absl::SimpleAtoi(duration, &seconds)) {
    c.duration = absl::Seconds(seconds);
  } else if (!duration.empty() && !absl::ParseDuration(duration, &c.duration)) {
    ADD_FAILURE() << "SOAK_DURATION: not a duration: " << duration;
  }
  if (!absl::SimpleAtoi(Env("SOAK_SEED"), &c.seed)) {
    c.seed = std::random_device{}();
  }
  if (!absl::SimpleAtoi(Env("SOAK_SERVER_KILLS"), &c.server_kills)) {
    c.server_kills = 2;
  }
  if (!absl::SimpleAtoi(Env("SOAK_MAX_RSS_MB"), &c.max_rss_mb)) {
    const double tasks = kSubmitRate * absl::ToDoubleSeconds(c.duration);
    c.max_rss_mb =
        kRssBaseMb + static_cast<int64_t>(tasks * kRssKbPerTask / 1024);
  }
  return c;
}

std::string TempDir() {
  const std::string dir = Env("TEST_TMPDIR");
  if (!dir.empty()) return dir;
  char pattern[] = "/tmp/taskd-soak-XXXXXX";
  const char* made = mkdtemp(pattern);
  return made != nullptr ? made : "/tmp";
}

// A binary of the test's runfiles (the working directory of a Bazel test,
// and of `make soak`).
std::string Runfile(const std::string& path) {
  EXPECT_EQ(access(path.c_str(), X_OK), 0) << "no executable " << path;
  return path;
}

// VmRSS of `pid` in KiB, 0 if unknown (e.g. the process just died).
int64_t RssKb(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kb = 0;
      std::string digits;
      for (char ch : line) {
        if (ch >= '0' && ch <= '9') digits.push_back(ch);
      }
      return absl::SimpleAtoi(digits, &kb) ? kb : 0;
    }
  }
  return 0;
}

// Samples the server's RSS until `stop`; keeps the maximum and logs a line
// per kReportPeriod.
void MonitorRss(const SoakFleet& fleet, SoakLedger& ledger,
                absl::Notification& stop, std::atomic<int64_t>& max_kb) {
  const absl::Time start = absl::Now();
  absl::Time next_report = start + kReportPeriod;
  while (!stop.WaitForNotificationWithTimeout(kRssPeriod)) {
    const int64_t kb = RssKb(fleet.server_pid());
    int64_t seen = max_kb.load();
    while (kb > seen && !max_kb.compare_exchange_weak(seen, kb)) {
    }
    if (absl::Now() >= next_report) {
      next_report += kReportPeriod;
      std::fprintf(stderr, "soak: %s in: acked=%d rss_mb=%lld max_rss_mb=%lld\n",
                   absl::FormatDuration(absl::Now() - start).c_str(),
                   ledger.acked(), static_cast<long long>(kb / 1024),
                   static_cast<long long>(max_kb.load() / 1024));
    }
  }
}

// The chaos phase: until `end`, kills and restarts workers at random and
// the server at `server_kill_times`. Leaves every worker running.
void RunChaos(SoakFleet& fleet, SoakLedger& ledger, std::mt19937_64& rng,
              std::vector<absl::Time> server_kill_times, absl::Time end) {
  std::uniform_int_distribution<int64_t> gap_ms(
      absl::ToInt64Milliseconds(kMinWorkerKillGap),
      absl::ToInt64Milliseconds(kMaxWorkerKillGap));
  std::uniform_int_distribution<int64_t> down_ms(
      0, absl::ToInt64Milliseconds(kMaxWorkerDowntime));
  std::vector<absl::Time> restart_at(fleet.workers(), absl::InfiniteFuture());
  absl::Time next_worker_kill = absl::Now() + absl::Milliseconds(gap_ms(rng));
  size_t next_server_kill = 0;
  int worker_kills = 0;
  absl::Notification never;
  for (int step = 0; step < kMaxChaosSteps; ++step) {
    absl::Time next = std::min(end, next_worker_kill);
    if (next_server_kill < server_kill_times.size()) {
      next = std::min(next, server_kill_times[next_server_kill]);
    }
    for (absl::Time t : restart_at) next = std::min(next, t);
    // Pacing until the next chaos event.
    never.WaitForNotificationWithTimeout(next - absl::Now());
    const absl::Time now = absl::Now();
    if (now >= end) break;
    for (int i = 0; i < fleet.workers(); ++i) {
      if (restart_at[i] > now) continue;
      restart_at[i] = absl::InfiniteFuture();
      if (absl::Status s = fleet.StartWorker(i); !s.ok()) {
        ledger.Violation(absl::StrCat("restart of ", fleet.WorkerName(i),
                                      ": ", s.ToString()));
      }
    }
    if (now >= next_worker_kill) {
      next_worker_kill = now + absl::Milliseconds(gap_ms(rng));
      const int i = static_cast<int>(rng() % fleet.workers());
      if (fleet.WorkerUp(i)) {
        ++worker_kills;
        if (absl::Status s = fleet.KillWorker(i); !s.ok()) {
          ledger.Violation(absl::StrCat("kill of ", fleet.WorkerName(i), ": ",
                                        s.ToString()));
        }
        restart_at[i] = now + absl::Milliseconds(down_ms(rng));
      }
    }
    if (next_server_kill < server_kill_times.size() &&
        now >= server_kill_times[next_server_kill]) {
      ++next_server_kill;
      const int acked = ledger.acked();
      int killed = 0;
      const absl::Time kill_time = absl::Now();
      absl::Status s = fleet.KillAndRestartServer(&killed);
      if (!s.ok()) {
        ledger.Violation(absl::StrCat("server restart: ", s.ToString()));
        return;
      }
      std::fprintf(stderr,
                   "soak: server kill %zu at acked=%d (%s); serving again "
                   "after %s; %s\n",
                   next_server_kill, acked,
                   testing::DescribeWaitStatus(killed).c_str(),
                   absl::FormatDuration(absl::Now() - kill_time).c_str(),
                   fleet.ServerLine("recovered").c_str());
    }
  }
  for (int i = 0; i < fleet.workers(); ++i) {
    if (absl::Status s = fleet.StartWorker(i); !s.ok()) {
      ledger.Violation(absl::StrCat("restart of ", fleet.WorkerName(i), ": ",
                                    s.ToString()));
    }
  }
  std::fprintf(stderr, "soak: chaos over: %d worker kills, %zu server kills\n",
               worker_kills, next_server_kill);
}

TEST(SoakTest, ChaosLosesAndChangesNothing) {
  const SoakConfig config = ReadConfig();
  std::mt19937_64 rng(config.seed);
  std::fprintf(stderr,
               "soak: seed=%llu (SOAK_SEED repeats it) duration=%s "
               "server_kills=%d rss_bound_mb=%lld\n",
               static_cast<unsigned long long>(config.seed),
               absl::FormatDuration(config.duration).c_str(),
               config.server_kills, static_cast<long long>(config.max_rss_mb));

  SoakFleet::Options fleet_options;
  fleet_options.taskd_binary = Runfile("services/taskd");
  fleet_options.taskd_worker_binary = Runfile("clients/cpp/taskd-worker");
  fleet_options.soak_worker_binary = Runfile("tests/soak/soak_worker");
  fleet_options.data_dir = absl::StrCat(TempDir(), "/soak-data");
  // A small event ring, so that the stalled consumer falls out of it.
  fleet_options.server_flags = {"--threads=2", "--metrics_listen=",
                                "--event_log_capacity=1024",
                                "--event_log_bytes=4194304"};
  // SOAK_SERVER_FLAGS: more flags, space-separated (e.g. --durability=memory
  // to see the checker fail).
  for (absl::string_view flag :
       absl::StrSplit(Env("SOAK_SERVER_FLAGS"), ' ', absl::SkipEmpty())) {
    fleet_options.server_flags.emplace_back(flag);
  }
  fleet_options.shell_workers = kShellWorkers;
  fleet_options.sdk_workers = kSdkWorkers;
  fleet_options.worker_concurrency = kWorkerConcurrency;
  fleet_options.worker_lifetime = config.duration + absl::Minutes(10);
  absl::StatusOr<std::unique_ptr<SoakFleet>> started =
      SoakFleet::Start(fleet_options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<SoakFleet> fleet = *std::move(started);

  SoakLedger ledger;
  ClientStats stats;
  std::atomic<int64_t> max_rss_kb{0};
  absl::Notification stop_monitor;
  std::thread monitor(
      [&] { MonitorRss(*fleet, ledger, stop_monitor, max_rss_kb); });

  SoakClients::Options client_options;
  client_options.target = fleet->target();
  client_options.submit_rate = kSubmitRate;
  client_options.stall = std::min(absl::Seconds(15), config.duration / 4);
  SoakClients clients(client_options, &ledger, &stats);

  const absl::Time start = absl::Now();
  const absl::Time end = start + config.duration;
  // Server kill k falls in the k-th of (kills + 1) equal slices' borders,
  // give or take a quarter slice.
  std::vector<absl::Time> server_kills;
  const absl::Duration slice = config.duration / (config.server_kills + 1);
  for (int k = 1; k <= config.server_kills; ++k) {
    std::uniform_real_distribution<double> jitter(-0.25, 0.25);
    server_kills.push_back(start + slice * (k + jitter(rng)));
  }
  std::fprintf(stderr, "soak: server kills at +%s\n",
               absl::StrJoin(server_kills, ", +",
                             [&](std::string* out, absl::Time t) {
                               out->append(absl::FormatDuration(t - start));
                             })
                   .c_str());
  clients.Start(config.seed);
  RunChaos(*fleet, ledger, rng, server_kills, end);
  clients.StopWorkload(kAckLimit);
  std::fprintf(stderr, "soak: workload over after %s: acked=%d; %s\n",
               absl::FormatDuration(absl::Now() - start).c_str(),
               ledger.acked(), stats.ToString().c_str());

  const absl::Time drain_start = absl::Now();
  const int not_drained = clients.Drain(kDrainLimit);
  std::fprintf(stderr, "soak: drain took %s, %d not terminal\n",
               absl::FormatDuration(absl::Now() - drain_start).c_str(),
               not_drained);
  absl::StatusOr<absl::flat_hash_map<std::string, v1::Task>> final_tasks =
      clients.FinalTasks();
  clients.StopStreams();
  stop_monitor.Notify();
  monitor.join();
  ASSERT_TRUE(final_tasks.ok()) << final_tasks.status();

  const SoakCounts counts = ledger.Check(*final_tasks);
  const int64_t max_rss_mb = max_rss_kb.load() / 1024;
  std::cout << "acked=" << counts.acked << " completed=" << counts.completed
            << " cancelled=" << counts.cancelled << " failed=" << counts.failed
            << " retried=" << counts.retried << " lost=" << counts.lost
            << " changed=" << counts.changed << " max_rss_mb=" << max_rss_mb
            << std::endl;
  std::fprintf(stderr,
               "soak: duplicated=%d double_terminal=%d not_terminal=%d "
               "observed_terminal=%d violations=%d rss_bound_mb=%lld; %s\n",
               counts.duplicated, counts.double_terminal, counts.not_terminal,
               counts.observed, ledger.violations(),
               static_cast<long long>(config.max_rss_mb),
               stats.ToString().c_str());
  for (const std::string& p : ledger.Problems()) {
    std::fprintf(stderr, "soak: problem: %s\n", p.c_str());
  }

  EXPECT_GT(counts.acked, 0);
  EXPECT_EQ(counts.lost, 0);
  EXPECT_EQ(counts.changed, 0);
  EXPECT_EQ(counts.duplicated, 0);
  EXPECT_EQ(counts.double_terminal, 0);
  EXPECT_EQ(ledger.violations(), 0);
  EXPECT_GT(max_rss_mb, 0) << "the server's RSS was never read";
  EXPECT_LT(max_rss_mb, config.max_rss_mb) << "server RSS passed the bound";

  absl::StatusOr<int> stopped = fleet->StopServer();
  EXPECT_TRUE(stopped.ok()) << stopped.status();
  if (stopped.ok()) {
    EXPECT_EQ(testing::DescribeWaitStatus(*stopped), "exit 0");
  }
  std::fprintf(stderr, "soak: done after %s\n",
               absl::FormatDuration(absl::Now() - start).c_str());
}

}  // namespace
}  // namespace taskd::soak
