#include "clients/cpp/command_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

extern char** environ;

namespace taskd {
namespace {

constexpr size_t kChunk = 64 << 10;

absl::Status ErrnoError(absl::string_view what, int err) {
  const bool exhausted =
      err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM;
  return absl::Status(exhausted ? absl::StatusCode::kResourceExhausted
                                : absl::StatusCode::kInternal,
                      absl::StrCat(what, ": ", strerror(err)));
}

// Owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    Reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

absl::Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return absl::OkStatus();
}

void SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

absl::Status ValidateOptions(const CommandOptions& options) {
  if (options.command.empty()) {
    return absl::InvalidArgumentError("empty command");
  }
  if (options.command.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("command contains a NUL byte");
  }
  for (const auto& [name, value] : options.env) {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos ||
        value.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid environment variable: ", name));
    }
  }
  return absl::OkStatus();
}

// The inherited environment with `extra` added or replacing.
std::vector<std::string> BuildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  absl::flat_hash_set<std::string> replaced;
  for (const auto& [name, value] : extra) replaced.insert(name);
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view entry(*e);
    if (!replaced.contains(entry.substr(0, entry.find('=')))) {
      env.emplace_back(entry);
    }
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

// pidfd_open(2) through syscall(): glibc 2.36's <sys/pidfd.h> lacks C linkage
// for C++. -1 where the kernel has no pidfds (before 5.3).
int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// Reads what is available from `fd` into `sink`, at most `*budget` bytes.
// Returns false at EOF or on an error, when the fd is finished.
bool ReadAvailable(int fd, std::string* sink, size_t* budget) {
  char buffer[kChunk];
  while (*budget > 0) {
    const ssize_t n = read(fd, buffer, std::min(sizeof(buffer), *budget));
    if (n > 0) {
      *budget -= n;
      if (sink != nullptr) sink->append(buffer, n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CommandInterrupter>>
CommandInterrupter::Create() {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return ErrnoError("eventfd", errno);
  return std::unique_ptr<CommandInterrupter>(new CommandInterrupter(fd));
}

CommandInterrupter::~CommandInterrupter() { close(fd_); }

void CommandInterrupter::Trigger() const {
  const uint64_t one = 1;
  // Cannot fail short of counter overflow, which leaves it readable anyway.
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof(one));
}

absl::Status BecomeChildSubreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return ErrnoError("prctl(PR_SET_CHILD_SUBREAPER)", errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<CommandResult> RunCommand(
    const CommandOptions& options, const CommandInterrupter* interrupter) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;

  // A reader that exits early must not kill us with SIGPIPE.
  sigset_t sigpipe_set, old_mask;
  sigemptyset(&sigpipe_set);
  sigaddset(&sigpipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe_set, &old_mask);
  absl::Cleanup restore_mask = [&] {
    sigset_t pending;
    const timespec zero = {0, 0};
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) &&
        !sigismember(&old_mask, SIGPIPE)) {
      sigtimedwait(&sigpipe_set, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  };

  UniqueFd stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w;
  for (auto [r, w] : {std::pair{&stdin_r, &stdin_w},
                      std::pair{&stdout_r, &stdout_w},
                      std::pair{&stderr_r, &stderr_w}}) {
    if (absl::Status s = MakePipe(r, w); !s.ok()) return s;
  }

  std::vector<std::string> env = BuildEnvironment(options.env);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", command = options.command;
  char* argv[] = {sh.data(), dash_c.data(), command.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdin_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, stdout_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, stderr_w.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // setpgid(0, 0) in the child: the shell leads a new process group.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t empty_set, all_signals;
  sigemptyset(&empty_set);
  sigfillset(&all_signals);
  posix_spawnattr_setsigmask(&attr, &empty_set);
  posix_spawnattr_setsigdefault(&attr, &all_signals);
  pid_t pid = -1;
  const int spawn_error =
      posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (spawn_error != 0) return ErrnoError("posix_spawn /bin/sh", spawn_error);
  stdin_r.Reset();
  stdout_w.Reset();
  stderr_w.Reset();

  CommandResult result;
  result.pgid = pid;

  // Readable when the shell has exited (it stays a zombie until reaped, so
  // its pid — the group id — cannot be reused while we kill the group).
  UniqueFd exit_fd(PidfdOpen(pid));
  std::thread exit_waiter;
  if (!exit_fd.valid()) {  // kernels before 5.3: a thread blocks in waitid
    exit_fd.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!exit_fd.valid()) {
      kill(-pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return ErrnoError("eventfd", errno);
    }
    exit_waiter = std::thread([pid, fd = exit_fd.get()] {
      siginfo_t info;
      while (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) != 0 &&
             errno == EINTR) {
      }
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
    });
  }

  SetNonBlocking(stdout_r.get());
  SetNonBlocking(stderr_r.get());
  SetNonBlocking(stdin_w.get());
  size_t input_offset = 0;
  if (options.input.empty()) stdin_w.Reset();

  enum class KillStage { kNone, kTerm, kKill };
  KillStage stage = KillStage::kNone;
  absl::Time term_time;
  bool watch_interrupter = interrupter != nullptr;
  auto begin_kill = [&](CommandResult::StopReason reason) {
    if (result.stop_reason == CommandResult::StopReason::kNone) {
      result.stop_reason = reason;
    }
    if (stage == KillStage::kNone) {
      kill(-pid, SIGTERM);
      stage = KillStage::kTerm;
      term_time = absl::Now();
    }
  };
  auto trim_stderr = [&] {
    if (result.stderr_tail.size() > 2 * options.stderr_tail_bytes + kChunk) {
      result.stderr_tail.erase(
          0, result.stderr_tail.size() - options.stderr_tail_bytes);
    }
  };

  bool exited = false;
  while (!exited) {
    pollfd fds[5];
    int n = 0;
    auto add = [&](int fd, short events) {
      if (fd < 0) return -1;
      fds[n] = {fd, events, 0};
      return n++;
    };
    const int i_exit = add(exit_fd.get(), POLLIN);
    const int i_out = add(stdout_r.get(), POLLIN);
    const int i_err = add(stderr_r.get(), POLLIN);
    const int i_in = add(stdin_w.get(), POLLOUT);
    const int i_int = add(watch_interrupter ? interrupter->fd() : -1, POLLIN);

    absl::Time wake = absl::InfiniteFuture();
    if (stage == KillStage::kNone) wake = options.deadline;
    if (stage == KillStage::kTerm) wake = term_time + options.grace;
    int timeout_ms = -1;
    if (wake != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(wake - absl::Now(),
                                               absl::Milliseconds(1))),
          0, 1 << 30));
    }
    if (poll(fds, n, timeout_ms) < 0 && errno != EINTR) {
      const int err = errno;
      kill(-pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      if (exit_waiter.joinable()) exit_waiter.join();
      return ErrnoError("poll", err);
    }
    auto ready = [&](int i) { return i >= 0 && fds[i].revents != 0; };

    if (ready(i_out)) {
      std::string chunk;
      size_t budget = kChunk;
      const bool open = ReadAvailable(stdout_r.get(), &chunk, &budget);
      if (result.stop_reason != CommandResult::StopReason::kOutputLimit) {
        if (result.output.size() + chunk.size() > options.max_output_bytes) {
          begin_kill(CommandResult::StopReason::kOutputLimit);
          result.stop_reason = CommandResult::StopReason::kOutputLimit;
        } else {
          result.output += chunk;
        }
      }
      if (!open) stdout_r.Reset();
    }
    if (ready(i_err)) {
      size_t budget = kChunk;
      if (!ReadAvailable(stderr_r.get(), &result.stderr_tail, &budget)) {
        stderr_r.Reset();
      }
      trim_stderr();
    }
    if (ready(i_in)) {
      const size_t len = std::min(kChunk, options.input.size() - input_offset);
      const ssize_t w =
          write(stdin_w.get(), options.input.data() + input_offset, len);
      if (w > 0) input_offset += w;
      if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
          input_offset == options.input.size() ||
          (fds[i_in].revents & (POLLERR | POLLHUP))) {
        stdin_w.Reset();  // done, or the command closed its stdin
      }
    }
    if (ready(i_int)) {
      watch_interrupter = false;
      begin_kill(CommandResult::StopReason::kCancelled);
    }
    const absl::Time now = absl::Now();
    if (stage == KillStage::kNone && now >= options.deadline) {
      begin_kill(CommandResult::StopReason::kDeadline);
    }
    if (stage == KillStage::kTerm && now >= term_time + options.grace) {
      kill(-pid, SIGKILL);
      stage = KillStage::kKill;
    }
    exited = ready(i_exit);
  }

  // The shell is gone; end whatever it left running in its group, then reap
  // it and (as subreaper) the rest of the group.
  kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  while (waitpid(-pid, nullptr, 0) > 0 || errno == EINTR) {
  }
  if (exit_waiter.joinable()) exit_waiter.join();

  // Collect what was written before the exit; bounded in case a process that
  // left the group still holds the pipes.
  size_t budget = options.max_output_bytes + kChunk;
  if (stdout_r.valid()) {
    std::string rest;
    ReadAvailable(stdout_r.get(), &rest, &budget);
    if (result.stop_reason != CommandResult::StopReason::kOutputLimit) {
      if (result.output.size() + rest.size() > options.max_output_bytes) {
        result.stop_reason = CommandResult::StopReason::kOutputLimit;
      } else {
        result.output += rest;
      }
    }
  }
  if (stderr_r.valid()) {
    size_t err_budget = 4 * options.stderr_tail_bytes + kChunk;
    ReadAvailable(stderr_r.get(), &result.stderr_tail, &err_budget);
  }
  if (result.stderr_tail.size() > options.stderr_tail_bytes) {
    result.stderr_tail.erase(
        0, result.stderr_tail.size() - options.stderr_tail_bytes);
  }
  if (result.stop_reason == CommandResult::StopReason::kOutputLimit) {
    result.output.clear();
  }

  if (WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace taskd
