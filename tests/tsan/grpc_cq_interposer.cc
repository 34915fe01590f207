// gRPC completion-queue hand-offs as TSan sees them.
//
// Every asynchronous operation (a call batch, a requested server call, an
// Alarm, a server shutdown notification) starts with grpc_cq_begin_op(cq,
// tag) on the thread that starts it, and its tag comes back from
// grpc_completion_queue_next or _pluck on the thread that polls. The thread
// in between (a poller, a timer, gRPC's executor) is gRPC's business; what
// the program may rely on is that everything before the start happens
// before the tag's return. So: release on the tag in begin_op, acquire on
// it when next/pluck return it. The tags here are gRPC core's (the C++ API
// maps them to the user's tag after next returns, in FinalizeResult).
//
// grpc_cq_begin_op is an internal C++ symbol of libgrpc, exported and called
// through the PLT by libgrpc itself (grpc_call_start_batch, request_call,
// shutdown_and_notify) and by libgrpc++ (grpc::Alarm).
#include <grpc/grpc.h>
#include <sanitizer/tsan_interface.h>

#include <cstdint>

#include "tests/tsan/interposer.h"

// As declared in gRPC 1.51's src/core/lib/surface/completion_queue.h (not
// installed): false when the queue is already shut down.
bool grpc_cq_begin_op(grpc_completion_queue* cq, void* tag);

namespace {

using taskd::tsan::CqTagsEnabled;
using taskd::tsan::RealSymbol;

// Tags are opaque: C callers may use small integers, which are no address
// TSan can keep a clock for.
bool IsAddress(const void* tag) {
  return reinterpret_cast<uintptr_t>(tag) >= 0x10000;
}

grpc_event Acquired(grpc_event event) {
  if (event.type == GRPC_OP_COMPLETE && IsAddress(event.tag) &&
      CqTagsEnabled()) {
    __tsan_acquire(event.tag);
  }
  return event;
}

}  // namespace

bool grpc_cq_begin_op(grpc_completion_queue* cq, void* tag) {
  using Fn = bool (*)(grpc_completion_queue*, void*);
  static const Fn real = reinterpret_cast<Fn>(
      RealSymbol("_Z16grpc_cq_begin_opP21grpc_completion_queuePv"));
  if (IsAddress(tag) && CqTagsEnabled()) __tsan_release(tag);
  return real(cq, tag);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq,
                                      gpr_timespec deadline, void* reserved) {
  using Fn = grpc_event (*)(grpc_completion_queue*, gpr_timespec, void*);
  static const Fn real =
      reinterpret_cast<Fn>(RealSymbol("grpc_completion_queue_next"));
  return Acquired(real(cq, deadline, reserved));
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag,
                                       gpr_timespec deadline, void* reserved) {
  using Fn =
      grpc_event (*)(grpc_completion_queue*, void*, gpr_timespec, void*);
  static const Fn real =
      reinterpret_cast<Fn>(RealSymbol("grpc_completion_queue_pluck"));
  return Acquired(real(cq, tag, deadline, reserved));
}
