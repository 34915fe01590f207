// The client side of the soak test (tests/soak/soak_test.cc): the threads
// that submit, await, get, cancel and stream against a taskd that is being
// killed and restarted, recording everything they are told in a SoakLedger.
//
// Each loop runs until its stop notification (or its own count and time
// limits), retries what failed transiently (a submit always with the same
// idempotency key), and reports anything a server must never answer (e.g.
// INTERNAL, NOT_FOUND for an acknowledged id) as a ledger violation.
//
// Thread-safe: every loop may run on its own thread against one
// SoakClients.
#ifndef TASKD_TESTS_SOAK_SOAK_CLIENTS_H_
#define TASKD_TESTS_SOAK_SOAK_CLIENTS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "clients/cpp/client.h"
#include "tests/soak/soak_ledger.h"

namespace taskd::soak {

// Codes a call may get while the server is killed, restarting or busy.
bool Transient(absl::StatusCode code);

// Counters of what the clients did, for the log.
struct ClientStats {
  std::atomic<int64_t> submits{0};
  std::atomic<int64_t> resubmits{0};  // same key again after an error
  std::atomic<int64_t> deduplicated{0};
  std::atomic<int64_t> unacked{0};  // keys given up at the end of the run
  std::atomic<int64_t> awaits{0};
  std::atomic<int64_t> gets{0};
  std::atomic<int64_t> cancels{0};
  std::atomic<int64_t> transient_errors{0};
  std::atomic<int64_t> events{0};
  std::atomic<int64_t> observer_streams{0};
  std::atomic<int64_t> observer_restarts_from_now{0};  // events missed
  std::atomic<int64_t> stalled_streams{0};
  std::atomic<int64_t> stalled_exhausted{0};    // ended RESOURCE_EXHAUSTED
  std::atomic<int64_t> stalled_interrupted{0};  // server killed meanwhile
  std::atomic<int64_t> stalled_kept_up{0};      // still live after catching up

  std::string ToString() const;
};

class SoakClients {
 public:
  struct Options {
    std::string target;
    // Submits per second over all submit threads (pacing, not a promise).
    double submit_rate = 40;
    int submit_threads = 3;
    // How long the stalled stream reads nothing before it reads everything.
    absl::Duration stall = absl::Seconds(15);
  };

  SoakClients(Options options, SoakLedger* ledger, ClientStats* stats);
  ~SoakClients();

  // Starts every loop. Submitting, awaiting and cancelling stop at
  // StopWorkload(); the streams stop at StopStreams().
  void Start(uint64_t seed);
  // Stops submitting (a key already being retried is retried until
  // acknowledged, at most `ack_limit` more), awaiting and cancelling; joins
  // those threads.
  void StopWorkload(absl::Duration ack_limit);
  // Ends the event observer and the stalled stream; joins them.
  void StopStreams();

  // Awaits every acknowledged task until all are terminal or `limit`
  // passed. Returns how many are still not terminal (or could not be read).
  int Drain(absl::Duration limit);
  // The last server's view of every acknowledged id (NOT_FOUND ones
  // absent). An error when some id could not be read at all.
  absl::StatusOr<absl::flat_hash_map<std::string, v1::Task>> FinalTasks();

 private:
  void SubmitLoop(int thread, uint64_t seed);
  v1::TaskSpec NewSpec(std::mt19937_64& rng, const std::string& key);
  void AwaitLoop(uint64_t seed);
  void CancelLoop(uint64_t seed);
  void ObserverLoop();
  void StalledStreamLoop();
  void CheckCall(const absl::Status& status, const std::string& what);

  // Makes `ctx` cancellable by StopStreams() while a stream uses it.
  bool SetStreamContext(grpc::ClientContext** slot, grpc::ClientContext* ctx)
      ABSL_LOCKS_EXCLUDED(streams_mu_);

  // Constant after construction.
  const Options options_;
  SoakLedger* const ledger_;
  ClientStats* const stats_;
  const TaskClient client_;  // submits, awaits, gets, cancels

  absl::Notification stop_workload_;
  absl::Notification stop_streams_;
  absl::Time ack_deadline_ = absl::InfiniteFuture();  // set before stop_workload_
  std::vector<std::thread> workload_threads_;
  std::vector<std::thread> stream_threads_;

  absl::Mutex streams_mu_;
  grpc::ClientContext* observer_ctx_ ABSL_GUARDED_BY(streams_mu_) = nullptr;
  grpc::ClientContext* stalled_ctx_ ABSL_GUARDED_BY(streams_mu_) = nullptr;
};

}  // namespace taskd::soak

#endif  // TASKD_TESTS_SOAK_SOAK_CLIENTS_H_
