// SoakFleet: the processes of the soak test — one taskd server (durable,
// on a fixed loopback port so that clients and workers reconnect to a
// restarted server) and a set of worker processes: `taskd-worker` running
// shell handlers and `soak_worker` (the C++ worker SDK). The soak's chaos
// thread SIGKILLs and restarts them through this class.
//
// Every process runs through tests/taskd_process.h (spawn, stderr capture,
// SIGKILL, reap), which waits for a "serving on ... (port N)" line: the
// soak_worker prints one; taskd-worker is started through /bin/sh, which
// prints it and then execs taskd-worker (same pid, so SIGKILL hits it).
//
// Thread-compatible, except server_pid() and target(), which any thread
// may call at any time.
#ifndef TASKD_TESTS_SOAK_SOAK_FLEET_H_
#define TASKD_TESTS_SOAK_SOAK_FLEET_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/taskd_process.h"

namespace taskd::soak {

// Queues and task types the workers serve (see soak_test.cc for what each
// type does).
inline constexpr char kShellQueue[] = "soak-sh";
inline constexpr char kSdkQueue[] = "soak-sdk";

class SoakFleet {
 public:
  struct Options {
    std::string taskd_binary;
    std::string taskd_worker_binary;
    std::string soak_worker_binary;
    std::string data_dir;                   // --data_dir of every server
    std::vector<std::string> server_flags;  // beyond listen/durability/dir
    int shell_workers = 2;  // taskd-worker processes
    int sdk_workers = 2;    // soak_worker processes
    int worker_concurrency = 4;
    // soak_worker exits by itself after this long (in case the test dies
    // without killing it).
    absl::Duration worker_lifetime = absl::Hours(2);
  };

  // Starts the server (on a free port, kept for every restart) and every
  // worker, each waited for until it runs.
  static absl::StatusOr<std::unique_ptr<SoakFleet>> Start(Options options);

  // SIGKILLs whatever still runs.
  ~SoakFleet() = default;

  std::string target() const { return target_; }
  // The running server's pid, 0 while it is down.
  pid_t server_pid() const { return server_pid_.load(); }
  // The server's last stderr line containing `needle`.
  std::string ServerLine(absl::string_view needle) const;

  // SIGKILLs the server, then starts a new one on the same port and data
  // directory and waits until it serves. The wait status in `*killed`.
  absl::Status KillAndRestartServer(int* killed);
  // SIGTERM: a graceful stop; its wait status.
  absl::StatusOr<int> StopServer();

  int workers() const { return static_cast<int>(workers_.size()); }
  // "taskd-worker#1", "soak_worker#0", ...
  std::string WorkerName(int i) const;
  bool WorkerUp(int i) const { return workers_[i] != nullptr; }
  // SIGKILLs worker `i` (if up) and leaves it down.
  absl::Status KillWorker(int i);
  // Starts worker `i` if it is down.
  absl::Status StartWorker(int i);
  // The last stderr lines of worker `i` containing `needle`.
  std::string WorkerLine(int i, absl::string_view needle) const;

 private:
  explicit SoakFleet(Options options) : options_(std::move(options)) {}
  absl::Status StartServer(int port);

  const Options options_;
  std::string target_;
  int port_ = 0;
  int server_starts_ = 0;
  int worker_starts_ = 0;
  std::unique_ptr<testing::TaskdProcess> server_;
  std::atomic<pid_t> server_pid_{0};
  std::vector<std::unique_ptr<testing::TaskdProcess>> workers_;
};

}  // namespace taskd::soak

#endif  // TASKD_TESTS_SOAK_SOAK_FLEET_H_
