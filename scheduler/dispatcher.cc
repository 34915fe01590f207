#include "scheduler/dispatcher.h"

#include <utility>

namespace taskd {

void Dispatcher::Enqueue(ReadyEntry entry) {
  absl::MutexLock lock(&mu_);
  QueueReady& q = ready_[entry.queue];
  if (q.by_type[entry.type]
          .insert(Key{entry.priority, entry.seq, std::move(entry.task_id)})
          .second) {
    ++q.size;
  }
  Pump();
}

void Dispatcher::Remove(const ReadyEntry& entry) {
  absl::MutexLock lock(&mu_);
  auto q = ready_.find(entry.queue);
  if (q == ready_.end()) return;
  auto t = q->second.by_type.find(entry.type);
  if (t == q->second.by_type.end()) return;
  if (t->second.erase(Key{entry.priority, entry.seq, entry.task_id}) > 0) {
    --q->second.size;
  }
  if (t->second.empty()) q->second.by_type.erase(t);
}

void Dispatcher::AddWorker(std::shared_ptr<WorkerSession> worker) {
  absl::MutexLock lock(&mu_);
  const WorkerSession* key = worker.get();
  slots_[key].worker = std::move(worker);
  Pump();
}

std::vector<std::string> Dispatcher::RemoveWorker(const WorkerSession* worker) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(worker);
  if (it == slots_.end()) return {};
  std::vector<std::string> held(it->second.held.begin(), it->second.held.end());
  slots_.erase(it);
  return held;
}

void Dispatcher::Release(const WorkerSession* worker,
                         const std::string& task_id) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(worker);
  if (it == slots_.end() || it->second.held.erase(task_id) == 0) return;
  Pump();
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

Dispatcher::ReadySet* Dispatcher::BestFor(const Slot& slot,
                                          QueueReady** queue_out) {
  ReadySet* best = nullptr;
  for (const std::string& queue : slot.worker->queues) {
    auto q = ready_.find(queue);
    if (q == ready_.end() || q->second.size == 0) continue;
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

void Dispatcher::Pump() {
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
      ReadySet* s = BestFor(slot, &q);
      if (s == nullptr) continue;
      chosen = &slot;
      chosen_load = load;
      set = s;
      queue = q;
    }
    if (chosen == nullptr) return;
    Key key = *set->begin();
    set->erase(set->begin());
    --queue->size;
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
      chosen->held.insert(std::move(key.task_id));
    }
  }
}

}  // namespace taskd
