// WorkerSession: the engine's view of one connected worker (one Work stream).
//
// The gRPC edge implements WorkerSink to deliver messages; the engine calls
// Send() while holding its locks, so Send must only queue the message and
// never block or call back into the engine.
//
// Identity fields are constant after construction; last_seen is atomic.
#ifndef TASKD_SCHEDULER_WORKER_SESSION_H_
#define TASKD_SCHEDULER_WORKER_SESSION_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

class WorkerSink {
 public:
  virtual ~WorkerSink() = default;
  virtual void Send(v1::WorkResponse message) = 0;
  // True while messages wait unsent beyond the sink's budget (the worker
  // does not read): the dispatcher then assigns it nothing more. Called
  // under engine locks; must not block. A sink that stops being congested
  // asks the engine to dispatch again (Engine::WorkerDrained).
  virtual bool Congested() const { return false; }
};

struct WorkerSession {
  WorkerSession(std::string id, std::vector<std::string> queues,
                absl::flat_hash_set<std::string> types, int concurrency,
                WorkerSink* sink, absl::Time now)
      : worker_id(std::move(id)),
        queues(std::move(queues)),
        types(std::move(types)),
        concurrency(concurrency),
        sink(sink),
        last_seen_unix_ns(absl::ToUnixNanos(now)) {}

  bool Serves(const std::string& queue, const std::string& type) const {
    bool queue_ok = false;
    for (const auto& q : queues) queue_ok |= (q == queue);
    return queue_ok && (types.empty() || types.contains(type));
  }
  void Touch(absl::Time now) {
    last_seen_unix_ns.store(absl::ToUnixNanos(now), std::memory_order_relaxed);
  }
  absl::Time last_seen() const {
    return absl::FromUnixNanos(last_seen_unix_ns.load(std::memory_order_relaxed));
  }

  const std::string worker_id;
  const std::vector<std::string> queues;
  const absl::flat_hash_set<std::string> types;  // empty: every type
  const int concurrency;
  WorkerSink* const sink;  // not owned; outlives the session's registration
  std::atomic<int64_t> last_seen_unix_ns;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_WORKER_SESSION_H_
