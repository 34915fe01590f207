#include "scheduler/task_store.h"

#include <algorithm>
#include <utility>

namespace taskd {

TaskStore::TaskStore(size_t shards) {
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i)
    shards_.push_back(std::make_unique<Shard>());
}

void TaskStore::Shard::Count(const TaskRecord& r, int delta) {
  auto it = counts.find(r.spec.queue());
  if (it == counts.end()) it = counts.try_emplace(std::string(r.spec.queue())).first;
  auto& per_state = it->second;
  per_state[r.state()] += delta;
  // Queue names come from clients: a queue with no task here is forgotten.
  if (delta < 0 && std::all_of(per_state.begin(), per_state.end(),
                               [](int64_t n) { return n == 0; })) {
    counts.erase(it);
  }
}

bool TaskStore::Contains(const std::string& id) const {
  return MutateTask(id, [](TaskRecord&) {});
}

void TaskStore::Insert(std::unique_ptr<TaskRecord> record,
                       const std::function<void(TaskRecord&)>& fn) {
  Shard& shard = ShardFor(record->key);
  absl::MutexLock lock(&shard.mu);
  TaskRecord& r = *record;
  shard.tasks.emplace(r.key, std::move(record));
  shard.Count(r, +1);
  size_.fetch_add(1);
  if (fn) fn(r);
}

std::unique_ptr<TaskRecord> TaskStore::EraseUnless(
    const std::string& id, const std::function<bool(const TaskRecord&)>& keep) {
  const std::optional<TaskKey> key = TaskKeyOf(id);
  if (!key) return nullptr;
  Shard& shard = ShardFor(*key);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.tasks.find(*key);
  if (it == shard.tasks.end() || keep(*it->second)) return nullptr;
  std::unique_ptr<TaskRecord> out = std::move(it->second);
  shard.Count(*out, -1);
  shard.tasks.erase(it);
  size_.fetch_sub(1);
  return out;
}

void TaskStore::SetState(TaskRecord& r, v1::TaskState to) const {
  Shard& shard = ShardFor(r.key);
  shard.mu.AssertHeld();  // by the MutateTask/Insert running this
  shard.Count(r, -1);
  r.InitState(to);
  shard.Count(r, +1);
}

size_t TaskStore::size() const { return size_.load(); }

StateCounts TaskStore::CountsOf(const std::string& queue) const {
  StateCounts out{};
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    auto it = shard->counts.find(queue);
    if (it == shard->counts.end()) continue;
    for (size_t i = 0; i < out.size(); ++i) out[i] += it->second[i];
  }
  return out;
}

std::map<std::string, StateCounts> TaskStore::AllCounts() const {
  std::map<std::string, StateCounts> out;
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    for (const auto& [name, c] : shard->counts) {
      StateCounts& sum = out[name];
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += c[i];
    }
  }
  return out;
}

std::vector<std::string> TaskStore::IdsAfter(
    const std::string& after, size_t limit_per_shard,
    const std::function<bool(const TaskRecord&)>& match) const {
  std::vector<std::string> ids;
  // Every stored id is above "" and below an id with no key (which is made
  // of valid digits only when it is past 128 bits).
  std::optional<TaskKey> from;
  if (!after.empty()) {
    from = TaskKeyOf(after);
    if (!from) return ids;
  }
  for (const auto& shard : shards_) {
    absl::MutexLock lock(&shard->mu);
    size_t taken = 0;
    for (auto it = from ? shard->tasks.upper_bound(*from)
                        : shard->tasks.begin();
         it != shard->tasks.end() && taken < limit_per_shard; ++it) {
      if (!match(*it->second)) continue;
      ids.push_back(it->second->id());
      ++taken;
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace taskd
