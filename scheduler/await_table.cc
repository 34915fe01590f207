#include "scheduler/await_table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace taskd {

absl::StatusOr<AwaitTable::WaiterPtr> AwaitTable::Register(
    std::vector<std::string> ids, bool any, bool include_payloads,
    size_t max_response_bytes, Callback done) {
  auto w = std::make_shared<internal::Waiter>();
  w->remaining.store(any ? 1 : static_cast<int64_t>(ids.size()));
  w->ids = std::move(ids);
  w->include_payloads = include_payloads;
  w->max_response_bytes = max_response_bytes;
  w->done = std::move(done);
  absl::MutexLock lock(&mu_);
  // Checked under mu_ so that Shutdown cannot miss this Await.
  if (closed_) return absl::UnavailableError("server is shutting down");
  waiters_.insert(w);
  return w;
}

void AwaitTable::WaitOn(const std::string& id, const WaiterPtr& w) {
  absl::MutexLock lock(&mu_);
  if (w->fired.load()) return;  // answered already (ANY): nothing to park
  by_task_[id].push_back(w);
}

std::vector<AwaitTable::WaiterPtr> AwaitTable::TakeWaitersOf(
    const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = by_task_.find(id);
  if (it == by_task_.end()) return {};
  std::vector<WaiterPtr> out = std::move(it->second);
  by_task_.erase(it);
  return out;
}

void AwaitTable::CountDone(const WaiterPtr& w) {
  if (w->remaining.fetch_sub(1) == 1) Fire(w, absl::OkStatus(), true);
}

void AwaitTable::ArmTimeout(const WaiterPtr& w, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return;
  std::weak_ptr<internal::Waiter> weak = w;
  absl::MutexLock lock(&mu_);
  // Armed only while registered: an Await answered meanwhile is gone from
  // waiters_, and its timer would never be freed.
  if (!waiters_.contains(w)) return;
  w->timer = timers_->Schedule(deadline, [this, weak] {
    if (auto alive = weak.lock()) Fire(alive, absl::OkStatus(), false);
  });
}

void AwaitTable::UnparkLocked(const WaiterPtr& w) {
  waiters_.erase(w);
  if (w->timer) timers_->Cancel(*w->timer);
  for (const std::string& id : w->ids) {
    auto it = by_task_.find(id);
    if (it == by_task_.end()) continue;
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), w), list.end());
    if (list.empty()) by_task_.erase(it);
  }
}

bool AwaitTable::Withdraw(const WaiterPtr& w) {
  if (w == nullptr) return false;
  {
    absl::MutexLock lock(&mu_);
    if (w->fired.exchange(true)) return false;
    UnparkLocked(w);
  }
  w->done = nullptr;
  return true;
}

void AwaitTable::Fire(const WaiterPtr& w, absl::Status status, bool done) {
  {
    // The race for `fired` is won under mu_ and counted at once, so that
    // Shutdown, once it has seen no callback in flight, knows none can start.
    absl::MutexLock lock(&mu_);
    if (w->fired.exchange(true)) return;
    ++firing_;
    UnparkLocked(w);
  }
  Callback callback = std::move(w->done);
  if (!status.ok()) {
    callback(status);
  } else {
    v1::AwaitResponse response;
    response.set_done(done);
    size_t bytes = 0;
    absl::Status too_big;
    for (size_t i = 0; i < w->ids.size(); ++i) {
      const std::string& id = w->ids[i];
      v1::Task* out = response.add_tasks();
      auto task = read_(id);
      if (!task.ok()) {
        out->set_id(id);  // removed by retention meanwhile
        continue;
      }
      *out = *std::move(task);
      if (!w->include_payloads) out->mutable_spec()->clear_payload();
      bytes += out->ByteSizeLong() + 8;
      if (w->max_response_bytes > 0 && bytes > w->max_response_bytes) {
        // Stop building at once: the answer would not fit a client anyway.
        const size_t fit = std::max<size_t>(1, i);
        too_big = absl::ResourceExhaustedError(absl::StrCat(
            "the answer for ", w->ids.size(), " tasks passes ",
            w->max_response_bytes,
            " bytes (a client's default receive limit) at ids[", i,
            "]; await at most ", fit, " ids at once",
            w->include_payloads ? ", or without include_payloads" : "",
            " (results are always returned; read large ones with GetTask)"));
        break;
      }
    }
    if (!too_big.ok()) {
      callback(too_big);
    } else {
      callback(std::move(response));
    }
  }
  absl::MutexLock lock(&mu_);
  --firing_;
}

void AwaitTable::Shutdown() {
  std::vector<WaiterPtr> pending;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    pending.assign(waiters_.begin(), waiters_.end());
  }
  for (auto& w : pending) {
    Fire(w, absl::UnavailableError("server is shutting down"), false);
  }
  // Callbacks other threads were running (a timeout, a completion) have
  // returned too: after this, none runs again.
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &firing_));
}

size_t AwaitTable::pending() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace taskd
