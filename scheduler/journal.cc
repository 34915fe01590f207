#include "scheduler/journal.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace taskd {

Journal::Journal(Storage* storage,
                 std::function<void(const absl::Status&)> on_failure,
                 JournalObserver* observer, Clock* clock)
    : storage_(storage),
      on_failure_(std::move(on_failure)),
      observer_(observer),
      clock_(clock != nullptr ? clock : RealClock::Get()) {
  committer_ = std::thread([this] { Run(); });
  notifier_ = std::thread([this] { Notify(); });
}

Journal::~Journal() { Stop(); }

uint64_t Journal::Write(std::vector<Mutation> mutations) {
  absl::MutexLock lock(&mu_);
  for (Mutation& m : mutations) queued_.push_back(std::move(m));
  ++stats_.writes;
  return next_ticket_++;
}

void Journal::WhenDurable(uint64_t ticket, Callback fn) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (ticket > durable_ && failure_.ok() && !stopped_) {
      waiting_.emplace(ticket, std::move(fn));
      return;
    }
    if (ticket > durable_) {
      status = failure_.ok()
                   ? absl::UnavailableError("server is shutting down")
                   : failure_;
    }
  }
  fn(status);
}

uint64_t Journal::last_ticket() const {
  absl::MutexLock lock(&mu_);
  return next_ticket_ - 1;
}

Journal::Stats Journal::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void Journal::Run() {
  while (true) {
    std::vector<Mutation> batch;
    uint64_t upto;
    bool failed;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Journal* j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(j->mu_) {
            return !j->queued_.empty() || j->stopping_;
          },
          this));
      if (queued_.empty() && stopping_) break;
      batch.swap(queued_);
      upto = next_ticket_ - 1;
      failed = !failure_.ok();
    }
    // After a failure nothing more is written: the store is read-only.
    const size_t changes = batch.size();
    const absl::Time start = clock_->Now();
    absl::Status status =
        failed ? absl::OkStatus() : storage_->Append(std::move(batch));
    if (observer_ != nullptr && !failed) {
      observer_->OnCommit(changes, clock_->Now() - start, status.ok());
    }
    absl::MutexLock lock(&mu_);
    ++stats_.commits;
    Commit commit;
    if (!status.ok() && failure_.ok()) {
      failure_ = absl::UnavailableError(
          absl::StrCat("storage write failed: ", status.ToString()));
      commit.failed_now = status;
    }
    if (failure_.ok()) {
      durable_ = std::max(durable_, upto);
      commit.listener = durable_listener_;
      commit.durable = durable_;
    }
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->first <= durable_) {
        commit.ready.emplace_back(std::move(it->second), absl::OkStatus());
      } else if (!failure_.ok()) {
        commit.ready.emplace_back(std::move(it->second), failure_);
      } else {
        break;
      }
      it = waiting_.erase(it);
    }
    commits_.push_back(std::move(commit));
  }
  absl::MutexLock lock(&mu_);
  committer_done_ = true;
}

void Journal::Notify() {
  while (true) {
    std::vector<Commit> commits;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Journal* j) ABSL_EXCLUSIVE_LOCKS_REQUIRED(j->mu_) {
            return !j->commits_.empty() || j->committer_done_;
          },
          this));
      if (commits_.empty()) break;  // and the committer is done
      commits.swap(commits_);
    }
    for (Commit& c : commits) {
      if (c.listener) c.listener(c.durable);
      for (auto& [fn, s] : c.ready) fn(s);
      if (!c.failed_now.ok() && on_failure_) on_failure_(c.failed_now);
    }
  }
}

void Journal::SetDurableListener(std::function<void(uint64_t)> fn) {
  absl::MutexLock lock(&mu_);
  durable_listener_ = std::move(fn);
}

void Journal::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_ || !committer_.joinable()) return;
    stopping_ = true;
  }
  committer_.join();
  notifier_.join();  // after the committer's last commit was answered
  std::multimap<uint64_t, Callback> left;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    left.swap(waiting_);
  }
  for (auto& [ticket, fn] : left) {
    fn(absl::UnavailableError("server is shutting down"));
  }
}

}  // namespace taskd
