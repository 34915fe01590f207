// WorkOutbox: the single writer of a worker's Work stream. Any thread may
// Send(); the sender that finds no write in progress becomes the writer and
// writes what is queued — also what other threads queue meanwhile — before
// it returns, while the others only queue and go on. Every message of a
// batch but the last is written with a buffer hint, so a batch leaves in one
// syscall instead of one per message.
//
//   WorkOutbox outbox(
//       [&](const v1::WorkRequest& r, bool more) {
//         return stream->Write(r, more ? grpc::WriteOptions().set_buffer_hint()
//                                      : grpc::WriteOptions());
//       },
//       [&] { return stream->WritesDone(); });
//   outbox.Send(outcome).IgnoreError();
//   ...
//   outbox.CloseAfterQueued();  // WritesDone once the queue is written
//
// Thread-safety: thread-safe. The sink functions are called by one thread at
// a time, never under the outbox's lock, and not after Close() returned.
#ifndef TASKD_CLIENTS_CPP_INTERNAL_WORK_OUTBOX_H_
#define TASKD_CLIENTS_CPP_INTERNAL_WORK_OUTBOX_H_

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd::internal {

class WorkOutbox {
 public:
  // Writes one message; `more` is true when another message of the same
  // batch follows at once (the write may be buffered). False: the stream is
  // broken.
  using WriteFn = std::function<bool(const v1::WorkRequest&, bool more)>;
  // Half-closes the stream.
  using WritesDoneFn = std::function<bool()>;

  // Most messages queued behind a write in progress; Send() waits for room
  // beyond that, so a stream the server does not read holds back the
  // senders instead of growing memory.
  static constexpr size_t kMaxQueued = 4096;

  WorkOutbox(WriteFn write, WritesDoneFn writes_done);
  WorkOutbox(const WorkOutbox&) = delete;
  WorkOutbox& operator=(const WorkOutbox&) = delete;

  // Queues `request` after everything sent before and, when no other thread
  // is writing, writes the queue on this thread. OK once written or queued
  // behind another thread's write (best effort: a later failure of that
  // write drops it); FAILED_PRECONDITION after CloseAfterQueued() or
  // Close(); UNAVAILABLE when the stream broke.
  absl::Status Send(v1::WorkRequest request) ABSL_LOCKS_EXCLUDED(mu_);

  // No message is accepted any more; the queue is still written, then the
  // stream is half-closed (on this thread if no write is in progress).
  void CloseAfterQueued() ABSL_LOCKS_EXCLUDED(mu_);

  // No message is accepted or written any more: drops the queue and waits
  // for a write in progress to return. After it the stream may be finished.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Writes batches until the queue is empty; the caller became the writer.
  void WriteQueued() ABSL_LOCKS_EXCLUDED(mu_);

  bool HasRoomOrClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.size() < kMaxQueued || closed_;
  }
  bool NotWriting() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !writing_;
  }

  // Constant after construction.
  const WriteFn write_;
  const WritesDoneFn writes_done_;

  absl::Mutex mu_;
  std::vector<v1::WorkRequest> queue_ ABSL_GUARDED_BY(mu_);
  // A thread is in WriteQueued(): it owns the stream's write side.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  // CloseAfterQueued() was called: WritesDone after the queue.
  bool close_queued_ ABSL_GUARDED_BY(mu_) = false;
  // Nothing more is written (closed, half-closed or broken).
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace taskd::internal

#endif  // TASKD_CLIENTS_CPP_INTERNAL_WORK_OUTBOX_H_
