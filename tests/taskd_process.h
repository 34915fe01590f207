// A `services/taskd` server run as a child process, for tests and benchmarks
// that need the real binary (its flags, its exit on SIGKILL, its recovery).
//
//   absl::StatusOr<std::string> binary = FindTaskdBinary("", argv[0]);
//   TaskdProcess::Options options;
//   options.binary = *binary;
//   options.flags = {"--listen=127.0.0.1:0", "--durability=sync", ...};
//   absl::StatusOr<std::unique_ptr<TaskdProcess>> server =
//       TaskdProcess::Start(options);
//   ... connect to (*server)->target() ...
//   (*server)->Stop();
//
// The child's stderr is a pipe read by a thread of the TaskdProcess until
// the child exits: the line `taskd: serving on ... (port N)` gives the port,
// the other lines are kept (the most recent ones) and, if asked, echoed to
// our stderr with a `[name] ` prefix.
#ifndef TASKD_TESTS_TASKD_PROCESS_H_
#define TASKD_TESTS_TASKD_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace taskd::testing {

// The taskd binary: `explicit_path` if not empty, else $TASKD_BINARY if set,
// else `services/taskd` under the current directory (the runfiles root of a
// test or of `bazel run`), else `<argv0>.runfiles/taskd/services/taskd` (a
// binary run from bazel-bin; skipped when `argv0` is empty). NOT_FOUND when
// the chosen path is not executable.
absl::StatusOr<std::string> FindTaskdBinary(const std::string& explicit_path,
                                            const std::string& argv0);

// "signal 9", "exit 0", ...: a waitpid status for a message.
std::string DescribeWaitStatus(int status);

// One taskd child process, serving once Start() returns. The destructor
// SIGKILLs it if it still runs, reaps it and joins the stderr reader.
// Thread-compatible: Kill(), Stop() and the destructor must not overlap;
// the const accessors and LastLineContaining() may be called from any thread.
class TaskdProcess {
 public:
  struct Options {
    std::string binary;              // path to the taskd executable
    std::vector<std::string> flags;  // argv[1..]; should include --listen
    std::string name = "taskd";      // names it in messages and echoed lines
    bool echo_stderr = false;        // copy its stderr lines to ours
    absl::Duration start_limit = absl::Seconds(60);  // until it serves
    absl::Duration exit_limit = absl::Seconds(15);   // after each signal
  };

  // Spawns the binary and waits until it logs that it serves. On failure the
  // child is killed and reaped; the error names it, tells how it exited when
  // it did, and quotes its last stderr lines. DEADLINE_EXCEEDED when it did
  // not serve within `start_limit`, FAILED_PRECONDITION when it exited first.
  static absl::StatusOr<std::unique_ptr<TaskdProcess>> Start(Options options);

  ~TaskdProcess();
  TaskdProcess(const TaskdProcess&) = delete;
  TaskdProcess& operator=(const TaskdProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string target() const;  // "127.0.0.1:<port>"
  const std::string& name() const { return options_.name; }

  // The most recent stderr line containing `needle` (e.g. "recovered"), or
  // "" if none of the kept lines does. Lines logged before the server served
  // are always seen by the time Start() returns.
  std::string LastLineContaining(absl::string_view needle) const;

  // Sends `signal` (one that ends taskd: SIGKILL, SIGTERM, ...) and reaps
  // the process, waiting at most `exit_limit`. Returns its wait status;
  // DEADLINE_EXCEEDED if it still runs. After the process was reaped,
  // returns the same status again without signalling anything.
  absl::StatusOr<int> Kill(int signal);

  // Kill(SIGTERM): a graceful shutdown. If it has not exited within
  // `exit_limit` it is SIGKILLed and reaped, and the result is
  // DEADLINE_EXCEEDED; otherwise its wait status.
  absl::StatusOr<int> Stop();

 private:
  TaskdProcess(Options options, pid_t pid, int stderr_fd);

  absl::StatusOr<int> WaitServing();
  absl::StatusOr<int> Reap(absl::Duration limit);
  void ReadStderr();
  void OnLine(std::string line);
  std::string KeptLines() const;

  // Constant after construction.
  const Options options_;
  const pid_t pid_;
  const int stderr_fd_;

  // Set once by Start(), before the object is handed out.
  int port_ = 0;

  // Used by the thread calling Kill()/Stop()/the destructor only.
  bool reaped_ = false;
  int wait_status_ = 0;

  // The reader thread and what it learns. The thread is started by the
  // constructor, once everything above exists, and joined by the destructor.
  std::atomic<bool> stop_reader_{false};
  mutable absl::Mutex mu_;
  int logged_port_ ABSL_GUARDED_BY(mu_) = 0;
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::string> lines_ ABSL_GUARDED_BY(mu_);  // the most recent
  std::thread reader_;
};

}  // namespace taskd::testing

#endif  // TASKD_TESTS_TASKD_PROCESS_H_
