#include "clients/cpp/task_context.h"

#include <utility>

#include "api/strings/text_limits.h"
#include "api/strings/utf8.h"

namespace taskd {

TaskContext::TaskContext(v1::Task task, uint64_t lease_id, absl::Time deadline,
                         ProgressSink progress_sink, uint64_t max_result_bytes)
    : task_(std::move(task)),
      lease_id_(lease_id),
      deadline_(deadline),
      max_result_bytes_(max_result_bytes),
      progress_sink_(std::move(progress_sink)) {}

absl::Status TaskContext::ReportProgress(int percent,
                                         absl::string_view message) {
  if (percent < 0 || percent > 100) {
    return absl::InvalidArgumentError("progress percent must be in 0..100");
  }
  if (!progress_sink_) return absl::OkStatus();
  v1::ProgressUpdate update;
  update.set_task_id(task_.id());
  update.set_lease_id(lease_id_);
  update.set_percent(percent);
  // Text the server can parse and keeps whole: anything else could end the
  // worker's stream.
  update.set_message(ToValidUtf8(message, kMaxProgressMessageBytes));
  return progress_sink_(update);
}

bool TaskContext::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool TaskContext::WaitCancelled(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), timeout);
  return cancelled_;
}

TaskContext::CancelCause TaskContext::cancel_cause() const {
  absl::MutexLock lock(&mu_);
  return cause_;
}

std::string TaskContext::cancel_reason() const {
  absl::MutexLock lock(&mu_);
  return reason_;
}

void TaskContext::Cancel(CancelCause cause, absl::string_view reason) {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return;
    cancelled_ = true;
    cause_ = cause;
    reason_ = std::string(reason);
  }
  absl::MutexLock lock(&callback_mu_);
  callbacks_fired_ = true;
  for (auto& [id, fn] : callbacks_) fn();
  callbacks_.clear();
}

TaskContext::CancelCallback TaskContext::OnCancel(std::function<void()> fn) {
  absl::MutexLock lock(&callback_mu_);
  if (callbacks_fired_) {
    fn();
    return CancelCallback();
  }
  const uint64_t id = next_callback_id_++;
  callbacks_.emplace(id, std::move(fn));
  return CancelCallback(this, id);
}

void TaskContext::RemoveCallback(uint64_t id) {
  absl::MutexLock lock(&callback_mu_);
  callbacks_.erase(id);
}

TaskContext::CancelCallback::CancelCallback(CancelCallback&& other) noexcept
    : context_(std::exchange(other.context_, nullptr)), id_(other.id_) {}

TaskContext::CancelCallback& TaskContext::CancelCallback::operator=(
    CancelCallback&& other) noexcept {
  if (this != &other) {
    if (context_ != nullptr) context_->RemoveCallback(id_);
    context_ = std::exchange(other.context_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

TaskContext::CancelCallback::~CancelCallback() {
  if (context_ != nullptr) context_->RemoveCallback(id_);
}

}  // namespace taskd
