// Crash test for durable mode (DESIGN.md, reliability invariants 1 and 2).
//
// Runs the real `services/taskd` binary with --durability=sync as a
// subprocess. Eight client threads submit 20,000 tasks, each with its own
// idempotency key, retrying a key until it is acknowledged; meanwhile a killer
// thread SIGKILLs the server five times at random points and restarts it on
// the same data directory. Afterwards it checks, against the last server:
//   lost:       acknowledged ids for which GetTask says NOT_FOUND;
//   duplicated: keys that map to more than one task (ListTasks, grouped by
//               spec.idempotency_key, plus the acknowledged id);
//   completed:  tasks a Worker ran to SUCCEEDED, each with exactly one
//               terminal event on a Stream.
// and prints one line `acked=N lost=N duplicated=N completed=N` to stdout.
// Diagnostics (seed, kill points, server logs) go to stderr. The seed comes
// from TASKD_CRASH_SEED when set, so a failing run can be repeated.
//
// Every wait has a deadline; the server listens on 127.0.0.1 only. The
// checks after the submit phase are in crash_verify.cc; the server runs
// through tests/taskd_process.h.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/crash_verify.h"
#include "tests/taskd_process.h"

namespace taskd {
namespace {

using crash_test::CompleteAll;
using crash_test::Completion;
using crash_test::CountDuplicated;
using crash_test::FindAcked;
using crash_test::kCallTimeout;
using crash_test::kClientThreads;
using crash_test::kQueue;
using crash_test::kType;
using crash_test::ListAll;
using crash_test::NewClient;
using crash_test::Retryable;
using testing::DescribeWaitStatus;
using testing::TaskdProcess;

constexpr int kTasks = 20000;
constexpr int kKills = 5;
constexpr int kMinKillPoint = 1000;
constexpr int kMaxKillPoint = 19000;

// Limits. The whole test normally takes well under a minute.
constexpr absl::Duration kSubmitPhaseLimit = absl::Seconds(150);
constexpr absl::Duration kStartLimit = absl::Seconds(60);
constexpr absl::Duration kExitLimit = absl::Seconds(15);
constexpr absl::Duration kRetryPause = absl::Milliseconds(50);
constexpr int kMaxAttemptsPerKey = 2000;

std::string TempDir() {
  if (const char* dir = std::getenv("TEST_TMPDIR"); dir != nullptr) return dir;
  char pattern[] = "/tmp/taskd-crash-XXXXXX";
  const char* dir = mkdtemp(pattern);
  return dir != nullptr ? dir : "/tmp";
}

uint64_t Seed() {
  uint64_t seed = 0;
  if (const char* s = std::getenv("TASKD_CRASH_SEED");
      s != nullptr && absl::SimpleAtoi(s, &seed)) {
    return seed;
  }
  return std::random_device{}();
}

v1::TaskSpec CrashSpec(int n) {
  v1::TaskSpec spec;
  spec.set_queue(kQueue);
  spec.set_type(kType);
  spec.set_payload(absl::StrCat("payload-", n));
  spec.set_idempotency_key(absl::StrCat("key-", n));
  return spec;
}

// State shared by the client threads, the killer and the test body: the
// current server's client, and what was acknowledged. Thread-safe.
class SubmitState {
 public:
  SubmitState() : acked_ids_(kTasks) {}

  void SetTarget(const std::string& target) {
    absl::MutexLock lock(&mu_);
    target_ = target;
    client_ = std::make_shared<TaskClient>(NewClient(target));
    ++generation_;
  }

  // The current client and its generation; null after Abort().
  std::shared_ptr<TaskClient> Client(int* generation) {
    absl::MutexLock lock(&mu_);
    *generation = generation_;
    return aborted_ ? nullptr : client_;
  }

  // Waits at most `limit` for a server newer than `generation` (or an abort).
  void WaitForNewTarget(int generation, absl::Duration limit) {
    absl::MutexLock lock(&mu_);
    auto changed = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return generation_ != generation || aborted_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&changed), limit);
  }

  void Ack(int n, const std::string& id, bool deduplicated) {
    absl::MutexLock lock(&mu_);
    acked_ids_[n] = id;
    ++acked_;
    if (deduplicated) ++deduplicated_acks_;
  }

  void CountRetry() {
    absl::MutexLock lock(&mu_);
    ++retries_;
  }

  // Waits until at least `count` keys are acknowledged; false on abort or
  // when `deadline` passes first.
  bool WaitAcked(int count, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto reached = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return acked_ >= count || aborted_;
    };
    return mu_.AwaitWithDeadline(absl::Condition(&reached), deadline) &&
           !aborted_;
  }

  // Stops every thread; the first reason is kept.
  void Abort(const std::string& reason) {
    absl::MutexLock lock(&mu_);
    if (!aborted_) abort_reason_ = reason;
    aborted_ = true;
  }

  std::string target() {
    absl::MutexLock lock(&mu_);
    return target_;
  }
  std::string AbortReason() {
    absl::MutexLock lock(&mu_);
    return aborted_ ? abort_reason_ : "";
  }
  int acked() {
    absl::MutexLock lock(&mu_);
    return acked_;
  }
  int deduplicated_acks() {
    absl::MutexLock lock(&mu_);
    return deduplicated_acks_;
  }
  int retries() {
    absl::MutexLock lock(&mu_);
    return retries_;
  }
  // acked_ids()[n] is the id acknowledged for key-<n>, empty if none.
  std::vector<std::string> acked_ids() {
    absl::MutexLock lock(&mu_);
    return acked_ids_;
  }

 private:
  absl::Mutex mu_;
  std::string target_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<TaskClient> client_ ABSL_GUARDED_BY(mu_);
  int generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> acked_ids_ ABSL_GUARDED_BY(mu_);
  int acked_ ABSL_GUARDED_BY(mu_) = 0;
  int deduplicated_acks_ ABSL_GUARDED_BY(mu_) = 0;
  int retries_ ABSL_GUARDED_BY(mu_) = 0;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  std::string abort_reason_ ABSL_GUARDED_BY(mu_);
};

// One client thread: takes the next key and submits it until acknowledged,
// following the server across restarts.
void SubmitLoop(SubmitState& state, std::atomic<int>& next_key,
                absl::Time deadline) {
  CallOptions options;
  options.timeout = kCallTimeout;
  while (true) {
    const int n = next_key.fetch_add(1);
    if (n >= kTasks) return;
    const v1::TaskSpec spec = CrashSpec(n);
    absl::Status last;
    for (int attempt = 0;; ++attempt) {
      int generation = 0;
      std::shared_ptr<TaskClient> client = state.Client(&generation);
      if (client == nullptr) return;  // aborted
      if (attempt >= kMaxAttemptsPerKey || absl::Now() >= deadline) {
        state.Abort(absl::StrCat(spec.idempotency_key(),
                                 " not acknowledged after ", attempt,
                                 " attempts; last error: ", last.ToString()));
        return;
      }
      absl::StatusOr<v1::SubmitTaskResponse> response =
          client->Submit(spec, options);
      if (response.ok()) {
        if (response->task().spec().idempotency_key() !=
                spec.idempotency_key() ||
            response->task().id().empty()) {
          state.Abort(absl::StrCat("submit of ", spec.idempotency_key(),
                                   " answered with task ",
                                   response->task().ShortDebugString()));
          return;
        }
        state.Ack(n, response->task().id(), response->deduplicated());
        break;
      }
      last = response.status();
      if (!Retryable(last.code())) {
        state.Abort(absl::StrCat("submit of ", spec.idempotency_key(),
                                 " failed for good: ", last.ToString()));
        return;
      }
      state.CountRetry();
      state.WaitForNewTarget(generation, kRetryPause);
    }
  }
}

// Starts server number `index` on `data_dir` and waits until it serves.
absl::StatusOr<std::unique_ptr<TaskdProcess>> StartTaskd(
    const std::string& data_dir, int index) {
  absl::StatusOr<std::string> binary = testing::FindTaskdBinary("", "");
  if (!binary.ok()) return binary.status();
  TaskdProcess::Options options;
  options.binary = *binary;
  // Flag names as services/main.cc defines them (absl flags: underscores).
  options.flags = {"--listen=127.0.0.1:0", "--durability=sync",
                   absl::StrCat("--data_dir=", data_dir), "--threads=2"};
  options.name = absl::StrCat("taskd#", index);
  options.echo_stderr = true;
  options.start_limit = kStartLimit;
  options.exit_limit = kExitLimit;
  return TaskdProcess::Start(std::move(options));
}

// The killer: at each kill point, SIGKILL the server, reap it, restart it on
// the same data directory and switch the clients over. Owns `*server`.
void KillLoop(SubmitState& state, const std::vector<int>& kill_points,
              const std::string& data_dir,
              std::unique_ptr<TaskdProcess>* server, absl::Time deadline) {
  for (int i = 0; i < static_cast<int>(kill_points.size()); ++i) {
    if (!state.WaitAcked(kill_points[i], deadline)) {
      state.Abort(absl::StrCat("kill point ", kill_points[i],
                               " not reached; acked=", state.acked()));
      return;
    }
    const int acked_at_kill = state.acked();
    absl::StatusOr<int> status = (*server)->Kill(SIGKILL);
    if (!status.ok()) {
      state.Abort(status.status().ToString());
      return;
    }
    server->reset();
    const absl::Time restart = absl::Now();
    absl::StatusOr<std::unique_ptr<TaskdProcess>> next =
        StartTaskd(data_dir, i + 1);
    if (!next.ok()) {
      state.Abort(
          absl::StrCat("restart ", i + 1, ": ", next.status().ToString()));
      return;
    }
    *server = *std::move(next);
    state.SetTarget((*server)->target());
    std::fprintf(stderr,
                 "crash_test: kill %d at acked=%d (point %d, %s); serving "
                 "again on port %d after %s; %s\n",
                 i + 1, acked_at_kill, kill_points[i],
                 DescribeWaitStatus(*status).c_str(), (*server)->port(),
                 absl::FormatDuration(absl::Now() - restart).c_str(),
                 (*server)->LastLineContaining("recovered").c_str());
  }
}

TEST(CrashTest, SigkillLosesNoAcknowledgedTask) {
  const std::string data_dir = absl::StrCat(TempDir(), "/data");
  const uint64_t seed = Seed();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> point(kMinKillPoint, kMaxKillPoint);
  std::vector<int> kill_points;
  for (int i = 0; i < kKills; ++i) kill_points.push_back(point(rng));
  std::sort(kill_points.begin(), kill_points.end());
  std::fprintf(stderr,
               "crash_test: seed=%llu (TASKD_CRASH_SEED repeats it) kill "
               "points at acked=%s; data dir %s\n",
               static_cast<unsigned long long>(seed),
               absl::StrJoin(kill_points, ",").c_str(), data_dir.c_str());

  absl::StatusOr<std::unique_ptr<TaskdProcess>> first = StartTaskd(data_dir, 0);
  ASSERT_TRUE(first.ok()) << first.status();
  std::unique_ptr<TaskdProcess> server = *std::move(first);

  SubmitState state;
  state.SetTarget(server->target());
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + kSubmitPhaseLimit;
  std::atomic<int> next_key{0};
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kClientThreads; ++t) {
      threads.emplace_back([&] { SubmitLoop(state, next_key, deadline); });
    }
    std::thread killer(
        [&] { KillLoop(state, kill_points, data_dir, &server, deadline); });
    for (std::thread& t : threads) t.join();
    killer.join();
  }
  const std::vector<std::string> acked_ids = state.acked_ids();
  const int acked = state.acked();
  std::fprintf(stderr,
               "crash_test: submit phase %s: acked=%d, %d acknowledged as "
               "deduplicated, %d retried calls\n",
               absl::FormatDuration(absl::Now() - start).c_str(), acked,
               state.deduplicated_acks(), state.retries());
  ASSERT_EQ(state.AbortReason(), "");
  ASSERT_EQ(acked, kTasks);
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(absl::flat_hash_set<std::string>(acked_ids.begin(), acked_ids.end())
                .size(),
            acked_ids.size())
      << "two keys were acknowledged with the same task id";

  int generation = 0;
  const TaskClient client = *state.Client(&generation);
  absl::StatusOr<std::vector<std::string>> existing =
      FindAcked(client, acked_ids);
  ASSERT_TRUE(existing.ok()) << existing.status();
  const int lost = acked - static_cast<int>(existing->size());

  absl::StatusOr<std::vector<v1::Task>> listed = ListAll(client, kQueue);
  ASSERT_TRUE(listed.ok()) << listed.status();
  int unexpected = 0;
  const int duplicated = CountDuplicated(*listed, acked_ids, &unexpected);
  std::fprintf(stderr, "crash_test: %zu tasks listed, %d without a known key\n",
               listed->size(), unexpected);

  absl::StatusOr<Completion> completion =
      CompleteAll(state.target(), client, *existing);
  ASSERT_TRUE(completion.ok()) << completion.status();

  std::cout << "acked=" << acked << " lost=" << lost
            << " duplicated=" << duplicated
            << " completed=" << completion->completed << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_EQ(unexpected, 0);
  EXPECT_EQ(completion->completed, acked);
  EXPECT_EQ(acked, kTasks);

  absl::StatusOr<int> exit_status = server->Stop();
  EXPECT_TRUE(exit_status.ok()) << exit_status.status();
  std::fprintf(
      stderr, "crash_test: last server stopped (%s) after %s\n",
      exit_status.ok() ? DescribeWaitStatus(*exit_status).c_str() : "killed",
      absl::FormatDuration(absl::Now() - start).c_str());
}

}  // namespace
}  // namespace taskd
