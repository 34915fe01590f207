#include "tests/soak/soak_ledger.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/client.h"

namespace taskd::soak {
namespace {

// Problem lines kept verbatim; the counts carry the rest.
constexpr size_t kKeptProblems = 40;

}  // namespace

Outcome Outcome::Of(const v1::Task& task, absl::string_view source) {
  Outcome o;
  o.state = task.state();
  o.result = task.result();
  o.error_code = task.error().code();
  o.attempt = task.attempt();
  o.source = std::string(source);
  return o;
}

bool Outcome::SameAs(const Outcome& other) const {
  return state == other.state && result == other.result &&
         error_code == other.error_code && attempt == other.attempt;
}

std::string Outcome::ToString() const {
  return absl::StrCat(v1::TaskState_Name(state), " attempt=", attempt,
                      " error=", error_code, " result=\"",
                      absl::CHexEscape(result.substr(0, 80)), "\" (seen by ",
                      source, ")");
}

void SoakLedger::Ack(const std::string& key, const v1::Task& task,
                     bool deduplicated) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = id_of_key_.try_emplace(key, task.id());
  if (inserted) {
    acked_ids_.push_back(task.id());
  } else if (it->second != task.id()) {
    if (duplicated_keys_.insert(key).second) {
      NoteLocked(absl::StrCat("key ", key, " answered with task ", it->second,
                              " and then ", task.id(),
                              deduplicated ? " (deduplicated)" : ""));
    }
  }
  ObserveLocked(task, "submit");
}

void SoakLedger::Observe(const v1::Task& task, absl::string_view source) {
  absl::MutexLock lock(&mu_);
  ObserveLocked(task, source);
}

void SoakLedger::ObserveTerminalEvent(const v1::Task& task) {
  absl::MutexLock lock(&mu_);
  if (++terminal_events_[task.id()] == 2) {
    ++double_terminal_;
    NoteLocked(absl::StrCat("task ", task.id(), " had a second terminal event: ",
                            Outcome::Of(task, "stream").ToString()));
  }
  ObserveLocked(task, "stream");
}

void SoakLedger::ObserveLocked(const v1::Task& task, absl::string_view source) {
  if (!IsFinalState(task.state())) return;
  Outcome seen = Outcome::Of(task, source);
  auto [it, inserted] = first_seen_.try_emplace(task.id(), seen);
  if (inserted || it->second.SameAs(seen)) return;
  if (changed_.insert(task.id()).second) {
    NoteLocked(absl::StrCat("task ", task.id(), " changed: first ",
                            it->second.ToString(), ", then ", seen.ToString()));
  }
}

void SoakLedger::Violation(const std::string& what) {
  absl::MutexLock lock(&mu_);
  ++violations_;
  NoteLocked(what);
}

void SoakLedger::NoteLocked(std::string problem) {
  if (problems_.size() < kKeptProblems) problems_.push_back(std::move(problem));
}

std::vector<std::string> SoakLedger::PickAcked(std::mt19937_64& rng, int n,
                                               int window) {
  absl::MutexLock lock(&mu_);
  const int size = static_cast<int>(acked_ids_.size());
  if (size == 0 || n <= 0) return {};
  const int from = window > 0 ? std::max(0, size - window) : 0;
  std::uniform_int_distribution<int> pick(from, size - 1);
  absl::flat_hash_set<int> chosen;
  // Bounded: a few draws per wanted id; duplicates are skipped.
  for (int i = 0; i < 3 * n && static_cast<int>(chosen.size()) < n; ++i) {
    chosen.insert(pick(rng));
  }
  std::vector<std::string> ids;
  for (int i : chosen) ids.push_back(acked_ids_[i]);
  return ids;
}

std::vector<std::string> SoakLedger::AckedIds() {
  absl::MutexLock lock(&mu_);
  return acked_ids_;
}

int SoakLedger::acked() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(acked_ids_.size());
}

SoakCounts SoakLedger::Check(
    const absl::flat_hash_map<std::string, v1::Task>& final_tasks) {
  absl::MutexLock lock(&mu_);
  SoakCounts counts;
  counts.acked = static_cast<int>(acked_ids_.size());
  counts.observed = static_cast<int>(first_seen_.size());
  for (const std::string& id : acked_ids_) {
    auto it = final_tasks.find(id);
    if (it == final_tasks.end()) {
      ++counts.lost;
      NoteLocked(absl::StrCat("acknowledged task ", id, " not found"));
      continue;
    }
    const v1::Task& task = it->second;
    ObserveLocked(task, "final check");
    switch (task.state()) {
      case v1::TASK_STATE_SUCCEEDED:
        ++counts.completed;
        break;
      case v1::TASK_STATE_CANCELLED:
        ++counts.cancelled;
        break;
      case v1::TASK_STATE_FAILED:
        ++counts.failed;
        break;
      default:
        ++counts.lost;
        ++counts.not_terminal;
        NoteLocked(absl::StrCat("acknowledged task ", id,
                                " not terminal after the drain: ",
                                task.ShortDebugString().substr(0, 300)));
        break;
    }
    if (task.attempt() > 1) ++counts.retried;
  }
  counts.changed = static_cast<int>(changed_.size());
  counts.duplicated = static_cast<int>(duplicated_keys_.size());
  counts.double_terminal = double_terminal_;
  return counts;
}

std::vector<std::string> SoakLedger::Problems() {
  absl::MutexLock lock(&mu_);
  return problems_;
}

int SoakLedger::violations() {
  absl::MutexLock lock(&mu_);
  return violations_;
}

}  // namespace taskd::soak
