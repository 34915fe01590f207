#include "clients/cpp/internal/work_outbox.h"

#include <utility>

namespace taskd::internal {

WorkOutbox::WorkOutbox(WriteFn write, WritesDoneFn writes_done)
    : write_(std::move(write)), writes_done_(std::move(writes_done)) {}

absl::Status WorkOutbox::Send(v1::WorkRequest request) {
  {
    absl::MutexLock lock(&mu_);
    if (writing_) {
      mu_.Await(absl::Condition(this, &WorkOutbox::HasRoomOrClosed));
    }
    if (closed_ || close_queued_) {
      return broken_ ? absl::UnavailableError("work stream broken")
                     : absl::FailedPreconditionError("work stream closed");
    }
    queue_.push_back(std::move(request));
    if (writing_) return absl::OkStatus();
    writing_ = true;
  }
  WriteQueued();
  absl::MutexLock lock(&mu_);
  return broken_ ? absl::UnavailableError("work stream broken")
                 : absl::OkStatus();
}

void WorkOutbox::CloseAfterQueued() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_ || close_queued_) return;
    close_queued_ = true;
    if (writing_) return;
    writing_ = true;
  }
  WriteQueued();
}

void WorkOutbox::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  queue_.clear();
  mu_.Await(absl::Condition(this, &WorkOutbox::NotWriting));
}

void WorkOutbox::WriteQueued() {
  std::vector<v1::WorkRequest> batch;
  bool ok = true;
  while (true) {
    bool half_close = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        broken_ = true;
        closed_ = true;
        queue_.clear();
      }
      if (closed_ || queue_.empty()) {
        half_close = close_queued_ && !closed_;
        if (!half_close) {
          writing_ = false;
          return;
        }
        // Still the writer: nothing may be written after WritesDone.
        closed_ = true;
      } else {
        batch.clear();
        batch.swap(queue_);
      }
    }
    if (half_close) {
      writes_done_();
      absl::MutexLock lock(&mu_);
      writing_ = false;
      return;
    }
    for (size_t i = 0; i < batch.size() && ok; ++i) {
      ok = write_(batch[i], i + 1 < batch.size());
    }
  }
}

}  // namespace taskd::internal
