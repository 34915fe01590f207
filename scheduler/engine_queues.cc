// Engine: the operator view of queues (QueueService): counts, pause,
// limits and purge. Queue settings are durable meta records.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "scheduler/engine.h"
#include "scheduler/engine_impl.h"
#include "scheduler/task_state.h"

namespace taskd {
namespace {

constexpr int kMaxQueueConcurrency = 1'000'000;
constexpr double kMaxDispatchPerSecond = 1'000'000;

absl::Status CheckQueueName(const std::string& queue) {
  if (queue.empty()) return absl::InvalidArgumentError("queue: required");
  return ValidateQueueName(queue, "queue");
}

bool AnyTask(const StateCounts& counts) {
  return std::any_of(counts.begin(), counts.end(),
                     [](int64_t n) { return n != 0; });
}

v1::Queue QueueView(const std::string& name, const StateCounts& counts,
                    const QueueStats& stats, absl::Time now) {
  v1::Queue out;
  out.set_queue(name);
  out.set_pending(counts[v1::TASK_STATE_PENDING]);
  out.set_scheduled(counts[v1::TASK_STATE_SCHEDULED]);
  out.set_running(counts[v1::TASK_STATE_RUNNING]);
  out.set_succeeded(counts[v1::TASK_STATE_SUCCEEDED]);
  out.set_failed(counts[v1::TASK_STATE_FAILED]);
  out.set_cancelled(counts[v1::TASK_STATE_CANCELLED]);
  if (stats.oldest_ready != absl::InfiniteFuture()) {
    *out.mutable_oldest_pending_age() =
        FromDuration(std::max(absl::ZeroDuration(), now - stats.oldest_ready));
  }
  out.set_paused(stats.limits.paused);
  out.set_max_concurrency(stats.limits.max_concurrency);
  out.set_max_dispatch_per_second(stats.limits.max_dispatch_per_second);
  out.set_workers(stats.workers);
  return out;
}

}  // namespace

absl::StatusOr<v1::Queue> EngineImpl::GetQueue(
    const std::string& queue) const {
  if (auto s = CheckQueueName(queue); !s.ok()) return s;
  const StateCounts counts = store_.CountsOf(queue);
  const std::vector<std::string> known = dispatcher_.KnownQueues();
  if (!AnyTask(counts) &&
      std::find(known.begin(), known.end(), queue) == known.end()) {
    return absl::NotFoundError(absl::StrCat(
        "queue ", queue, " not found (it has no tasks, workers or settings)"));
  }
  return QueueView(queue, counts, dispatcher_.Stats(queue), clock_->Now());
}

std::vector<v1::Queue> EngineImpl::ListQueues() const {
  // One pass over the shards for every queue's counts (ordered by name).
  std::map<std::string, StateCounts> counts = store_.AllCounts();
  absl::flat_hash_set<std::string> known;
  for (auto& name : dispatcher_.KnownQueues()) {
    counts.try_emplace(name);
    known.insert(std::move(name));
  }
  const absl::Time now = clock_->Now();
  std::vector<v1::Queue> out;
  for (const auto& [name, c] : counts) {
    if (!AnyTask(c) && !known.contains(name)) continue;  // as GetQueue
    out.push_back(QueueView(name, c, dispatcher_.Stats(name), now));
  }
  return out;
}

void EngineImpl::ChangeQueueLimits(const std::string& queue,
                               const std::function<void(QueueLimits&)>& edit,
                               QueueCallback done) {
  if (auto s = CheckQueueName(queue); !s.ok()) return done(s);
  uint64_t ticket = 0;
  {
    // Held across read-modify-write and the journal write, so concurrent
    // changes neither lose each other nor reach the disk out of order.
    absl::MutexLock lock(&queue_settings_mu_);
    QueueLimits limits = dispatcher_.Stats(queue).limits;
    edit(limits);
    dispatcher_.SetLimits(queue, limits);
    if (options_.journal != nullptr) {
      v1::Queue settings;
      settings.set_queue(queue);
      settings.set_paused(limits.paused);
      settings.set_max_concurrency(limits.max_concurrency);
      settings.set_max_dispatch_per_second(limits.max_dispatch_per_second);
      std::vector<Mutation> write;
      write.push_back(Mutation::PutMeta(absl::StrCat(kQueueKeyPrefix, queue),
                                        settings.SerializeAsString()));
      ticket = options_.journal->Write(std::move(write));
    }
  }
  events_.Wake();  // dispatches that a resume or a raised limit allowed
  auto answer = [this, queue, done = std::move(done)](absl::Status s) {
    if (!s.ok()) {
      return done(absl::UnavailableError(
          absl::StrCat("queue settings could not be stored: ", s.message())));
    }
    done(GetQueue(queue));
  };
  if (ticket == 0) return answer(absl::OkStatus());
  options_.journal->WhenDurable(ticket, std::move(answer));
}

void EngineImpl::PauseQueueAsync(const std::string& queue, bool paused,
                             QueueCallback done) {
  ChangeQueueLimits(
      queue, [paused](QueueLimits& l) { l.paused = paused; }, std::move(done));
}

void EngineImpl::UpdateQueueAsync(const std::string& queue,
                              std::optional<int> max_concurrency,
                              std::optional<double> max_dispatch_per_second,
                              QueueCallback done) {
  if (max_concurrency &&
      (*max_concurrency < 0 || *max_concurrency > kMaxQueueConcurrency)) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("max_concurrency: must be 0 (no limit) ..",
                     kMaxQueueConcurrency, ", got ", *max_concurrency)));
  }
  if (max_dispatch_per_second &&
      !(std::isfinite(*max_dispatch_per_second) &&
        *max_dispatch_per_second >= 0 &&
        *max_dispatch_per_second <= kMaxDispatchPerSecond)) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("max_dispatch_per_second: must be 0 (no limit) ..",
                     kMaxDispatchPerSecond, ", got ",
                     *max_dispatch_per_second)));
  }
  ChangeQueueLimits(
      queue,
      [&](QueueLimits& l) {
        if (max_concurrency) l.max_concurrency = *max_concurrency;
        if (max_dispatch_per_second) {
          l.max_dispatch_per_second = *max_dispatch_per_second;
        }
      },
      std::move(done));
}

void EngineImpl::PurgeQueueAsync(
    const std::string& queue, const std::string& reason,
    std::function<void(absl::StatusOr<int64_t>)> done) {
  if (auto s = CheckQueueName(queue); !s.ok()) return done(s);
  const std::vector<std::string> ids = store_.IdsAfter(
      "", std::numeric_limits<size_t>::max(), [&](const TaskRecord& r) {
        const v1::TaskState st = r.state();
        return r.spec.queue() == queue &&
               (st == v1::TASK_STATE_PENDING || st == v1::TASK_STATE_SCHEDULED);
      });
  if (ids.empty()) return done(int64_t{0});
  struct Purge {
    std::atomic<size_t> remaining;
    std::atomic<int64_t> cancelled{0};
    std::function<void(absl::StatusOr<int64_t>)> done;
  };
  auto purge = std::make_shared<Purge>();
  purge->remaining.store(ids.size());
  purge->done = std::move(done);
  const std::string why = reason.empty() ? "queue purged" : reason;
  for (const std::string& id : ids) {
    CancelAsync(id, why, [purge](absl::StatusOr<v1::Task> task) {
      if (task.ok() && task->state() == v1::TASK_STATE_CANCELLED &&
          task->error().code() == "cancelled") {
        purge->cancelled.fetch_add(1);
      }
      if (purge->remaining.fetch_sub(1) == 1) {
        purge->done(purge->cancelled.load());
      }
    });
  }
}

}  // namespace taskd
