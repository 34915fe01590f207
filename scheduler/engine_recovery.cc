// Engine::Recover: rebuilds the engine's in-memory state from Storage at
// start-up, before the server serves anything.
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "scheduler/engine.h"
#include "scheduler/engine_impl.h"
#include "scheduler/task_state.h"

namespace taskd {
namespace {

constexpr char kNextEpochKey[] = "next_epoch";
// Each run of the server numbers its events and leases from epoch << 40, so
// they never go backwards across restarts (2^40 per run is ample).
constexpr int kEpochShift = 40;

}  // namespace

// Durable queue settings live under "queue/<name>" (a v1::Queue holding
// only the settings).
const char kQueueKeyPrefix[] = "queue/";

absl::StatusOr<RecoveryStats> EngineImpl::Recover(Storage& storage) {
  if (store_.size() != 0) {
    return absl::FailedPreconditionError("Recover needs an empty engine");
  }
  RecoveryStats stats;
  const absl::Time now = clock_->Now();
  std::vector<ReadyEntry> ready;
  std::vector<std::pair<std::string, std::vector<std::string>>> waiting_on;

  auto on_meta = [&](absl::string_view key,
                     absl::string_view value) -> absl::Status {
    if (key == kNextEpochKey && !absl::SimpleAtoi(value, &stats.epoch)) {
      return absl::DataLossError(
          absl::StrCat("stored ", kNextEpochKey, " is not a number: ", value));
    }
    if (absl::StartsWith(key, kQueueKeyPrefix)) {
      v1::Queue settings;
      if (!settings.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return absl::DataLossError(absl::StrCat("stored ", key, " is corrupt"));
      }
      dispatcher_.SetLimits(settings.queue(),
                            QueueLimits{settings.paused(),
                                        settings.max_concurrency(),
                                        settings.max_dispatch_per_second()});
    }
    return absl::OkStatus();
  };
  uint64_t lease_epoch_floor = 0;  // above every stored lease's epoch
  auto on_task = [&](v1::Task& stored) -> absl::Status {
    // Refused before anything is indexed: the store sets it aside.
    absl::StatusOr<std::unique_ptr<TaskRecord>> record =
        TaskRecord::FromTask(stored);
    if (!record.ok()) return record.status();
    if (stored.spec().depends_on_size() > std::numeric_limits<int16_t>::max()) {
      return absl::DataLossError(absl::StrCat(
          "stored task ", stored.id(), " has too many dependencies"));
    }
    lease_epoch_floor =
        std::max(lease_epoch_floor, (stored.lease_id() >> kEpochShift) + 1);
    // New ids sort after every stored one, whatever the seed or the clock.
    ids_.AdvancePast(stored.id());
    TaskRecord& r = **record;
    const v1::Task& task = stored;
    const std::string& id = task.id();
    if (std::string slot = IdempotencySlot(task.spec().queue(), task.spec());
        !slot.empty()) {
      absl::MutexLock lock(&idempotency_mu_);
      idempotency_[std::move(slot)] = id;
    }
    switch (task.state()) {
      case v1::TASK_STATE_PENDING:
        r.set_ready_since(r.schedule_time);
        // id order = FIFO
        ready.push_back(ReadyOf(r, next_ready_seq_.fetch_add(1)));
        ++stats.pending;
        break;
      case v1::TASK_STATE_SCHEDULED:
        timers_.Schedule(r.schedule_time, [this, id] { OnScheduleDue(id); });
        if (task.spec().depends_on_size() > 0) {
          // Relinked once every task is loaded; finished ones count at once.
          r.unmet_deps = static_cast<int16_t>(task.spec().depends_on_size());
          waiting_on.emplace_back(id, std::vector<std::string>(
                                          task.spec().depends_on().begin(),
                                          task.spec().depends_on().end()));
        }
        ++stats.scheduled;
        break;
      case v1::TASK_STATE_RUNNING: {
        // A fresh lease window: the holder may reconnect and report by
        // lease id; otherwise the attempt ends lease_expired and retries.
        r.Run().lease.Orphan(task.lease_id(), now);
        const uint64_t lease = task.lease_id();
        timers_.Schedule(now + HeartbeatTimeout(r),
                         [this, id, lease] { OnLeaseCheck(id, lease); });
        ++stats.running;
        break;
      }
      default: {  // terminal (checked by FromTask)
        timers_.Schedule(ToTime(task.finish_time()) + ResultTtl(r),
                         [this, id] { OnRetentionDue(id); });
        ++stats.terminal;
      }
    }
    store_.Insert(*std::move(record), nullptr);
    ++stats.tasks;
    return absl::OkStatus();
  };
  if (auto s = storage.Recover(on_task, on_meta); !s.ok()) return s;
  stats.quarantined = storage.stats().quarantined;
  // A lost epoch record must not let lease ids repeat those of RUNNING tasks.
  stats.epoch = std::max(stats.epoch, lease_epoch_floor);

  // The new epoch is durable before any number of it is handed out.
  std::vector<Mutation> epoch;
  epoch.push_back(Mutation::PutMeta(kNextEpochKey,
                                    absl::StrCat(stats.epoch + 1)));
  if (auto s = storage.Append(std::move(epoch)); !s.ok()) return s;
  const uint64_t base = stats.epoch << kEpochShift;
  events_.Restart(base + 1);
  next_lease_.store(base + 1);

  for (ReadyEntry& e : ready) dispatcher_.Enqueue(std::move(e));
  Effects linked;
  for (auto& [dependent, deps] : waiting_on) {
    for (const std::string& dep : deps) LinkDependency(dependent, dep, linked);
  }
  Apply(linked);
  return stats;
}

}  // namespace taskd
