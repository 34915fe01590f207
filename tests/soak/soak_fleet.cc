#include "tests/soak/soak_fleet.h"

#include <csignal>
#include <utility>

#include "absl/strings/str_cat.h"

namespace taskd::soak {
namespace {

constexpr absl::Duration kStartLimit = absl::Seconds(60);
constexpr absl::Duration kExitLimit = absl::Seconds(15);

// A /bin/sh -c script: announce in the form TaskdProcess waits for, then
// become the worker ($0 is the binary, the rest its arguments).
std::string AnnounceAndExec(const std::string& target) {
  return absl::StrCat("echo 'soak: taskd-worker serving on ", target,
                      " (port 1)' >&2; exec \"$0\" \"$@\"");
}

}  // namespace

absl::StatusOr<std::unique_ptr<SoakFleet>> SoakFleet::Start(Options options) {
  std::unique_ptr<SoakFleet> fleet(new SoakFleet(std::move(options)));
  if (absl::Status s = fleet->StartServer(0); !s.ok()) return s;
  const int n = fleet->options_.shell_workers + fleet->options_.sdk_workers;
  fleet->workers_.resize(n);
  for (int i = 0; i < n; ++i) {
    if (absl::Status s = fleet->StartWorker(i); !s.ok()) return s;
  }
  return fleet;
}

absl::Status SoakFleet::StartServer(int port) {
  testing::TaskdProcess::Options o;
  o.binary = options_.taskd_binary;
  o.flags = {absl::StrCat("--listen=127.0.0.1:", port), "--durability=sync",
             absl::StrCat("--data_dir=", options_.data_dir)};
  o.flags.insert(o.flags.end(), options_.server_flags.begin(),
                 options_.server_flags.end());
  o.name = absl::StrCat("taskd#", server_starts_++);
  o.echo_stderr = true;
  o.start_limit = kStartLimit;
  o.exit_limit = kExitLimit;
  absl::StatusOr<std::unique_ptr<testing::TaskdProcess>> server =
      testing::TaskdProcess::Start(std::move(o));
  if (!server.ok()) return server.status();
  server_ = *std::move(server);
  if (port == 0) {
    port_ = server_->port();
    target_ = server_->target();
  } else if (server_->port() != port) {
    return absl::InternalError(absl::StrCat("taskd serves on port ",
                                            server_->port(), ", not ", port));
  }
  server_pid_.store(server_->pid());
  return absl::OkStatus();
}

std::string SoakFleet::ServerLine(absl::string_view needle) const {
  return server_ != nullptr ? server_->LastLineContaining(needle) : "";
}

absl::Status SoakFleet::KillAndRestartServer(int* killed) {
  server_pid_.store(0);
  absl::StatusOr<int> status = server_->Kill(SIGKILL);
  if (!status.ok()) return status.status();
  *killed = *status;
  server_.reset();
  return StartServer(port_);
}

absl::StatusOr<int> SoakFleet::StopServer() {
  server_pid_.store(0);
  return server_->Stop();
}

std::string SoakFleet::WorkerName(int i) const {
  return i < options_.shell_workers
             ? absl::StrCat("taskd-worker#", i)
             : absl::StrCat("soak_worker#", i - options_.shell_workers);
}

absl::Status SoakFleet::KillWorker(int i) {
  if (workers_[i] == nullptr) return absl::OkStatus();
  absl::StatusOr<int> status = workers_[i]->Kill(SIGKILL);
  workers_[i].reset();
  return status.status();
}

absl::Status SoakFleet::StartWorker(int i) {
  if (workers_[i] != nullptr) return absl::OkStatus();
  testing::TaskdProcess::Options o;
  o.name = WorkerName(i);
  o.start_limit = kStartLimit;
  o.exit_limit = kExitLimit;
  const std::string worker_id =
      absl::StrCat(o.name, "-", worker_starts_++);
  const std::string concurrency = absl::StrCat(options_.worker_concurrency);
  if (i < options_.shell_workers) {
    o.binary = "/bin/sh";
    // Results name the task, its attempt and the shell's pid, so that a
    // second execution never produces the same result.
    const char* kIdentity =
        "printf 'sh/%s/%s/%s' \"$TASKD_TASK_ID\" \"$TASKD_ATTEMPT\" \"$$\"";
    o.flags = {"-c", AnnounceAndExec(target_), options_.taskd_worker_binary,
               "--server", target_, "--queue", kShellQueue,
               "--concurrency", concurrency, "--heartbeat", "1s",
               "--grace", "1s", "--worker-id", worker_id,
               // sh.echo: stdin is the payload.
               "--handler", absl::StrCat("sh.echo=cat >/dev/null; ", kIdentity),
               // sh.sleep: the payload is a number of seconds.
               "--handler",
               absl::StrCat("sh.sleep=read s; sleep \"$s\"; ", kIdentity),
               // sh.fail: a retryable failure (exit 3) on every attempt.
               "--handler", "sh.fail=cat >/dev/null; echo boom >&2; exit 3"};
  } else {
    o.binary = options_.soak_worker_binary;
    o.flags = {absl::StrCat("--server=", target_),
               absl::StrCat("--queue=", kSdkQueue),
               absl::StrCat("--concurrency=", concurrency),
               absl::StrCat("--worker_id=", worker_id),
               absl::StrCat("--max_lifetime=",
                            absl::FormatDuration(options_.worker_lifetime))};
  }
  absl::StatusOr<std::unique_ptr<testing::TaskdProcess>> worker =
      testing::TaskdProcess::Start(std::move(o));
  if (!worker.ok()) return worker.status();
  workers_[i] = *std::move(worker);
  return absl::OkStatus();
}

std::string SoakFleet::WorkerLine(int i, absl::string_view needle) const {
  return workers_[i] != nullptr ? workers_[i]->LastLineContaining(needle) : "";
}

}  // namespace taskd::soak
