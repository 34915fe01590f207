#include "services/metrics/queue_metrics.h"

#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "scheduler/task_state.h"

namespace taskd {
namespace metrics {
namespace {

constexpr std::array<v1::TaskState, 3> kTerminal = {
    v1::TASK_STATE_SUCCEEDED, v1::TASK_STATE_FAILED, v1::TASK_STATE_CANCELLED};

constexpr std::array<const char*, kAttemptOutcomes> kOutcomeLabels = {
    "succeeded", "failed", "timeout", "lease_expired", "cancelled"};

size_t SlotCount(size_t max_queues) {
  size_t n = 8;
  while (n < 4 * max_queues) n <<= 1;
  return n;
}

double Seconds(absl::Duration d) {
  return std::max(0.0, absl::ToDoubleSeconds(d));
}

}  // namespace

const char* StateLabel(v1::TaskState state) {
  // StateName in lowercase, made once.
  static const auto* labels = [] {
    auto* out = new std::array<std::string, v1::TaskState_ARRAYSIZE>;
    for (int i = 0; i < v1::TaskState_ARRAYSIZE; ++i) {
      (*out)[i] =
          absl::AsciiStrToLower(StateName(static_cast<v1::TaskState>(i)));
    }
    return out;
  }();
  const int i = static_cast<int>(state);
  return (*labels)[i >= 0 && i < v1::TaskState_ARRAYSIZE ? i : 0].c_str();
}

QueueCells::QueueCells(std::string label) : label_(std::move(label)) {}

void QueueCells::AttemptStarted(absl::Duration wait) {
  wait_.Observe(Seconds(wait));
}

void QueueCells::AttemptEnded(AttemptOutcome outcome, absl::Duration run) {
  attempts_[static_cast<size_t>(outcome)].Add();
  run_.Observe(Seconds(run));
}

void QueueCells::Finished(v1::TaskState state, absl::Duration turnaround) {
  for (size_t i = 0; i < kTerminal.size(); ++i) {
    if (kTerminal[i] == state) finished_[i].Add();
  }
  turnaround_.Observe(Seconds(turnaround));
}

QueueMetricsTable::QueueMetricsTable(int max_queues)
    : max_queues_(static_cast<size_t>(std::max(1, max_queues))),
      mask_(SlotCount(max_queues_) - 1),
      slots_(new std::atomic<Entry*>[mask_ + 1]),
      other_(std::make_unique<QueueCells>(kOtherQueue)) {
  for (size_t i = 0; i <= mask_; ++i) slots_[i].store(nullptr);
}

QueueMetricsTable::~QueueMetricsTable() = default;

QueueCells* QueueMetricsTable::Probe(const std::string& queue,
                                     size_t hash) const {
  for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
    Entry* e = slots_[i].load(std::memory_order_acquire);
    if (e == nullptr) return nullptr;
    if (e->name == queue) return e->cells;
  }
}

QueueCells* QueueMetricsTable::ForQueue(const std::string& queue) {
  const size_t hash = absl::Hash<std::string>{}(queue);
  if (QueueCells* found = Probe(queue, hash)) return found;
  absl::MutexLock lock(&mu_);
  if (QueueCells* found = Probe(queue, hash)) return found;  // raced
  QueueCells* cells = other_.get();
  if (cells_.size() < max_queues_) {
    cells_.push_back(std::make_unique<QueueCells>(queue));
    cells = cells_.back().get();
  } else {
    other_used_ = true;
    // Remembered (up to as many again) so repeats stay lock-free; beyond
    // that, further new names take this mutex each time they are resolved.
    if (entries_.size() >= 2 * max_queues_) return cells;
  }
  entries_.push_back(std::make_unique<Entry>(Entry{queue, cells}));
  size_t i = hash & mask_;
  while (slots_[i].load(std::memory_order_relaxed) != nullptr) {
    i = (i + 1) & mask_;
  }
  slots_[i].store(entries_.back().get(), std::memory_order_release);
  return cells;
}

void QueueMetricsTable::Collect(
    std::vector<prometheus::MetricFamily>* out) const {
  std::vector<const QueueCells*> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& c : cells_) all.push_back(c.get());
    if (other_used_) all.push_back(other_.get());
  }
  using prometheus::MetricType;
  auto submitted = Family("taskd_tasks_submitted_total",
                          "Tasks created (a deduplicated submit is not).",
                          MetricType::Counter);
  auto deduplicated =
      Family("taskd_tasks_deduplicated_total",
             "Submits answered with an existing task (idempotency key).",
             MetricType::Counter);
  auto finished = Family("taskd_tasks_finished_total",
                         "Tasks that became terminal, per terminal state.",
                         MetricType::Counter);
  auto attempts = Family("taskd_task_attempts_total",
                         "Ended attempts, per outcome.", MetricType::Counter);
  auto retries = Family("taskd_task_retries_total",
                        "Attempts that were scheduled again.",
                        MetricType::Counter);
  auto wait = Family("taskd_task_wait_seconds",
                     "From becoming PENDING to starting an attempt.",
                     MetricType::Histogram);
  auto run = Family("taskd_task_run_seconds",
                    "From starting an attempt to its end.",
                    MetricType::Histogram);
  auto turnaround = Family("taskd_task_turnaround_seconds",
                           "From submit to a terminal state.",
                           MetricType::Histogram);
  for (const QueueCells* c : all) {
    const Labels q = {{"queue", c->label()}};
    submitted.metric.push_back(c->submitted_.ToClientMetric(q));
    deduplicated.metric.push_back(c->deduplicated_.ToClientMetric(q));
    for (size_t i = 0; i < kTerminal.size(); ++i) {
      finished.metric.push_back(c->finished_[i].ToClientMetric(
          {{"queue", c->label()}, {"state", StateLabel(kTerminal[i])}}));
    }
    for (size_t i = 0; i < kOutcomeLabels.size(); ++i) {
      attempts.metric.push_back(c->attempts_[i].ToClientMetric(
          {{"outcome", kOutcomeLabels[i]}, {"queue", c->label()}}));
    }
    retries.metric.push_back(c->retries_.ToClientMetric(q));
    wait.metric.push_back(c->wait_.ToClientMetric(q));
    run.metric.push_back(c->run_.ToClientMetric(q));
    turnaround.metric.push_back(c->turnaround_.ToClientMetric(q));
  }
  for (auto* f : {&submitted, &deduplicated, &finished, &attempts, &retries,
                  &wait, &run, &turnaround}) {
    out->push_back(std::move(*f));
  }
}

}  // namespace metrics
}  // namespace taskd
