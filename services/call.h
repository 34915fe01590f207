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
#ifndef TASKD_SERVICES_CALL_H_
#define TASKD_SERVICES_CALL_H_

#include <grpcpp/completion_queue.h>

namespace taskd {

class Call {
 public:
  virtual ~Call() = default;
  // Runs on a CQ thread when operation `op` of this call completes.
  virtual void OnEvent(int op, bool ok) = 0;
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
