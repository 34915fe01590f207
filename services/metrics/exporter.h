// TaskdMetrics: everything taskd exports on /metrics (names and labels as
// ../shared/API.md "Metrics" fixes them), and MetricsEndpoint, the HTTP
// listener (prometheus-cpp's Exposer) that serves them.
//
//   auto metrics = std::make_shared<TaskdMetrics>(/*max_queues=*/100);
//   engine_options.metrics = metrics->queues();     // event counters
//   Journal journal(storage, on_failure, metrics->journal());
//   CallSites sites(metrics->grpc());               // grpc_server_* (call.h)
//   ...engine and schedule table built...
//   metrics->SetSources(sources);                   // scrape-time gauges
//   auto endpoint = MetricsEndpoint::Start("127.0.0.1:9464", metrics);
//
// Counters and histograms are lock-free cells updated where things happen;
// gauges (tasks per state, oldest pending age, workers, awaits, streams,
// storage bytes, process metrics, ...) are computed at scrape time from the
// engine's read APIs, so they cost the hot path nothing.
//
// Lifetime: the engine and schedule table named in SetSources must outlive
// every Collect, i.e. destroy the MetricsEndpoint first.
//
// Thread-safe (SetSources before the endpoint starts).
#ifndef TASKD_SERVICES_METRICS_EXPORTER_H_
#define TASKD_SERVICES_METRICS_EXPORTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "scheduler/engine.h"
#include "scheduler/journal.h"
#include "scheduler/schedule_table.h"
#include "services/metrics/cells.h"
#include "services/metrics/grpc_metrics.h"
#include "services/metrics/process_metrics.h"
#include "services/metrics/queue_metrics.h"

namespace taskd {
namespace metrics {

// The journal's commits (a JournalObserver).
class JournalCells final : public JournalObserver {
 public:
  void OnCommit(size_t changes, absl::Duration elapsed, bool ok) override;
  void Collect(std::vector<prometheus::MetricFamily>* out) const;

 private:
  Counter commits_;
  Histogram records_{&kCommitRecordsBuckets};
  Histogram seconds_{&kCommitSecondsBuckets};
};

// Calls the auth processor refused (taskd_auth_denied_total{reason}); the
// reasons are auth/token_auth_processor.h's, a fixed set.
class AuthCells final {
 public:
  void OnDenied(absl::string_view reason);
  void Collect(std::vector<prometheus::MetricFamily>* out) const;

 private:
  Counter missing_token_;
  Counter unknown_token_;
  Counter missing_role_;
};

// What the scrape-time gauges read. Not owned.
struct ScrapeSources {
  Engine* engine = nullptr;
  ScheduleTable* schedules = nullptr;  // nullptr: taskd_schedules 0
  std::string data_dir;                // empty (memory mode): 0 bytes
  size_t recovered_tasks = 0;
  size_t quarantined_records = 0;  // set aside by the last recovery
  absl::Duration recovery_time;
  // Bytes waiting unsent to workers, summed (nullptr: 0).
  std::function<size_t()> worker_outbox_bytes;
  ProcSource proc;
};

class TaskdMetrics final : public prometheus::Collectable {
 public:
  // `max_queues`: queues with their own label (--metrics-max-queues).
  // `clock` times gRPC calls (nullptr: real time).
  explicit TaskdMetrics(int max_queues, Clock* clock = nullptr);

  QueueMetricsTable* queues() { return &queues_; }
  JournalCells* journal() { return &journal_; }
  GrpcMetrics* grpc() { return &grpc_; }
  AuthCells* auth() { return &auth_; }

  // Call once, after recovery and before the endpoint starts.
  void SetSources(ScrapeSources sources);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  void CollectEngine(std::vector<prometheus::MetricFamily>* out) const;

  // Mutable: a scrape may give a queue seen first by ListQueues its label.
  mutable QueueMetricsTable queues_;
  JournalCells journal_;
  GrpcMetrics grpc_;
  AuthCells auth_;
  ScrapeSources sources_;
  uint64_t first_event_ = 0;  // the event log's next sequence at SetSources
};

// Serves a Collectable on http://<listen>/metrics.
class MetricsEndpoint {
 public:
  // `listen` is "host:port" (port 0 picks one). UNAVAILABLE naming the
  // address when it cannot be bound, INVALID_ARGUMENT when it is no
  // host:port.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& listen,
      std::shared_ptr<prometheus::Collectable> collectable);
  // Stops serving; a scrape in progress completes first. Takes
  // milliseconds, not civetweb's up to 2 s (see exporter.cc).
  ~MetricsEndpoint();

  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  // Connects to the listening port and hangs up (errors ignored).
  void Knock() const;

  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  std::string knock_host_;  // an address of the listening socket
};

}  // namespace metrics
}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_EXPORTER_H_
