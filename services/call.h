// The completion-queue plumbing shared by every call handler.
//
// Each RPC in flight is one small handler object derived from Call. Every
// asynchronous operation it starts carries a Tag naming the handler and the
// operation; the CQ thread that dequeues the tag calls Call::OnEvent. `ok`
// is false for many normal reasons (shutdown, client gone) and is never
// asserted.
//
// Handlers that are finished from other threads (Await, Stream, Work) count
// their references: one per operation in flight plus one while a CQ thread
// is inside OnEvent; the handler deletes itself when the count reaches zero,
// so it lives until both its done tag and its last operation tag returned.
//
// Every handler is created for one method of one server, its CallSite: the
// server's LiveCalls, which count the handlers that exist (waiting for a
// call or serving one) so that shutdown can wait for the calls in flight,
// and the method's metric cells, with which the handler counts its own call
// (metrics::CallMeter). A handler hands its site on to its successor.
#ifndef TASKD_SERVICES_CALL_H_
#define TASKD_SERVICES_CALL_H_

#include <grpcpp/completion_queue.h>

#include <atomic>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/metrics/grpc_metrics.h"

namespace taskd {

// The call handlers of one server that exist now. Thread-safe; must outlive
// every handler of its server.
class LiveCalls {
 public:
  LiveCalls() = default;
  LiveCalls(const LiveCalls&) = delete;
  LiveCalls& operator=(const LiveCalls&) = delete;

  void Add() { count_.fetch_add(1, std::memory_order_relaxed); }
  // Takes mu_ only on the way to zero (at shutdown: a server has waiting
  // handlers as long as it serves), so that WaitNone wakes up.
  void Remove() ABSL_LOCKS_EXCLUDED(mu_) {
    if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      absl::MutexLock lock(&mu_);
    }
  }
  int count() const { return count_.load(std::memory_order_acquire); }

  // Waits until no handler is left or `deadline` passes; false on timeout.
  bool WaitNone(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(
        absl::Condition(
            +[](std::atomic<int>* n) { return n->load() == 0; }, &count_),
        deadline);
  }

 private:
  std::atomic<int> count_{0};
  absl::Mutex mu_;  // guards nothing: a waiter re-checks count_ on release
};

// What the handlers of one method on one server share.
struct CallSite {
  LiveCalls* live = nullptr;               // never nullptr in a handler
  metrics::MethodCells* cells = nullptr;   // nullptr: metrics are off
};

// One server's sites: its LiveCalls and, with metrics on, its gRPC metrics.
// Thread-compatible; For() is called while handlers are armed at start.
class CallSites {
 public:
  // `metrics` (nullptr: metrics off) must outlive this.
  explicit CallSites(metrics::GrpcMetrics* metrics) : metrics_(metrics) {}
  CallSites(const CallSites&) = delete;
  CallSites& operator=(const CallSites&) = delete;

  // The site of `method` of `service` ("taskd.v1.TaskService", "Get"). With
  // metrics on, a method missing from their table is a bug: it aborts, so
  // that any server start in a test finds it.
  CallSite For(absl::string_view service, absl::string_view method);

  LiveCalls& live() { return live_; }

 private:
  metrics::GrpcMetrics* const metrics_;
  LiveCalls live_;
};

class Call {
 public:
  explicit Call(const CallSite& site) : site_(site) { site_.live->Add(); }
  virtual ~Call() { site_.live->Remove(); }  // the last thing a handler does
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // Runs on a CQ thread when operation `op` of this call completes.
  virtual void OnEvent(int op, bool ok) = 0;

 protected:
  const CallSite site_;
  // The call's metrics; Start it when the call arrives.
  metrics::CallMeter meter_;
};

struct Tag {
  Call* call;
  int op;
};

// Polls `cq` until it is shut down and drained.
inline void RunCompletionQueue(grpc::ServerCompletionQueue* cq) {
  void* raw = nullptr;
  bool ok = false;
  while (cq->Next(&raw, &ok)) {
    Tag* tag = static_cast<Tag*>(raw);
    tag->call->OnEvent(tag->op, ok);
  }
}

}  // namespace taskd

#endif  // TASKD_SERVICES_CALL_H_
