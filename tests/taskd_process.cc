#include "tests/taskd_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace taskd::testing {
namespace {

// Stderr lines kept for LastLineContaining(), and quoted in a start error.
constexpr size_t kKeptLines = 100;
constexpr size_t kQuotedLines = 20;
// How often the reader looks at stop_reader_ while the pipe is quiet.
constexpr int kReaderPollMs = 100;

// The N of "serving on ... (port N)", or 0.
int ServingPort(absl::string_view line) {
  const size_t at = line.find("(port ");
  if (line.find("serving on") == absl::string_view::npos ||
      at == absl::string_view::npos) {
    return 0;
  }
  const size_t end = line.find(')', at);
  int port = 0;
  if (end == absl::string_view::npos ||
      !absl::SimpleAtoi(line.substr(at + 6, end - at - 6), &port) ||
      port <= 0) {
    return 0;
  }
  return port;
}

}  // namespace

absl::StatusOr<std::string> FindTaskdBinary(const std::string& explicit_path,
                                            const std::string& argv0) {
  std::vector<std::string> candidates;
  if (!explicit_path.empty()) {
    candidates.push_back(explicit_path);
  } else if (const char* env = std::getenv("TASKD_BINARY"); env != nullptr) {
    candidates.push_back(env);
  } else {
    candidates.push_back("services/taskd");
    if (!argv0.empty()) {
      candidates.push_back(
          absl::StrCat(argv0, ".runfiles/taskd/services/taskd"));
    }
  }
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) return c;
  }
  return absl::NotFoundError(
      absl::StrCat("no taskd binary at ", candidates.front()));
}

std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) return absl::StrCat("signal ", WTERMSIG(status));
  if (WIFEXITED(status)) return absl::StrCat("exit ", WEXITSTATUS(status));
  return absl::StrCat("status ", status);
}

absl::StatusOr<std::unique_ptr<TaskdProcess>> TaskdProcess::Start(
    Options options) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: errno ", errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears FD_CLOEXEC on the child's fd 2; both pipe ends close.
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  std::vector<std::string> args = {options.binary};
  args.insert(args.end(), options.flags.begin(), options.flags.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err =
      posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    return absl::InternalError(
        absl::StrCat("posix_spawn ", options.binary, ": errno ", err));
  }
  std::unique_ptr<TaskdProcess> process(
      new TaskdProcess(std::move(options), pid, fds[0]));
  absl::StatusOr<int> port = process->WaitServing();
  if (!port.ok()) return port.status();  // the destructor kills and reaps
  process->port_ = *port;
  return process;
}

TaskdProcess::TaskdProcess(Options options, pid_t pid, int stderr_fd)
    : options_(std::move(options)), pid_(pid), stderr_fd_(stderr_fd) {
  reader_ = std::thread([this] { ReadStderr(); });
}

TaskdProcess::~TaskdProcess() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    Reap(options_.exit_limit).IgnoreError();
  }
  // The reader sees EOF once the child is gone, unless something it started
  // still holds the pipe; the flag covers that case.
  stop_reader_.store(true);
  reader_.join();
  close(stderr_fd_);
}

std::string TaskdProcess::target() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::string TaskdProcess::LastLineContaining(absl::string_view needle) const {
  absl::MutexLock lock(&mu_);
  for (auto it = lines_.rbegin(); it != lines_.rend(); ++it) {
    if (absl::string_view(*it).find(needle) != absl::string_view::npos) {
      return *it;
    }
  }
  return "";
}

absl::StatusOr<int> TaskdProcess::Kill(int signal) {
  if (!reaped_) kill(pid_, signal);
  return Reap(options_.exit_limit);
}

absl::StatusOr<int> TaskdProcess::Stop() {
  absl::StatusOr<int> status = Kill(SIGTERM);
  if (!status.ok() && !reaped_) Kill(SIGKILL).IgnoreError();
  return status;
}

absl::StatusOr<int> TaskdProcess::WaitServing() {
  std::string failure;
  {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return logged_port_ != 0 || eof_;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&ready), options_.start_limit)) {
      if (logged_port_ != 0) return logged_port_;
    } else {
      failure = absl::StrCat(options_.name, " not serving after ",
                             absl::FormatDuration(options_.start_limit));
    }
  }
  if (failure.empty()) {
    // Its stderr closed: it exited, or is about to.
    absl::StatusOr<int> status = Reap(absl::Seconds(1));
    return absl::FailedPreconditionError(absl::StrCat(
        options_.name, " exited before serving",
        status.ok() ? absl::StrCat(" (", DescribeWaitStatus(*status), ")") : "",
        ": ", KeptLines()));
  }
  return absl::DeadlineExceededError(absl::StrCat(failure, ": ", KeptLines()));
}

absl::StatusOr<int> TaskdProcess::Reap(absl::Duration limit) {
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
      // Not our child any more (ECHILD): never signal that pid again.
      reaped_ = true;
      return absl::InternalError(absl::StrCat("waitpid: errno ", errno));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          options_.name, " still running after ", absl::FormatDuration(limit)));
    }
    // A child's exit has no event to wait on here; poll it briefly.
    absl::SleepFor(absl::Milliseconds(2));
  }
}

// Until EOF (every writer gone, i.e. the server exited) or the destructor.
void TaskdProcess::ReadStderr() {
  std::string partial;
  char buf[4096];
  while (!stop_reader_.load()) {
    pollfd p{stderr_fd_, POLLIN, 0};
    const int n = poll(&p, 1, kReaderPollMs);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    const ssize_t got = read(stderr_fd_, buf, sizeof buf);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) break;
    partial.append(buf, got);
    size_t eol;
    while ((eol = partial.find('\n')) != std::string::npos) {
      OnLine(partial.substr(0, eol));
      partial.erase(0, eol + 1);
    }
  }
  if (!partial.empty()) OnLine(std::move(partial));
  absl::MutexLock lock(&mu_);
  eof_ = true;
}

void TaskdProcess::OnLine(std::string line) {
  if (options_.echo_stderr) {
    std::fprintf(stderr, "[%s] %s\n", options_.name.c_str(), line.c_str());
  }
  const int port = ServingPort(line);
  absl::MutexLock lock(&mu_);
  if (logged_port_ == 0) logged_port_ = port;
  lines_.push_back(std::move(line));
  if (lines_.size() > kKeptLines) lines_.pop_front();
}

std::string TaskdProcess::KeptLines() const {
  absl::MutexLock lock(&mu_);
  const size_t skip =
      lines_.size() > kQuotedLines ? lines_.size() - kQuotedLines : 0;
  return absl::StrJoin(lines_.begin() + skip, lines_.end(), " | ");
}

}  // namespace taskd::testing
