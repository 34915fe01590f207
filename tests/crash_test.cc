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
// Every wait has a deadline; the server listens on 127.0.0.1 only.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "clients/cpp/client.h"
#include "clients/cpp/task_context.h"
#include "clients/cpp/worker.h"
#include "gtest/gtest.h"

extern char** environ;

namespace taskd {
namespace {

constexpr int kTasks = 20000;
constexpr int kClientThreads = 8;
constexpr int kKills = 5;
constexpr int kMinKillPoint = 1000;
constexpr int kMaxKillPoint = 19000;
constexpr char kQueue[] = "crash";
constexpr char kType[] = "crash";
constexpr char kMarkerQueue[] = "crash-marker";

// Limits. The whole test normally takes well under a minute.
constexpr absl::Duration kCallTimeout = absl::Seconds(5);
constexpr absl::Duration kSubmitPhaseLimit = absl::Seconds(150);
constexpr absl::Duration kStartLimit = absl::Seconds(60);
constexpr absl::Duration kExitLimit = absl::Seconds(15);
constexpr absl::Duration kCompletionLimit = absl::Seconds(90);
constexpr absl::Duration kRetryPause = absl::Milliseconds(50);
constexpr int kMaxAttemptsPerKey = 2000;
constexpr int kMaxListPages = 200;
constexpr int kMaxStreamResumes = 20;
constexpr int kAwaitChunk = 1000;

// The server binary, relative to the runfiles root (the test's cwd).
std::string TaskdBinary() {
  const char* path = std::getenv("TASKD_BINARY");
  return path != nullptr ? path : "services/taskd";
}

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

// A `services/taskd` child process whose stderr is read by a thread of ours:
// each line is echoed to our stderr with a prefix, and the "serving on ...
// (port N)" line tells the port. Thread-safe. The destructor SIGKILLs a
// process still running, reaps it and joins the reader.
class TaskdProcess {
 public:
  static absl::StatusOr<std::unique_ptr<TaskdProcess>> Spawn(
      const std::vector<std::string>& args, std::string name) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("pipe2: errno ", errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 clears FD_CLOEXEC on the child's fd 2; both pipe ends close.
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    std::vector<std::string> copy = args;
    std::vector<char*> argv;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int err =
        posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (err != 0) {
      close(fds[0]);
      return absl::InternalError(
          absl::StrCat("posix_spawn ", args[0], ": errno ", err));
    }
    return std::unique_ptr<TaskdProcess>(
        new TaskdProcess(pid, fds[0], std::move(name)));
  }

  ~TaskdProcess() {
    if (!reaped_) {
      kill(pid_, SIGKILL);
      Wait(kExitLimit).IgnoreError();
    }
    stop_reader_.store(true);
    reader_.join();
    close(fd_);
  }

  pid_t pid() const { return pid_; }

  // The port once the server logged that it is serving; FAILED_PRECONDITION
  // when its stderr closed first (it exited), DEADLINE_EXCEEDED after `limit`.
  absl::StatusOr<int> WaitServing(absl::Duration limit) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return port_ != 0 || eof_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), limit)) {
      return absl::DeadlineExceededError(absl::StrCat(
          name_, " not serving after ", absl::FormatDuration(limit)));
    }
    if (port_ == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(name_, " exited before serving"));
    }
    return port_;
  }

  // The "recovered ..." line, if the server printed one.
  std::string RecoveryLine() {
    absl::MutexLock lock(&mu_);
    return recovery_line_;
  }

  void Signal(int sig) {
    if (!reaped_) kill(pid_, sig);
  }

  // Reaps the process, waiting at most `limit`; returns its wait status.
  absl::StatusOr<int> Wait(absl::Duration limit) {
    if (reaped_) return wait_status_;
    const absl::Time deadline = absl::Now() + limit;
    while (true) {
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        wait_status_ = status;
        return status;
      }
      if (r < 0 && errno != EINTR) {
        return absl::InternalError(absl::StrCat("waitpid: errno ", errno));
      }
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            name_, " still running after ", absl::FormatDuration(limit)));
      }
      // A child's exit has no event to wait on here; poll it briefly.
      absl::SleepFor(absl::Milliseconds(2));
    }
  }

 private:
  TaskdProcess(pid_t pid, int fd, std::string name)
      : pid_(pid), fd_(fd), name_(std::move(name)) {
    reader_ = std::thread([this] { ReadStderr(); });
  }

  // Until EOF (every writer gone, i.e. the server exited) or the destructor.
  void ReadStderr() {
    std::string partial;
    char buf[4096];
    while (!stop_reader_.load()) {
      pollfd p{fd_, POLLIN, 0};
      const int n = poll(&p, 1, 100);
      if (n < 0 && errno != EINTR) break;
      if (n <= 0) continue;
      const ssize_t got = read(fd_, buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) break;
      partial.append(buf, got);
      size_t eol;
      while ((eol = partial.find('\n')) != std::string::npos) {
        OnLine(partial.substr(0, eol));
        partial.erase(0, eol + 1);
      }
    }
    if (!partial.empty()) OnLine(partial);
    absl::MutexLock lock(&mu_);
    eof_ = true;
  }

  void OnLine(const std::string& line) {
    std::fprintf(stderr, "[%s] %s\n", name_.c_str(), line.c_str());
    absl::MutexLock lock(&mu_);
    if (line.find("recovered") != std::string::npos) recovery_line_ = line;
    const size_t at = line.find("(port ");
    if (port_ == 0 && line.find("serving on") != std::string::npos &&
        at != std::string::npos) {
      const size_t end = line.find(')', at);
      int port = 0;
      if (end != std::string::npos &&
          absl::SimpleAtoi(line.substr(at + 6, end - at - 6), &port) &&
          port > 0) {
        port_ = port;
      }
    }
  }

  // Constant after construction.
  const pid_t pid_;
  const int fd_;
  const std::string name_;
  std::thread reader_;
  std::atomic<bool> stop_reader_{false};

  // Used only by the thread that owns the object.
  bool reaped_ = false;
  int wait_status_ = 0;

  absl::Mutex mu_;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
  std::string recovery_line_ ABSL_GUARDED_BY(mu_);
};

std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  return absl::StrCat("status ", status);
}

// A client with its own subchannel pool, so a restarted server that happens
// to reuse a port is not hidden behind the old connection's backoff.
TaskClient NewClient(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return TaskClient(grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args));
}

// Errors a submit may see while the server is killed, restarting or slow.
bool Retryable(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
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

std::vector<std::string> ServerArgs(const std::string& data_dir) {
  // Flag names as services/main.cc defines them (absl flags: underscores).
  return {TaskdBinary(), "--listen=127.0.0.1:0", "--durability=sync",
          absl::StrCat("--data_dir=", data_dir), "--threads=2"};
}

// Starts server number `index` and waits until it serves.
absl::StatusOr<std::unique_ptr<TaskdProcess>> StartTaskd(
    const std::string& data_dir, int index, int* port) {
  absl::StatusOr<std::unique_ptr<TaskdProcess>> process =
      TaskdProcess::Spawn(ServerArgs(data_dir), absl::StrCat("taskd#", index));
  if (!process.ok()) return process.status();
  absl::StatusOr<int> serving = (*process)->WaitServing(kStartLimit);
  if (!serving.ok()) {
    absl::StatusOr<int> status = (*process)->Wait(absl::Seconds(1));
    return absl::Status(
        serving.status().code(),
        absl::StrCat(serving.status().message(),
                     status.ok()
                         ? absl::StrCat(" (", DescribeWaitStatus(*status), ")")
                         : ""));
  }
  *port = *serving;
  return process;
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
    (*server)->Signal(SIGKILL);
    absl::StatusOr<int> status = (*server)->Wait(kExitLimit);
    if (!status.ok()) {
      state.Abort(status.status().ToString());
      return;
    }
    server->reset();
    const absl::Time restart = absl::Now();
    int port = 0;
    absl::StatusOr<std::unique_ptr<TaskdProcess>> next =
        StartTaskd(data_dir, i + 1, &port);
    if (!next.ok()) {
      state.Abort(
          absl::StrCat("restart ", i + 1, ": ", next.status().ToString()));
      return;
    }
    *server = *std::move(next);
    state.SetTarget(absl::StrCat("127.0.0.1:", port));
    std::fprintf(stderr,
                 "crash_test: kill %d at acked=%d (point %d, %s); serving "
                 "again on port %d after %s; %s\n",
                 i + 1, acked_at_kill, kill_points[i],
                 DescribeWaitStatus(*status).c_str(), port,
                 absl::FormatDuration(absl::Now() - restart).c_str(),
                 (*server)->RecoveryLine().c_str());
  }
}

// Every task of `queue`, by ListTasks paging.
absl::StatusOr<std::vector<v1::Task>> ListAll(const TaskClient& client,
                                              const std::string& queue) {
  std::vector<v1::Task> tasks;
  v1::ListTasksRequest request;
  request.set_queue(queue);
  request.set_page_size(1000);
  CallOptions options;
  options.timeout = absl::Seconds(30);
  for (int page = 0; page < kMaxListPages; ++page) {
    absl::StatusOr<v1::ListTasksResponse> response =
        client.List(request, options);
    if (!response.ok()) return response.status();
    for (v1::Task& t : *response->mutable_tasks())
      tasks.push_back(std::move(t));
    if (response->next_page_token().empty()) return tasks;
    if (response->next_page_token() == request.page_token()) {
      return absl::InternalError("ListTasks returned the same page token");
    }
    request.set_page_token(response->next_page_token());
  }
  return absl::DeadlineExceededError(
      absl::StrCat("ListTasks: more than ", kMaxListPages, " pages"));
}

// GetTask for every acknowledged id, on kClientThreads threads. The ids that
// exist (NOT_FOUND ones are lost), or an error when some id could not be
// checked or GetTask returned another key's task.
absl::StatusOr<std::vector<std::string>> FindAcked(
    const TaskClient& client, const std::vector<std::string>& acked_ids) {
  std::vector<char> found(acked_ids.size(), 0);
  std::atomic<int> next{0};
  std::atomic<int> lost{0};
  absl::Mutex mu;
  absl::Status error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kClientThreads; ++t) {
    threads.emplace_back([&] {
      CallOptions options;
      options.timeout = kCallTimeout;
      for (int n;
           (n = next.fetch_add(1)) < static_cast<int>(acked_ids.size());) {
        absl::StatusOr<v1::Task> task;
        for (int attempt = 0; attempt < 5; ++attempt) {
          task = client.Get(acked_ids[n], options);
          if (task.ok() || !Retryable(task.status().code())) break;
        }
        if (task.ok() &&
            task->spec().idempotency_key() == absl::StrCat("key-", n)) {
          found[n] = 1;  // each thread writes distinct elements
        } else if (absl::IsNotFound(task.status())) {
          if (lost.fetch_add(1) < 10) {
            std::fprintf(stderr, "crash_test: lost key-%d id %s\n", n,
                         acked_ids[n].c_str());
          }
        } else {
          absl::MutexLock lock(&mu);
          if (error.ok()) {
            error = task.ok() ? absl::InternalError(absl::StrCat(
                                    "GetTask(", acked_ids[n], ") for key-", n,
                                    " returned ", task->ShortDebugString()))
                              : task.status();
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  absl::MutexLock lock(&mu);
  if (!error.ok()) return error;
  std::vector<std::string> existing;
  for (size_t n = 0; n < acked_ids.size(); ++n) {
    if (found[n]) existing.push_back(acked_ids[n]);
  }
  return existing;
}

// Keys whose tasks (listed, plus the acknowledged id) are more than one.
int CountDuplicated(const std::vector<v1::Task>& listed,
                    const std::vector<std::string>& acked_ids,
                    int* unexpected) {
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_key;
  for (int n = 0; n < static_cast<int>(acked_ids.size()); ++n) {
    by_key[absl::StrCat("key-", n)].insert(acked_ids[n]);
  }
  *unexpected = 0;
  for (const v1::Task& t : listed) {
    auto it = by_key.find(t.spec().idempotency_key());
    if (it == by_key.end()) {
      ++*unexpected;
      continue;
    }
    it->second.insert(t.id());
  }
  int duplicated = 0;
  for (const auto& [key, ids] : by_key) {
    if (ids.size() > 1) {
      if (++duplicated <= 10) {
        std::fprintf(stderr, "crash_test: %s has tasks %s\n", key.c_str(),
                     absl::StrJoin(ids, ", ").c_str());
      }
    }
  }
  return duplicated;
}

// Terminal events per task id of kQueue, read from a Stream of everything.
// WaitLive() returns once the stream is known to deliver events (a marker
// task's event came through), so no later event is missed. The stream ends
// by itself once every expected id had a terminal event. Thread-safe.
class TerminalEventCounter {
 public:
  TerminalEventCounter(const std::string& target,
                       absl::flat_hash_set<std::string> expected,
                       absl::Time deadline)
      : client_(NewClient(target)),
        stub_(v1::TaskService::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))),
        expected_(std::move(expected)),
        deadline_(deadline) {
    thread_ = std::thread([this] { Run(); });
  }
  ~TerminalEventCounter() {
    Finish(absl::ZeroDuration()).IgnoreError();
    thread_.join();
  }

  // Submits marker tasks (another queue) until one's event arrives.
  absl::Status WaitLive() {
    CallOptions options;
    options.timeout = kCallTimeout;
    for (int i = 0; i < 20 && !finished_.HasBeenNotified(); ++i) {
      v1::TaskSpec marker;
      marker.set_queue(kMarkerQueue);
      marker.set_type("marker");
      absl::StatusOr<v1::SubmitTaskResponse> r =
          client_.Submit(marker, options);
      if (!r.ok()) return r.status();
      if (live_.WaitForNotificationWithTimeout(absl::Milliseconds(500))) {
        return absl::OkStatus();
      }
    }
    return absl::DeadlineExceededError(
        absl::StrCat("event stream not live: ", StreamStatus().ToString()));
  }

  // Waits at most `grace` for the stream to end by itself, then cancels it.
  // Returns why it ended, OK when every expected id had a terminal event.
  absl::Status Finish(absl::Duration grace) {
    if (!finished_.WaitForNotificationWithTimeout(grace)) {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    finished_.WaitForNotification();  // bounded by the cancel or the deadline
    return StreamStatus();
  }

  // Number of terminal events seen for `id`.
  int TerminalEvents(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = terminal_events_.find(id);
    return it == terminal_events_.end() ? 0 : it->second;
  }

 private:
  void Run() {
    uint64_t next_sequence = 0;  // 0: from now on
    grpc::Status status;
    for (int resume = 0; resume <= kMaxStreamResumes; ++resume) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(deadline_));
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) break;
        context_ = &context;
      }
      v1::StreamRequest request;
      request.set_from_sequence(next_sequence);
      std::unique_ptr<grpc::ClientReader<v1::TaskEvent>> reader =
          stub_->Stream(&context, request);
      v1::TaskEvent event;
      bool all_seen = false;
      while (!all_seen && reader->Read(&event)) {
        next_sequence = event.sequence() + 1;
        all_seen = OnEvent(event);
      }
      if (all_seen) {
        context.TryCancel();
        while (reader->Read(&event)) {
        }
      }
      status = reader->Finish();
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
      }
      if (all_seen) {
        status = grpc::Status::OK;
        break;
      }
      // A slow consumer is cut off with RESOURCE_EXHAUSTED and may resume.
      if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
          next_sequence == 0) {
        break;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      if (seen_terminal_ < static_cast<int>(expected_.size())) {
        stream_status_ = absl::Status(
            status.ok() ? absl::StatusCode::kAborted
                        : static_cast<absl::StatusCode>(status.error_code()),
            absl::StrCat("event stream ended (", status.error_message(),
                         ") after terminal events for ", seen_terminal_, " of ",
                         expected_.size(), " tasks"));
      }
    }
    finished_.Notify();
  }

  // True once every expected id had a terminal event.
  bool OnEvent(const v1::TaskEvent& event) {
    if (event.task().spec().queue() == kMarkerQueue) {
      if (!live_.HasBeenNotified()) live_.Notify();
      return false;
    }
    if (event.task().spec().queue() != kQueue) return false;
    const bool terminal = event.type() == v1::EVENT_TYPE_SUCCEEDED ||
                          event.type() == v1::EVENT_TYPE_FAILED ||
                          event.type() == v1::EVENT_TYPE_CANCELLED;
    if (!terminal) return false;
    absl::MutexLock lock(&mu_);
    if (++terminal_events_[event.task().id()] == 1 &&
        expected_.contains(event.task().id())) {
      ++seen_terminal_;
    }
    return seen_terminal_ >= static_cast<int>(expected_.size());
  }

  absl::Status StreamStatus() {
    absl::MutexLock lock(&mu_);
    return stream_status_;
  }

  // Constant after construction.
  const TaskClient client_;
  const std::unique_ptr<v1::TaskService::Stub> stub_;
  const absl::flat_hash_set<std::string> expected_;
  const absl::Time deadline_;

  absl::Notification live_;
  absl::Notification finished_;
  absl::Mutex mu_;
  // The stream's context while a call is open, for Finish() to cancel it.
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, int> terminal_events_ ABSL_GUARDED_BY(mu_);
  int seen_terminal_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status stream_status_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;  // last: started once everything above exists
};

struct Completion {
  int completed = 0;  // SUCCEEDED, with exactly one terminal event
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  int not_terminal = 0;       // includes ids whose Await call failed
  int wrong_event_count = 0;  // not exactly one terminal event
};

// Runs a Worker over kQueue until every id in `ids` is terminal (or the
// limit passes), and counts the outcomes. An error only when the check
// itself could not be set up.
absl::StatusOr<Completion> CompleteAll(const std::string& target,
                                       const TaskClient& client,
                                       const std::vector<std::string>& ids) {
  const absl::Time deadline = absl::Now() + kCompletionLimit;
  TerminalEventCounter events(
      target, absl::flat_hash_set<std::string>(ids.begin(), ids.end()),
      deadline);
  if (absl::Status s = events.WaitLive(); !s.ok()) return s;

  std::atomic<int> attempts{0};
  Worker::Options options;
  options.target = target;
  options.queues = {kQueue};
  options.concurrency = 32;
  options.worker_id = "crash-test-worker";
  Worker worker(options);
  absl::Status registered =
      worker.RegisterHandler(kType, [&](TaskContext& ctx) {
        attempts.fetch_add(1);
        return absl::StatusOr<std::string>(absl::StrCat("done ", ctx.id()));
      });
  if (!registered.ok()) return registered;
  if (absl::Status s = worker.Start(); !s.ok()) return s;

  // The state each task had when its Await answered.
  std::vector<v1::TaskState> states(ids.size(), v1::TASK_STATE_UNSPECIFIED);
  bool await_failed = false;
  for (size_t begin = 0; begin < ids.size(); begin += kAwaitChunk) {
    const size_t end = std::min(ids.size(), begin + kAwaitChunk);
    std::vector<std::string> chunk(ids.begin() + begin, ids.begin() + end);
    absl::StatusOr<v1::AwaitResponse> done = client.AwaitUntilDone(
        chunk, v1::AWAIT_MODE_ALL,
        std::max(deadline - absl::Now(), absl::Seconds(1)));
    if (!done.ok() || done->tasks_size() != static_cast<int>(chunk.size())) {
      const std::string why = done.ok()
                                  ? absl::StrCat(done->tasks_size(), " tasks")
                                  : done.status().ToString();
      std::fprintf(stderr, "crash_test: Await of ids %zu..%zu: %s\n", begin,
                   end - 1, why.c_str());
      await_failed = true;
      continue;
    }
    for (size_t i = 0; i < chunk.size(); ++i) {
      states[begin + i] = done->tasks(i).state();
    }
  }
  // Every terminal event precedes the Await answers; allow for delivery.
  const absl::Status stream_status =
      events.Finish(await_failed ? absl::ZeroDuration() : absl::Seconds(10));
  worker.Stop();
  if (!stream_status.ok()) {
    std::fprintf(stderr, "crash_test: %s\n", stream_status.ToString().c_str());
  }

  Completion out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int terminal_events = events.TerminalEvents(ids[i]);
    if (terminal_events != 1 && ++out.wrong_event_count <= 10) {
      std::fprintf(stderr, "crash_test: task %s had %d terminal events\n",
                   ids[i].c_str(), terminal_events);
    }
    switch (states[i]) {
      case v1::TASK_STATE_SUCCEEDED:
        ++out.succeeded;
        if (terminal_events == 1) ++out.completed;
        break;
      case v1::TASK_STATE_FAILED:
        ++out.failed;
        break;
      case v1::TASK_STATE_CANCELLED:
        ++out.cancelled;
        break;
      default:
        ++out.not_terminal;
    }
  }
  std::fprintf(stderr,
               "crash_test: worker ran %d attempts; succeeded=%d failed=%d "
               "cancelled=%d not_terminal=%d not_one_terminal_event=%d\n",
               attempts.load(), out.succeeded, out.failed, out.cancelled,
               out.not_terminal, out.wrong_event_count);
  return out;
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

  int port = 0;
  absl::StatusOr<std::unique_ptr<TaskdProcess>> first =
      StartTaskd(data_dir, 0, &port);
  ASSERT_TRUE(first.ok()) << first.status();
  std::unique_ptr<TaskdProcess> server = *std::move(first);

  SubmitState state;
  state.SetTarget(absl::StrCat("127.0.0.1:", port));
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

  server->Signal(SIGTERM);
  absl::StatusOr<int> exit_status = server->Wait(kExitLimit);
  EXPECT_TRUE(exit_status.ok()) << exit_status.status();
  std::fprintf(
      stderr, "crash_test: last server stopped (%s) after %s\n",
      exit_status.ok() ? DescribeWaitStatus(*exit_status).c_str() : "killed",
      absl::FormatDuration(absl::Now() - start).c_str());
}

}  // namespace
}  // namespace taskd
