#include "scheduler/dispatcher.h"

#include <algorithm>
#include <utility>

namespace taskd {

void Dispatcher::Enqueue(ReadyEntry entry) {
  absl::MutexLock lock(&mu_);
  QueueReady& q = ready_[entry.queue];
  q.name = entry.queue;
  if (q.by_type[entry.type]
          .insert(Key{entry.priority, entry.seq, std::move(entry.task_id),
                      entry.since})
          .second) {
    ++q.size;
    q.since.insert(entry.since);
  }
  PumpLocked();
}

void Dispatcher::EraseReady(QueueReady& q, ReadySet& set,
                            ReadySet::iterator it) {
  auto since = q.since.find(it->since);
  if (since != q.since.end()) q.since.erase(since);
  set.erase(it);
  --q.size;
}

void Dispatcher::Remove(const ReadyEntry& entry) {
  absl::MutexLock lock(&mu_);
  auto q = ready_.find(entry.queue);
  if (q == ready_.end()) return;
  auto t = q->second.by_type.find(entry.type);
  if (t == q->second.by_type.end()) return;
  auto it = t->second.find(Key{entry.priority, entry.seq, entry.task_id, {}});
  if (it != t->second.end()) EraseReady(q->second, t->second, it);
  if (t->second.empty()) q->second.by_type.erase(t);
}

void Dispatcher::AddWorker(std::shared_ptr<WorkerSession> worker) {
  absl::MutexLock lock(&mu_);
  const WorkerSession* key = worker.get();
  slots_[key].worker = std::move(worker);
  PumpLocked();
}

void Dispatcher::Forget(Slot& slot, const std::string& task_id) {
  auto it = slot.held.find(task_id);
  if (it == slot.held.end()) return;
  auto q = ready_.find(it->second);
  if (q != ready_.end() && q->second.running > 0) --q->second.running;
  slot.held.erase(it);
}

std::vector<std::string> Dispatcher::RemoveWorker(const WorkerSession* worker) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(worker);
  if (it == slots_.end()) return {};
  std::vector<std::string> held;
  for (const auto& [id, queue] : it->second.held) held.push_back(id);
  for (const std::string& id : held) Forget(it->second, id);
  slots_.erase(it);
  PumpLocked();  // queue capacity may have come back
  return held;
}

void Dispatcher::Release(const WorkerSession* worker,
                         const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(worker);
  if (it == slots_.end() || !it->second.held.contains(task_id)) return;
  Forget(it->second, task_id);
  PumpLocked();
}

void Dispatcher::Pump() {
  absl::MutexLock lock(&mu_);
  PumpLocked();
}

void Dispatcher::SetLimits(const std::string& queue, QueueLimits limits) {
  absl::MutexLock lock(&mu_);
  QueueReady& q = ready_[queue];
  q.name = queue;
  if (limits.max_dispatch_per_second != q.limits.max_dispatch_per_second) {
    q.tokens = std::max(1.0, limits.max_dispatch_per_second);  // full bucket
    q.refilled = absl::InfinitePast();
  }
  q.limits = limits;
  PumpLocked();
}

QueueStats Dispatcher::Stats(const std::string& queue) const {
  absl::MutexLock lock(&mu_);
  QueueStats stats;
  auto q = ready_.find(queue);
  if (q != ready_.end()) {
    stats.limits = q->second.limits;
    stats.ready = q->second.size;
    stats.running = q->second.running;
    if (!q->second.since.empty()) stats.oldest_ready = *q->second.since.begin();
  }
  for (const auto& [key, slot] : slots_) {
    const auto& queues = slot.worker->queues;
    if (std::find(queues.begin(), queues.end(), queue) != queues.end()) {
      ++stats.workers;
    }
  }
  return stats;
}

std::vector<std::string> Dispatcher::KnownQueues() const {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_set<std::string> names;
  for (const auto& [name, q] : ready_) names.insert(name);
  for (const auto& [key, slot] : slots_) {
    for (const auto& q : slot.worker->queues) names.insert(q);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

size_t Dispatcher::ReadyCount(const std::string& queue) const {
  absl::MutexLock lock(&mu_);
  auto it = ready_.find(queue);
  return it == ready_.end() ? 0 : it->second.size;
}

size_t Dispatcher::WorkerCount() const {
  absl::MutexLock lock(&mu_);
  return slots_.size();
}

WorkerSlots Dispatcher::Slots() const {
  absl::MutexLock lock(&mu_);
  WorkerSlots out;
  for (const auto& [session, slot] : slots_) {
    const int64_t held = static_cast<int64_t>(slot.held.size());
    out.busy += held;
    out.free += std::max<int64_t>(0, slot.worker->concurrency - held);
  }
  return out;
}

bool Dispatcher::MayDispatch(QueueReady& q, absl::Time now) {
  const QueueLimits& l = q.limits;
  if (l.paused) return false;
  if (l.max_concurrency > 0 && q.running >= l.max_concurrency) return false;
  if (l.max_dispatch_per_second <= 0) return true;
  const double burst = std::max(1.0, l.max_dispatch_per_second);
  if (q.refilled == absl::InfinitePast()) {
    q.tokens = burst;
  } else if (now > q.refilled) {
    q.tokens = std::min(burst, q.tokens + absl::ToDoubleSeconds(now - q.refilled) *
                                              l.max_dispatch_per_second);
  }
  q.refilled = now;
  if (q.tokens >= 1.0) return true;
  // Only the bucket holds this queue back: ask to be woken for the next token.
  absl::Time due = now + absl::Seconds((1.0 - q.tokens) /
                                       l.max_dispatch_per_second);
  if (wake_ && (wake_at_ <= now || due < wake_at_)) {
    wake_at_ = due;
    wake_(due);
  }
  return false;
}

Dispatcher::ReadySet* Dispatcher::BestFor(const Slot& slot, absl::Time now,
                                          QueueReady** queue_out) {
  ReadySet* best = nullptr;
  for (const std::string& queue : slot.worker->queues) {
    auto q = ready_.find(queue);
    if (q == ready_.end() || q->second.size == 0) continue;
    if (!MayDispatch(q->second, now)) continue;
    auto consider = [&](ReadySet& set) {
      if (set.empty()) return;
      if (best == nullptr || *set.begin() < *best->begin()) {
        best = &set;
        *queue_out = &q->second;
      }
    };
    if (slot.worker->types.empty()) {
      for (auto& [type, set] : q->second.by_type) consider(set);
    } else {
      for (const std::string& type : slot.worker->types) {
        auto t = q->second.by_type.find(type);
        if (t != q->second.by_type.end()) consider(t->second);
      }
    }
  }
  return best;
}

void Dispatcher::PumpLocked() {
  const absl::Time now = clock_ ? clock_->Now() : absl::InfinitePast();
  while (true) {
    // The least loaded worker (by fraction of its credit in use) that has
    // credit and a task it may take.
    Slot* chosen = nullptr;
    ReadySet* set = nullptr;
    QueueReady* queue = nullptr;
    double chosen_load = 2.0;
    for (auto& [key, slot] : slots_) {
      int held = static_cast<int>(slot.held.size());
      if (held >= slot.worker->concurrency) continue;
      double load = static_cast<double>(held) / slot.worker->concurrency;
      if (load >= chosen_load) continue;
      QueueReady* q = nullptr;
      ReadySet* s = BestFor(slot, now, &q);
      if (s == nullptr) continue;
      chosen = &slot;
      chosen_load = load;
      set = s;
      queue = q;
    }
    if (chosen == nullptr) return;
    Key key = *set->begin();
    EraseReady(*queue, *set, set->begin());
    if (set->empty()) {
      // Type names come from clients: drop empty sets so they cannot pile up.
      for (auto it = queue->by_type.begin(); it != queue->by_type.end();) {
        if (it->second.empty()) {
          queue->by_type.erase(it++);
        } else {
          ++it;
        }
      }
    }
    if (start_(key.task_id, chosen->worker)) {
      ++queue->running;
      if (queue->limits.max_dispatch_per_second > 0) queue->tokens -= 1.0;
      chosen->held.emplace(std::move(key.task_id), queue->name);
    }
  }
}

}  // namespace taskd
