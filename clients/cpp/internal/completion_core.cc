#include "clients/cpp/internal/completion_core.h"

#include <cstdio>
#include <utility>

namespace taskd::internal {

class CompletionCore::AlarmTag final : public CompletionTag {
 public:
  AlarmTag(CompletionCore* core, uint64_t id, std::function<void(bool)> fn)
      : core_(core), id_(id), fn_(std::move(fn)) {}
  grpc::Alarm& alarm() { return alarm_; }

  void Complete(bool ok) override {
    core_->AlarmDone(id_);
    std::function<void(bool)> fn = std::move(fn_);
    delete this;
    fn(ok);
  }

 private:
  CompletionCore* const core_;
  const uint64_t id_;
  std::function<void(bool)> fn_;
  grpc::Alarm alarm_;
};

CompletionCore::~CompletionCore() {
  // Only reached after Poll() returned (the polling thread holds the last
  // reference until then) or when Poll() never ran.
  Shutdown();
}

void CompletionCore::Poll() {
  thread_id_.store(std::this_thread::get_id());
  void* tag = nullptr;
  bool ok = false;
  while (cq_.Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Complete(ok);
  absl::MutexLock lock(&mu_);
  if (in_flight_ != 0) {
    // Cannot happen with a drained queue; say so loudly rather than free
    // memory that a tag might still use.
    std::fprintf(stderr, "taskd client: %lld tags in flight after drain\n",
                 static_cast<long long>(in_flight_));
  }
}

void CompletionCore::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    for (grpc::ClientContext* context : contexts_) context->TryCancel();
    for (auto& [id, tag] : alarms_) tag->alarm().Cancel();
  }
  // No operation starts after shutting_down_ was set (StartOp and SetAlarm
  // check it under mu_), so the queue may be shut down now.
  cq_.Shutdown();
}

bool CompletionCore::StartOp(grpc::ClientContext* context,
                             absl::FunctionRef<void()> start) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return false;
  ++in_flight_;
  if (context != nullptr) contexts_.insert(context);
  start();
  return true;
}

void CompletionCore::OpDone(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  --in_flight_;
  if (context != nullptr) contexts_.erase(context);
}

uint64_t CompletionCore::SetAlarm(absl::Time deadline,
                                  std::function<void(bool)> fn) {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return 0;
  const uint64_t id = next_alarm_id_++;
  auto* tag = new AlarmTag(this, id, std::move(fn));
  alarms_[id] = tag;
  ++in_flight_;
  tag->alarm().Set(&cq_, absl::ToChronoTime(deadline), tag);
  return id;
}

void CompletionCore::CancelAlarm(uint64_t id) {
  if (id == 0) return;
  absl::MutexLock lock(&mu_);
  // Present until its tag runs, so the alarm object is still alive.
  auto it = alarms_.find(id);
  if (it != alarms_.end()) it->second->alarm().Cancel();
}

void CompletionCore::AlarmDone(uint64_t id) {
  absl::MutexLock lock(&mu_);
  alarms_.erase(id);
  --in_flight_;
}

void ToProtoDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

}  // namespace taskd::internal
