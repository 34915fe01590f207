// gRPC completion-queue hand-offs as TSan sees them.
//
// Every asynchronous operation (a call batch, a requested server call, an
// Alarm, a server shutdown notification) starts with grpc_cq_begin_op(cq,
// tag) on the thread that starts it, ends with grpc_cq_end_op(cq, tag, ...)
// on the thread that completes it (which may be the starting thread, when
// a batch fails at once, or any of gRPC's), and its tag comes back from
// grpc_completion_queue_next or _pluck on the thread that polls. What the
// program may rely on is that everything before the start, and whatever
// gRPC wrote for the operation before it completed (received messages,
// status details, metadata), happens before the tag's return. So: release
// on the tag in begin_op and end_op, acquire on it when next/pluck return
// it. The tags here are gRPC core's (the C++ API maps them to the user's
// tag after next returns, in FinalizeResult).
//
// grpc_cq_begin_op and grpc_cq_end_op are internal C++ symbols of libgrpc,
// exported and called through the PLT by libgrpc itself
// (grpc_call_start_batch, request_call, shutdown_and_notify) and by
// libgrpc++ (grpc::Alarm).
//
// A message can also cross from one call to another without a copy: the
// in-process transport (Server::InProcessChannel, used by tests) hands the
// sender's slices to the receiving call, whose thread then parses the bytes
// the sending thread serialised, ordered by gRPC's lock-free call combiner.
// So a batch that sends a message releases on the start of each of its
// shared (reference-counted) slices, and reading a received message
// (grpc_byte_buffer_reader_init, where every C++ deserialisation starts)
// acquires on its slices. Slices that were copied (any real transport,
// small inlined slices) are other memory and pair with nothing.
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <sanitizer/tsan_interface.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "tests/tsan/interposer.h"

// As declared in gRPC 1.51's src/core/lib/surface/completion_queue.h (not
// installed; grpc_error_handle is absl::Status there).
struct grpc_cq_completion;
bool grpc_cq_begin_op(grpc_completion_queue* cq, void* tag);
void grpc_cq_end_op(grpc_completion_queue* cq, void* tag, absl::Status error,
                    void (*done)(void* done_arg, grpc_cq_completion* storage),
                    void* done_arg, grpc_cq_completion* storage,
                    bool internal);

namespace {

using taskd::tsan::CqTagsEnabled;
using taskd::tsan::RealSymbol;

// Tags are opaque: C callers may use small integers, which are no address
// TSan can keep a clock for.
bool IsAddress(const void* tag) {
  return reinterpret_cast<uintptr_t>(tag) >= 0x10000;
}

// Calls `visit(start)` for the first byte of every reference-counted slice
// of an uncompressed or compressed raw byte buffer.
template <typename Visit>
void ForEachSharedSlice(const grpc_byte_buffer* buffer, Visit visit) {
  if (buffer == nullptr || buffer->type != GRPC_BB_RAW) return;
  const grpc_slice_buffer& slices = buffer->data.raw.slice_buffer;
  for (size_t i = 0; i < slices.count; ++i) {
    const grpc_slice& slice = slices.slices[i];
    if (slice.refcount == nullptr) continue;  // inlined: copied by value
    void* start = slice.data.refcounted.bytes;
    if (IsAddress(start)) visit(start);
  }
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

void grpc_cq_end_op(grpc_completion_queue* cq, void* tag, absl::Status error,
                    void (*done)(void* done_arg, grpc_cq_completion* storage),
                    void* done_arg, grpc_cq_completion* storage,
                    bool internal) {
  using Fn = void (*)(grpc_completion_queue*, void*, absl::Status,
                      void (*)(void*, grpc_cq_completion*), void*,
                      grpc_cq_completion*, bool);
  // The absl::Status parameter puts abseil's inline namespace in the name.
  static const Fn real = reinterpret_cast<Fn>(RealSymbol(
      ("_Z14grpc_cq_end_opP21grpc_completion_queuePv" +
       taskd::tsan::AbslSymbolName(
           "6StatusEPFvS1_P18grpc_cq_completionES1_S6_b")
           .substr(2))
          .c_str()));
  if (IsAddress(tag) && CqTagsEnabled()) __tsan_release(tag);
  real(cq, tag, std::move(error), done, done_arg, storage, internal);
}

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops,
                                      size_t nops, void* tag, void* reserved) {
  using Fn = grpc_call_error (*)(grpc_call*, const grpc_op*, size_t, void*,
                                 void*);
  static const Fn real =
      reinterpret_cast<Fn>(RealSymbol("grpc_call_start_batch"));
  if (CqTagsEnabled()) {
    for (size_t i = 0; i < nops; ++i) {
      if (ops[i].op != GRPC_OP_SEND_MESSAGE) continue;
      ForEachSharedSlice(ops[i].data.send_message.send_message,
                         [](void* start) { __tsan_release(start); });
    }
  }
  return real(call, ops, nops, tag, reserved);
}

int grpc_byte_buffer_reader_init(grpc_byte_buffer_reader* reader,
                                 grpc_byte_buffer* buffer) {
  using Fn = int (*)(grpc_byte_buffer_reader*, grpc_byte_buffer*);
  static const Fn real =
      reinterpret_cast<Fn>(RealSymbol("grpc_byte_buffer_reader_init"));
  if (CqTagsEnabled()) {
    ForEachSharedSlice(buffer, [](void* start) { __tsan_acquire(start); });
  }
  return real(reader, buffer);
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
