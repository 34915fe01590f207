#include "scheduler/dispatcher.h"

#include <algorithm>
#include <utility>

namespace taskd {

const Dispatcher::Node* Dispatcher::Lists::Front() const {
  if (nonempty == 0) return nullptr;
  // The highest set bit is the best priority with an entry.
  const int p = 31 - __builtin_clz(static_cast<unsigned>(nonempty));
  return head[p];
}

void Dispatcher::Lists::Insert(Node* n, Link link) {
  const int p = n->priority;
  Node* after = tail[p];
  while (after != nullptr && n->seq < after->seq) after = after->prev[link];
  n->prev[link] = after;
  n->next[link] = after != nullptr ? after->next[link] : head[p];
  if (n->next[link] != nullptr) {
    n->next[link]->prev[link] = n;
  } else {
    tail[p] = n;
  }
  if (after != nullptr) {
    after->next[link] = n;
  } else {
    head[p] = n;
  }
  nonempty |= static_cast<uint16_t>(1u << p);
}

void Dispatcher::Lists::Unlink(Node* n, Link link) {
  const int p = n->priority;
  if (n->prev[link] != nullptr) {
    n->prev[link]->next[link] = n->next[link];
  } else {
    head[p] = n->next[link];
  }
  if (n->next[link] != nullptr) {
    n->next[link]->prev[link] = n->prev[link];
  } else {
    tail[p] = n->prev[link];
  }
  n->prev[link] = n->next[link] = nullptr;
  if (head[p] == nullptr) nonempty &= static_cast<uint16_t>(~(1u << p));
}

void Dispatcher::Enqueue(ReadyEntry entry) {
  static_assert(sizeof(Node) <= 72, "a queued task's entry grew (header)");
  absl::MutexLock lock(&mu_);
  QueueReady& q = QueueFor(entry.queue);
  // Validation allows 0..9; anything else must not index past the lists.
  entry.priority = std::clamp(entry.priority, 0, kPriorities - 1);
  if (!q.nodes.contains(entry.task)) {
    auto node = std::make_unique<Node>();
    node->task = entry.task;
    auto type = q.by_type.try_emplace(std::move(entry.type)).first;
    node->type = &type->first;
    node->priority = static_cast<uint64_t>(entry.priority);
    node->seq = entry.seq;
    node->since_ns = absl::ToUnixNanos(entry.since);
    Node* n = node.get();
    q.nodes.insert(std::move(node));
    q.all.Insert(n, kAll);
    type->second.Insert(n, kType);
  }
  PumpLocked();
}

Dispatcher::QueueReady& Dispatcher::QueueFor(const std::string& queue) {
  auto [it, added] = ready_.try_emplace(queue);
  if (added) it->second.name = queue;  // once, not per entry
  return it->second;
}

bool Dispatcher::EraseReady(QueueReady& q, const TaskKey& task) {
  auto it = q.nodes.find(task);
  if (it == q.nodes.end()) return false;
  Node* n = it->get();
  q.all.Unlink(n, kAll);
  auto t = q.by_type.find(*n->type);
  if (t != q.by_type.end()) {
    t->second.Unlink(n, kType);
    // Type names come from clients: drop empty lists so they cannot pile up.
    if (t->second.empty()) q.by_type.erase(t);
  }
  q.nodes.erase(it);  // frees n
  return true;
}

void Dispatcher::MaybeForget(const std::string& queue) {
  auto q = ready_.find(queue);
  if (q == ready_.end()) return;
  const QueueReady& r = q->second;
  const QueueLimits& l = r.limits;
  if (r.size() == 0 && r.running == 0 && !l.paused && l.max_concurrency == 0 &&
      l.max_dispatch_per_second == 0) {
    ready_.erase(q);
  }
}

void Dispatcher::Remove(const ReadyEntry& entry) {
  absl::MutexLock lock(&mu_);
  auto q = ready_.find(entry.queue);
  if (q == ready_.end()) return;
  EraseReady(q->second, entry.task);
  MaybeForget(entry.queue);
}

void Dispatcher::AddWorker(std::shared_ptr<WorkerSession> worker) {
  absl::MutexLock lock(&mu_);
  const WorkerSession* key = worker.get();
  slots_[key].worker = std::move(worker);
  PumpLocked();
}

void Dispatcher::Forget(Slot& slot, const TaskKey& task) {
  auto it = slot.held.find(task);
  if (it == slot.held.end()) return;
  const std::string queue = std::move(it->second);
  slot.held.erase(it);
  auto q = ready_.find(queue);
  if (q != ready_.end() && q->second.running > 0) --q->second.running;
  MaybeForget(queue);
}

std::vector<TaskKey> Dispatcher::RemoveWorker(const WorkerSession* worker) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(worker);
  if (it == slots_.end()) return {};
  std::vector<TaskKey> held;
  for (const auto& [task, queue] : it->second.held) held.push_back(task);
  for (const TaskKey& task : held) Forget(it->second, task);
  slots_.erase(it);
  PumpLocked();  // queue capacity may have come back
  return held;
}

void Dispatcher::Release(const WorkerSession* worker, const TaskKey& task) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(worker);
  if (it == slots_.end() || !it->second.held.contains(task)) return;
  Forget(it->second, task);
  PumpLocked();
}

void Dispatcher::Pump() {
  absl::MutexLock lock(&mu_);
  PumpLocked();
}

void Dispatcher::SetLimits(const std::string& queue, QueueLimits limits) {
  absl::MutexLock lock(&mu_);
  QueueReady& q = QueueFor(queue);
  if (limits.max_dispatch_per_second != q.limits.max_dispatch_per_second) {
    q.tokens = std::max(1.0, limits.max_dispatch_per_second);  // full bucket
    q.refilled = absl::InfinitePast();
  }
  q.limits = limits;
  PumpLocked();
  MaybeForget(queue);
}

QueueStats Dispatcher::Stats(const std::string& queue) const {
  absl::MutexLock lock(&mu_);
  QueueStats stats;
  auto q = ready_.find(queue);
  if (q != ready_.end()) {
    stats.limits = q->second.limits;
    stats.ready = q->second.size();
    stats.running = q->second.running;
    // The oldest entry of each priority heads its list (arrival order).
    for (const Node* head : q->second.all.head) {
      if (head != nullptr) {
        stats.oldest_ready =
            std::min(stats.oldest_ready, absl::FromUnixNanos(head->since_ns));
      }
    }
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
  return it == ready_.end() ? 0 : it->second.size();
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

const Dispatcher::Node* Dispatcher::BestFor(const Slot& slot, absl::Time now,
                                            QueueReady** queue_out) {
  const Node* best = nullptr;
  for (const std::string& queue : slot.worker->queues) {
    auto q = ready_.find(queue);
    if (q == ready_.end() || q->second.size() == 0) continue;
    if (!MayDispatch(q->second, now)) continue;
    auto consider = [&](const Lists& lists) {
      const Node* front = lists.Front();
      if (front != nullptr && (best == nullptr || front->Before(*best))) {
        best = front;
        *queue_out = &q->second;
      }
    };
    if (slot.worker->types.empty()) {
      consider(q->second.all);  // every type: one lookup, however many
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
    const Node* best = nullptr;
    QueueReady* queue = nullptr;
    double chosen_load = 2.0;
    for (auto& [session, slot] : slots_) {
      int held = static_cast<int>(slot.held.size());
      if (held >= slot.worker->concurrency) continue;
      // A worker that does not read its stream gets nothing more until its
      // outbox drains (its sink then asks for a Pump).
      if (slot.worker->sink->Congested()) continue;
      double load = static_cast<double>(held) / slot.worker->concurrency;
      if (load >= chosen_load) continue;
      QueueReady* q = nullptr;
      const Node* k = BestFor(slot, now, &q);
      if (k == nullptr) continue;
      chosen = &slot;
      chosen_load = load;
      best = k;
      queue = q;
    }
    if (chosen == nullptr) return;
    const TaskKey task = best->task;
    EraseReady(*queue, task);
    const std::string name = queue->name;
    if (start_(task, chosen->worker)) {
      ++queue->running;
      if (queue->limits.max_dispatch_per_second > 0) queue->tokens -= 1.0;
      chosen->held.emplace(task, name);
    } else {
      MaybeForget(name);  // a stale entry was the queue's last
    }
  }
}

}  // namespace taskd
