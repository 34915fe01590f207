#include "scheduler/timer_queue.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace taskd {

struct TimerQueue::Node {
  Callback fn;
  uint32_t seq_low = 0;  // low 32 bits of the arming order, in the TimerId
  int32_t slot = -1;     // level * kSlotsPerLevel + slot; -1 when free
  uint32_t pos = kNil;   // index in the slot's entries; next free when free
};

// Slots hold entries by value, so spreading a slot to lower levels streams
// through an array instead of chasing a list through the nodes.
struct TimerQueue::Entry {
  absl::Time due;
  uint64_t seq;  // arming order
  uint32_t node;
};

struct TimerQueue::Slot {
  std::vector<Entry> entries;
  // <= every due time in the slot; equal to the earliest unless that timer
  // was cancelled (min_exact false), in which case it is only a bound.
  absl::Time min_due = absl::InfiniteFuture();
  bool min_exact = true;
};

namespace {

constexpr int kChunkBits = 12;  // 4096 nodes per allocation
constexpr uint32_t kChunkSize = uint32_t{1} << kChunkBits;
// An emptied slot keeps a buffer up to this many entries (2 KiB) for reuse.
constexpr size_t kKeptEntries = 64;
// RunDue keeps a batch buffer up to this many callbacks (8 KiB) for reuse.
constexpr size_t kKeptBatch = 256;

// The 1 ms tick of `t`, as an unsigned count that keeps the order of times:
// InfinitePast is 0 and InfiniteFuture the largest value. ToUnixMillis rounds
// toward negative infinity and saturates, so the mapping never decreases and
// a timer's tick is never after the tick of a time at which it is due.
uint64_t TickOf(absl::Time t) {
  return static_cast<uint64_t>(absl::ToUnixMillis(t)) ^ (uint64_t{1} << 63);
}

}  // namespace

TimerQueue::TimerQueue()
    : slots_(std::make_unique<Slot[]>(kLevels * kSlotsPerLevel)) {}

TimerQueue::~TimerQueue() = default;

TimerQueue::Node& TimerQueue::At(uint32_t index) const {
  return chunks_[index >> kChunkBits][index & (kChunkSize - 1)];
}

uint32_t TimerQueue::AllocateNode() {
  if (free_head_ != kNil) {
    const uint32_t index = free_head_;
    free_head_ = At(index).pos;
    return index;
  }
  if (nodes_used_ == chunks_.size() * kChunkSize) {
    chunks_.push_back(std::make_unique<Node[]>(kChunkSize));
  }
  return nodes_used_++;
}

TimerQueue::Callback TimerQueue::FreeNode(uint32_t index) {
  Node& n = At(index);
  Callback fn = std::move(n.fn);
  n.fn = nullptr;
  n.slot = -1;
  n.pos = free_head_;
  free_head_ = index;
  --armed_;
  return fn;
}

std::vector<std::unique_ptr<TimerQueue::Node[]>> TimerQueue::TrimIfEmpty() {
  std::vector<std::unique_ptr<Node[]>> released;
  if (armed_ != 0 || chunks_.size() <= 1) return released;
  // Every node is free: keep the first chunk (its nodes are reset: free, no
  // callback) and allocate from its beginning again. Arming order keeps
  // growing, so the ids from before still fail to match.
  released.reserve(chunks_.size() - 1);
  for (size_t i = 1; i < chunks_.size(); ++i) {
    released.push_back(std::move(chunks_[i]));
  }
  chunks_.resize(1);
  free_head_ = kNil;
  nodes_used_ = 0;
  return released;
}

void TimerQueue::Insert(const Entry& entry) {
  const uint64_t tick = std::max(TickOf(entry.due), elapsed_);
  // The highest 6-bit group in which tick and elapsed_ differ (0 if none).
  const int level =
      (63 - std::countl_zero((tick ^ elapsed_) | (kSlotsPerLevel - 1))) /
      kLevelBits;
  const int s = static_cast<int>((tick >> (level * kLevelBits)) &
                                 (kSlotsPerLevel - 1));
  const int k = level * kSlotsPerLevel + s;
  Slot& slot = slots_[k];
  if (slot.entries.empty()) {
    slot.min_due = entry.due;
    slot.min_exact = true;
    occupied_[level] |= uint64_t{1} << s;
    levels_occupied_ |= uint32_t{1} << level;
  } else if (entry.due < slot.min_due) {
    slot.min_due = entry.due;
  }
  Node& n = At(entry.node);
  n.slot = k;
  n.pos = static_cast<uint32_t>(slot.entries.size());
  slot.entries.push_back(entry);
}

void TimerQueue::SlotEmptied(int k) {
  const int level = k / kSlotsPerLevel;
  occupied_[level] &= ~(uint64_t{1} << (k % kSlotsPerLevel));
  if (occupied_[level] == 0) levels_occupied_ &= ~(uint32_t{1} << level);
  Slot& slot = slots_[k];
  slot.min_due = absl::InfiniteFuture();
  slot.min_exact = true;
  if (slot.entries.capacity() > kKeptEntries) {
    std::vector<Entry>().swap(slot.entries);
  }
}

void TimerQueue::Remove(uint32_t index) {
  const Node& n = At(index);
  Slot& slot = slots_[n.slot];
  const uint32_t pos = n.pos;
  const absl::Time due = slot.entries[pos].due;
  if (pos + 1 != slot.entries.size()) {
    slot.entries[pos] = slot.entries.back();
    At(slot.entries[pos].node).pos = pos;
  }
  slot.entries.pop_back();
  if (slot.entries.empty()) {
    SlotEmptied(n.slot);
    return;
  }
  if (due == slot.min_due) slot.min_exact = false;
  // Give back memory as a slot thins out (amortised O(1) per Cancel).
  if (slot.entries.capacity() > kKeptEntries &&
      slot.entries.size() * 4 < slot.entries.capacity()) {
    slot.entries.shrink_to_fit();
  }
}

int TimerQueue::EarliestSlot() const {
  if (levels_occupied_ == 0) return -1;
  const int level = std::countr_zero(levels_occupied_);
  return level * kSlotsPerLevel + std::countr_zero(occupied_[level]);
}

uint64_t TimerQueue::SlotStart(int level, int slot) const {
  const uint64_t offset = static_cast<uint64_t>(slot) << (level * kLevelBits);
  const int span_bits = (level + 1) * kLevelBits;
  if (span_bits >= 64) return offset;
  return ((elapsed_ >> span_bits) << span_bits) | offset;
}

void TimerQueue::TakeDue(int slot, absl::Time now, std::vector<Callback>* due) {
  ++stats_.slots_run;
  Slot& s = slots_[slot];
  picked_.clear();
  absl::Time rest_min = absl::InfiniteFuture();
  size_t kept = 0;
  for (size_t i = 0; i < s.entries.size(); ++i) {
    const Entry& e = s.entries[i];
    if (e.due <= now) {
      picked_.push_back(e);
      continue;
    }
    rest_min = std::min(rest_min, e.due);
    if (kept != i) {
      s.entries[kept] = e;
      At(e.node).pos = static_cast<uint32_t>(kept);
    }
    ++kept;
  }
  s.entries.resize(kept);
  if (kept == 0) {
    SlotEmptied(slot);
  } else {
    s.min_due = rest_min;
    s.min_exact = true;
  }
  // Usually in order already (one due time per tick; appends and cascades
  // keep arming order); sorted when a Cancel or several due times shuffled it.
  auto earlier = [](const Entry& a, const Entry& b) {
    return a.due != b.due ? a.due < b.due : a.seq < b.seq;
  };
  if (!std::is_sorted(picked_.begin(), picked_.end(), earlier)) {
    std::sort(picked_.begin(), picked_.end(), earlier);
  }
  for (const Entry& e : picked_) due->push_back(FreeNode(e.node));
}

void TimerQueue::Cascade(int level, int slot) {
  ++stats_.slots_cascaded;
  const int k = level * kSlotsPerLevel + slot;
  std::vector<Entry> moving;
  moving.swap(slots_[k].entries);
  SlotEmptied(k);
  // elapsed_ is now this slot's start, so each timer lands on a lower level;
  // appending in order keeps arming order among equal due times.
  for (const Entry& e : moving) Insert(e);
  stats_.timers_cascaded += moving.size();
  if (moving.capacity() <= kKeptEntries) {
    moving.clear();
    slots_[k].entries.swap(moving);
  }
}

absl::Time TimerQueue::EarliestDueBound() const {
  const int k = EarliestSlot();
  return k < 0 ? absl::InfiniteFuture() : slots_[k].min_due;
}

TimerQueue::TimerId TimerQueue::Schedule(absl::Time when, Callback fn) {
  absl::MutexLock lock(&mu_);
  const uint32_t index = AllocateNode();
  const uint64_t seq = next_seq_++;
  Node& n = At(index);
  n.fn = std::move(fn);
  n.seq_low = static_cast<uint32_t>(seq);
  Insert(Entry{when, seq, index});
  ++armed_;
  if (waiters_ > 0 && when < wait_deadline_) ++early_arms_;
  return {when, (uint64_t{n.seq_low} << 32) | index};
}

bool TimerQueue::Cancel(const TimerId& id) {
  // Destroyed after the lock is released, in case what they own re-enters.
  Callback fn;
  std::vector<std::unique_ptr<Node[]>> released;
  absl::MutexLock lock(&mu_);
  const uint32_t index = static_cast<uint32_t>(id.second);
  if (index >= nodes_used_) return false;
  const Node& n = At(index);
  if (n.slot < 0 || n.seq_low != (id.second >> 32) ||
      slots_[n.slot].entries[n.pos].due != id.first) {
    return false;
  }
  Remove(index);
  fn = FreeNode(index);
  released = TrimIfEmpty();
  return true;
}

size_t TimerQueue::RunDue(absl::Time now) {
  size_t ran = 0;
  std::vector<Callback> due;  // empty whenever the lock is taken
  while (true) {
    std::vector<std::unique_ptr<Node[]>> released;
    {
      absl::MutexLock lock(&mu_);
      if (due.capacity() == 0) due.swap(spare_batch_);
      // Nothing due (the common call): the wheel stays where it is; slots it
      // has passed are spread when a timer in them falls due.
      const int first = EarliestSlot();
      if (first < 0 || slots_[first].min_due <= now) {
        const uint64_t now_tick = TickOf(now);
        // Visit occupied slots only, earliest first: spread a higher-level
        // slot whose start has come; take the due timers of a level-0 slot.
        for (int k = first; k >= 0; k = EarliestSlot()) {
          const int level = k / kSlotsPerLevel;
          const int slot = k % kSlotsPerLevel;
          const uint64_t start = SlotStart(level, slot);
          if (level > 0) {
            if (start > now_tick) break;
            elapsed_ = start;
            Cascade(level, slot);
            continue;
          }
          if (start > elapsed_) {
            if (start > now_tick) break;
            elapsed_ = start;
          }
          // The current tick's slot; it may also hold timers armed for
          // earlier times after the wheel had passed them.
          if (slots_[k].min_due > now) break;
          TakeDue(slot, now, &due);
          // What is left is due later in this tick: nothing after it is due.
          if (!slots_[k].entries.empty()) break;
        }
        // Every occupied slot now starts after now_tick (or is the current
        // one), so moving the wheel to now keeps each timer at its level.
        elapsed_ = std::max(elapsed_, now_tick);
        released = TrimIfEmpty();
      }
      if (due.empty()) {
        if (due.capacity() <= kKeptBatch && spare_batch_.capacity() == 0) {
          spare_batch_.swap(due);
        }
        return ran;
      }
    }
    for (auto& fn : due) fn();
    ran += due.size();
    due.clear();  // destroys the callbacks outside the lock
  }
}

absl::Time TimerQueue::NextDue() const {
  absl::MutexLock lock(&mu_);
  const int k = EarliestSlot();
  if (k < 0) return absl::InfiniteFuture();
  if (slots_[k].min_exact) return slots_[k].min_due;
  absl::Time earliest = absl::InfiniteFuture();
  for (const Entry& e : slots_[k].entries) earliest = std::min(earliest, e.due);
  return earliest;
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return armed_;
}

TimerQueue::Stats TimerQueue::stats() const {
  absl::MutexLock lock(&mu_);
  Stats s = stats_;
  s.nodes = chunks_.size() * kChunkSize;
  s.waiters = waiters_;
  return s;
}

void TimerQueue::WaitForWork(absl::Time limit) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = std::min(limit, EarliestDueBound());
  const uint64_t arms_seen = early_arms_;
  ++waiters_;
  wait_deadline_ = std::min(wait_deadline_, deadline);
  auto ready = [this, arms_seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return woken_ || early_arms_ != arms_seen;
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  woken_ = false;
  if (--waiters_ == 0) wait_deadline_ = absl::InfiniteFuture();
}

void TimerQueue::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

}  // namespace taskd
