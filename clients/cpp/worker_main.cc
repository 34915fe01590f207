// taskd-worker: serves taskd tasks by running shell commands. See
// worker_cli.cc for the command line and shell_handler.h for the outcomes.
//
// Signals: SIGTERM/SIGINT are blocked in every thread and taken by a
// dedicated thread with sigwait(); the first stops the worker gracefully,
// the second exits at once. A lost work stream is re-opened with backoff.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "clients/cpp/command_runner.h"
#include "clients/cpp/shell_handler.h"
#include "clients/cpp/worker.h"
#include "clients/cpp/worker_cli.h"

namespace taskd {
namespace {

// The worker currently running, for the signal thread to stop.
absl::Mutex current_mu;
std::shared_ptr<Worker> current ABSL_GUARDED_BY(current_mu);
absl::Notification stop_requested;

void SignalLoop(sigset_t signals) {
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0) {
    if (stop_requested.HasBeenNotified()) {
      static const char kMessage[] = "taskd-worker: second signal, exiting\n";
      [[maybe_unused]] ssize_t n = write(2, kMessage, sizeof(kMessage) - 1);
      _exit(128 + signal_number);
    }
    std::shared_ptr<Worker> worker;
    {
      absl::MutexLock lock(&current_mu);
      stop_requested.Notify();
      worker = current;
    }
    std::cerr << "taskd-worker: stopping (signal " << signal_number << ")\n";
    // Stop blocks until running commands are gone; do it off this thread so
    // that a second signal can still force an exit.
    if (worker != nullptr) std::thread([worker] { worker->Stop(); }).detach();
  }
}

int Main(int argc, char** argv) {
  absl::StatusOr<WorkerConfig> config = ParseWorkerArgs(
      std::vector<std::string>(argv + 1, argv + argc),
      std::getenv("TASKD_SERVER"), std::getenv("TASKD_TOKEN"));
  if (!config.ok()) {
    std::cerr << "taskd-worker: " << config.status().message() << "\n\n"
              << kWorkerUsage;
    return 2;
  }
  if (config->help) {
    std::cout << kWorkerUsage;
    return 0;
  }

  // Before any other thread exists, so that all inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::thread(SignalLoop, signals).detach();

  if (absl::Status s = BecomeChildSubreaper(); !s.ok()) {
    std::cerr << "taskd-worker: warning: " << s.message() << "\n";
  }

  Worker::Options options;
  options.target = config->server;
  options.security = config->security;
  options.worker_id = config->worker_id;
  options.queues = config->queues;
  options.concurrency = config->concurrency;
  options.heartbeat_interval = config->heartbeat;

  absl::Duration backoff = absl::Seconds(1);
  while (!stop_requested.HasBeenNotified()) {
    auto worker = std::make_shared<Worker>(options);
    for (const auto& [type, command] : config->handlers) {
      ShellHandlerOptions handler;
      handler.command = command;
      handler.grace = config->grace;
      if (absl::Status s =
              worker->RegisterHandler(type, MakeShellHandler(handler));
          !s.ok()) {
        std::cerr << "taskd-worker: " << s.message() << "\n";
        return 2;
      }
    }
    if (absl::Status s = worker->Start(); !s.ok()) {
      std::cerr << "taskd-worker: " << s.message() << "\n";
      return 1;
    }
    {
      // Either the signal thread sees this worker, or we see its request.
      absl::MutexLock lock(&current_mu);
      if (!stop_requested.HasBeenNotified()) current = worker;
    }
    if (stop_requested.HasBeenNotified()) break;  // ~Worker stops it
    std::cerr << "taskd-worker: " << worker->worker_id() << " serving "
              << config->server << "\n";
    const absl::Status status = worker->Run();
    const bool was_connected = worker->WaitConnected(absl::ZeroDuration());
    {
      absl::MutexLock lock(&current_mu);
      current.reset();
    }
    if (stop_requested.HasBeenNotified()) break;
    if (was_connected) backoff = absl::Seconds(1);
    std::cerr << "taskd-worker: work stream ended: "
              << absl::StatusCodeToString(status.code()) << ": "
              << status.message() << "; reconnecting in "
              << absl::FormatDuration(backoff) << "\n";
    stop_requested.WaitForNotificationWithTimeout(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
  std::cerr << "taskd-worker: stopped\n";
  return 0;
}

}  // namespace
}  // namespace taskd

int main(int argc, char** argv) { return taskd::Main(argc, argv); }
