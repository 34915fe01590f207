// QueueMetricsTable: the engine's EngineMetrics, one set of lock-free cells
// per queue, exported as the taskd_tasks_* / taskd_task_* families.
//
//   QueueMetricsTable table(/*max_queues=*/100);
//   EngineOptions options;
//   options.metrics = &table;            // the engine resolves handles
//   ...
//   std::vector<prometheus::MetricFamily> out;
//   table.Collect(&out);                 // at scrape time
//
// Bounded labels. The first `max_queues` queue names seen get their own
// `queue` label; every later one shares the handle labelled "_other", so a
// client inventing queue names cannot grow the exposition without bound.
//
// ForQueue is lock-free for a name seen before (a probe of a fixed open-
// addressing table, published with release/acquire); the first sighting of
// a name takes a mutex. The engine calls it once per task. Handles are never
// freed before the table.
//
// Thread-safe.
#ifndef TASKD_SERVICES_METRICS_QUEUE_METRICS_H_
#define TASKD_SERVICES_METRICS_QUEUE_METRICS_H_

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/metric_family.h"
#include "scheduler/engine_metrics.h"
#include "services/metrics/cells.h"

namespace taskd {
namespace metrics {

inline constexpr char kOtherQueue[] = "_other";

// One queue's cells (or the shared "_other" ones).
class QueueCells final : public QueueMetrics {
 public:
  explicit QueueCells(std::string label);

  void Submitted() override { submitted_.Add(); }
  void Deduplicated() override { deduplicated_.Add(); }
  void AttemptStarted(absl::Duration wait) override;
  void AttemptEnded(AttemptOutcome outcome, absl::Duration run) override;
  void Retried() override { retries_.Add(); }
  void Finished(v1::TaskState state, absl::Duration turnaround) override;

  // The `queue` label value.
  const std::string& label() const { return label_; }

 private:
  friend class QueueMetricsTable;

  const std::string label_;
  Counter submitted_;
  Counter deduplicated_;
  std::array<Counter, 3> finished_;  // succeeded, failed, cancelled
  std::array<Counter, kAttemptOutcomes> attempts_;
  Counter retries_;
  Histogram wait_{&kTaskSecondsBuckets};
  Histogram run_{&kTaskSecondsBuckets};
  Histogram turnaround_{&kTaskSecondsBuckets};
};

class QueueMetricsTable final : public EngineMetrics {
 public:
  // `max_queues` >= 1 queues get their own label.
  explicit QueueMetricsTable(int max_queues);
  ~QueueMetricsTable() override;
  QueueMetricsTable(const QueueMetricsTable&) = delete;
  QueueMetricsTable& operator=(const QueueMetricsTable&) = delete;

  QueueCells* ForQueue(const std::string& queue) override;

  // The label `queue` is reported under ("_other" beyond the limit). Gauges
  // computed at scrape time use it, so they agree with the counters.
  const std::string& LabelFor(const std::string& queue) {
    return ForQueue(queue)->label();
  }

  // Appends the counter and histogram families, one sample per labelled
  // queue (plus "_other" once it was used).
  void Collect(std::vector<prometheus::MetricFamily>* out) const;

 private:
  struct Entry {
    std::string name;
    QueueCells* cells;
  };
  QueueCells* Probe(const std::string& queue, size_t hash) const;

  const size_t max_queues_;
  // Open addressing, power-of-two size, at least 4 * max_queues_ slots; up
  // to 2 * max_queues_ names are entered (overflow names point at other_),
  // so a probe always meets an empty slot. Slots go from null to an Entry
  // once (release), readers load with acquire.
  const size_t mask_;
  std::unique_ptr<std::atomic<Entry*>[]> slots_;
  std::unique_ptr<QueueCells> other_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<QueueCells>> cells_ ABSL_GUARDED_BY(mu_);
  bool other_used_ ABSL_GUARDED_BY(mu_) = false;
};

// The lowercase state name of a terminal or live TaskState ("pending", ...).
const char* StateLabel(v1::TaskState state);

}  // namespace metrics
}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_QUEUE_METRICS_H_
