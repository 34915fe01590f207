#include "clients/cpp/internal/await_multiplexer.h"

#include <grpcpp/client_context.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/grpc_status.h"

namespace taskd::internal {
namespace {

// Extra gRPC deadline beyond the server-side wait of one RPC.
constexpr absl::Duration kDeadlineSlack = absl::Seconds(30);

// Errors that one id of a batch can cause on its own.
bool MayComeFromOneId(grpc::StatusCode code) {
  return code == grpc::StatusCode::NOT_FOUND ||
         code == grpc::StatusCode::INVALID_ARGUMENT ||
         code == grpc::StatusCode::PERMISSION_DENIED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED;
}

}  // namespace

// One multiplexed Await RPC; deletes itself when its Finish tag returns.
class AwaitMultiplexer::BatchCall final : public CompletionTag {
 public:
  explicit BatchCall(AwaitMultiplexer* mux) : mux_(mux) {}

  void Complete(bool /*ok*/) override {
    mux_->core_->OpDone(&context);
    mux_->OnBatchDone(this);
    delete this;
  }

  AwaitMultiplexer* const mux_;
  grpc::ClientContext context;
  v1::AwaitRequest request;
  v1::AwaitResponse response;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::AwaitResponse>> reader;
  // Cancelled by us to merge its ids into fuller calls. Guarded by mux_->mu_.
  bool superseded = false;
};

AwaitMultiplexer::AwaitMultiplexer(CompletionCore* core,
                                   v1::TaskService::Stub* stub,
                                   Options options)
    : core_(core),
      stub_(stub),
      batch_size_(std::clamp(options.batch_size, 1, 1000)),
      poll_interval_(std::max(options.poll_interval, absl::Milliseconds(1))) {}

Future<v1::Task> AwaitMultiplexer::Await(std::string id,
                                         absl::Duration timeout) {
  auto waiter = std::make_shared<Waiter>(core_->executor());
  Future<v1::Task> future = waiter->promise.future();
  {
    absl::MutexLock lock(&mu_);
    if (!shutting_down_) {
      Entry& entry = entries_[id];
      entry.waiters.push_back(waiter);
      if (entry.call == nullptr && !entry.queued) QueueLocked(id, entry);
      if (timeout != absl::InfiniteDuration()) {
        // The alarm runs on the CQ thread, which keeps the core (and so this
        // object) alive; it holds the waiter weakly.
        waiter->alarm = core_->SetAlarm(
            absl::Now() + timeout,
            [this, id, weak = std::weak_ptr<Waiter>(waiter),
             timeout](bool fired) {
              if (fired) OnTimeout(id, weak, timeout);
            });
      }
      return future;
    }
  }
  waiter->promise.Set(absl::CancelledError("AsyncTaskClient shut down"));
  return future;
}

void AwaitMultiplexer::QueueLocked(const std::string& id, Entry& entry) {
  entry.queued = true;
  queued_.push_back(id);
  if (queued_.size() >= batch_size_) FlushLocked(/*full_only=*/true);
  ScheduleFlushLocked();
}

void AwaitMultiplexer::ScheduleFlushLocked() {
  if (flush_scheduled_ || shutting_down_) return;
  // An alarm due now runs on the CQ thread after what is queued there, so
  // ids added meanwhile share the flush.
  flush_scheduled_ = core_->SetAlarm(absl::Now(), [this](bool) {
                       absl::MutexLock lock(&mu_);
                       flush_scheduled_ = false;
                       FlushLocked(/*full_only=*/false);
                     }) != 0;
}

bool AwaitMultiplexer::PopQueuedLocked(std::string* id) {
  while (!queued_.empty()) {
    *id = std::move(queued_.front());
    queued_.pop_front();
    auto it = entries_.find(*id);
    if (it == entries_.end() || !it->second.queued) continue;  // stale
    it->second.queued = false;
    if (it->second.waiters.empty()) {
      entries_.erase(it);
      continue;
    }
    return true;
  }
  return false;
}

void AwaitMultiplexer::FlushLocked(bool full_only) {
  if (shutting_down_ || queued_.empty()) return;
  if (!full_only && open_call_ != nullptr) {
    // Merge: the open call's ids come back when it returns cancelled, and
    // that return flushes them together with the queued ones.
    if (!open_call_->superseded) {
      open_call_->superseded = true;
      open_call_->context.TryCancel();
    }
    return;
  }
  std::string id;
  if (full_only) {
    // Each round takes at least one id, so this ends.
    while (queued_.size() >= batch_size_) {
      std::vector<std::string> batch;
      while (batch.size() < batch_size_ && PopQueuedLocked(&id)) {
        if (entries_[id].solo) {
          StartCallLocked({id}, /*open=*/false);
        } else {
          batch.push_back(std::move(id));
        }
      }
      if (!batch.empty()) StartCallLocked(batch, /*open=*/false);
    }
    return;
  }
  std::vector<std::string> batch;
  while (PopQueuedLocked(&id)) {
    if (entries_[id].solo) {
      StartCallLocked({id}, /*open=*/false);
      continue;
    }
    batch.push_back(std::move(id));
    if (batch.size() == batch_size_) {
      StartCallLocked(batch, /*open=*/false);
      batch.clear();
    }
  }
  if (!batch.empty()) StartCallLocked(batch, /*open=*/true);
}

void AwaitMultiplexer::StartCallLocked(const std::vector<std::string>& ids,
                                       bool open) {
  auto* call = new BatchCall(this);
  for (const std::string& id : ids) call->request.add_ids(id);
  call->request.set_mode(v1::AWAIT_MODE_ANY);
  ToProtoDuration(poll_interval_, call->request.mutable_timeout());
  call->context.set_deadline(
      absl::ToChronoTime(absl::Now() + poll_interval_ + kDeadlineSlack));
  const bool started = core_->StartOp(&call->context, [&] {
    call->reader = stub_->PrepareAsyncAwait(&call->context, call->request,
                                            core_->cq());
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  });
  if (!started) {  // the core shuts down: Shutdown() resolves the waiters
    delete call;
    return;
  }
  for (const std::string& id : ids) entries_[id].call = call;
  calls_.insert(call);
  ids_in_flight_ += ids.size();
  ++calls_started_;
  if (open) open_call_ = call;
}

void AwaitMultiplexer::OnBatchDone(BatchCall* call) {
  std::vector<Resolution> resolved;
  {
    absl::MutexLock lock(&mu_);
    calls_.erase(call);
    if (open_call_ == call) open_call_ = nullptr;
    const int n = call->request.ids_size();
    ids_in_flight_ -= n;
    const grpc::Status& status = call->status;
    enum { kAnswered, kRetry, kSplit, kFail } outcome = kFail;
    absl::Status error;
    if (status.ok()) {
      outcome = kAnswered;
    } else if (shutting_down_) {
      error = absl::CancelledError("AsyncTaskClient shut down");
    } else if (call->superseded &&
               status.error_code() == grpc::StatusCode::CANCELLED) {
      outcome = kRetry;
    } else if (n > 1 && MayComeFromOneId(status.error_code())) {
      outcome = kSplit;
    } else {
      error = FromGrpcStatus(status);
    }
    for (int i = 0; i < n; ++i) {
      const std::string& id = call->request.ids(i);
      auto it = entries_.find(id);
      if (it == entries_.end() || it->second.call != call) continue;
      Entry& entry = it->second;
      entry.call = nullptr;
      if (entry.waiters.empty()) {
        if (!entry.queued) entries_.erase(it);
        continue;
      }
      if (outcome == kAnswered && i < call->response.tasks_size() &&
          call->response.tasks(i).id() == id &&
          IsFinalState(call->response.tasks(i).state())) {
        for (auto& waiter : entry.waiters) {
          resolved.emplace_back(std::move(waiter), call->response.tasks(i));
        }
        entries_.erase(it);
      } else if (outcome == kFail) {
        for (auto& waiter : entry.waiters) {
          resolved.emplace_back(std::move(waiter), error);
        }
        entries_.erase(it);
      } else {
        if (outcome == kSplit) entry.solo = true;
        if (!entry.queued) {
          entry.queued = true;
          queued_.push_back(id);
        }
      }
    }
    FlushLocked(/*full_only=*/false);
  }
  Resolve(std::move(resolved));
}

void AwaitMultiplexer::OnTimeout(const std::string& id,
                                 const std::weak_ptr<Waiter>& weak,
                                 absl::Duration timeout) {
  std::shared_ptr<Waiter> waiter = weak.lock();
  if (waiter == nullptr) return;  // resolved and gone
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      auto& waiters = it->second.waiters;
      waiters.erase(std::remove(waiters.begin(), waiters.end(), waiter),
                    waiters.end());
      // An id in flight stays until its call returns; a queued one is
      // skipped by the flush.
      if (waiters.empty() && it->second.call == nullptr &&
          !it->second.queued) {
        entries_.erase(it);
      }
    }
  }
  waiter->promise.Set(absl::DeadlineExceededError(absl::StrCat(
      "task ", id, " not finished within ", absl::FormatDuration(timeout))));
}

void AwaitMultiplexer::Resolve(std::vector<Resolution> resolutions) {
  for (auto& [waiter, value] : resolutions) {
    core_->CancelAlarm(waiter->alarm);
    waiter->promise.Set(std::move(value));
  }
}

void AwaitMultiplexer::Shutdown() {
  std::vector<Resolution> resolved;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    for (auto& [id, entry] : entries_) {
      for (auto& waiter : entry.waiters) {
        resolved.emplace_back(std::move(waiter),
                              absl::CancelledError("AsyncTaskClient shut down"));
      }
    }
    entries_.clear();
    queued_.clear();
  }
  Resolve(std::move(resolved));
}

AsyncTaskClient::AwaitStats AwaitMultiplexer::stats() const {
  absl::MutexLock lock(&mu_);
  AsyncTaskClient::AwaitStats stats;
  stats.awaited_ids = entries_.size();
  stats.ids_in_flight = ids_in_flight_;
  stats.calls_in_flight = calls_.size();
  stats.calls_started = calls_started_;
  return stats;
}

}  // namespace taskd::internal
