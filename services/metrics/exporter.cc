#include "services/metrics/exporter.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <exception>
#include <filesystem>
#include <map>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "services/metrics/build_info.h"

namespace taskd {
namespace metrics {
namespace {

using prometheus::MetricType;

// Sum of the sizes of the regular files under `dir`; 0 when unreadable.
uint64_t DirectoryBytes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  uint64_t total = 0;
  fs::recursive_directory_iterator it(
      dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      uint64_t n = it->file_size(size_ec);
      if (!size_ec) total += n;
    }
  }
  return total;
}

// The event log's memory: its ring of `capacity` slots plus what the
// retained events hold beyond their slot, estimated from the newest ones.
// Per-label aggregate of ListQueues (queues beyond the limit share one).
struct QueueGauges {
  std::array<double, 6> tasks{};  // pending .. cancelled
  double oldest_pending_age = 0;
  double paused = 0;
  double workers = 0;
};

}  // namespace

void JournalCells::OnCommit(size_t changes, absl::Duration elapsed, bool ok) {
  if (!ok) return;  // the server is about to exit; not a commit
  commits_.Add();
  records_.Observe(static_cast<double>(changes));
  seconds_.Observe(std::max(0.0, absl::ToDoubleSeconds(elapsed)));
}

void JournalCells::Collect(std::vector<prometheus::MetricFamily>* out) const {
  auto commits = Family("taskd_journal_commits_total",
                        "Group commits of the journal (one WAL sync each in "
                        "sync mode).",
                        MetricType::Counter);
  commits.metric.push_back(commits_.ToClientMetric({}));
  auto records = Family("taskd_journal_commit_records",
                        "Changes per commit: what one fsync carried.",
                        MetricType::Histogram);
  records.metric.push_back(records_.ToClientMetric({}));
  auto seconds = Family("taskd_journal_commit_seconds",
                        "Time to append and sync one commit.",
                        MetricType::Histogram);
  seconds.metric.push_back(seconds_.ToClientMetric({}));
  out->push_back(std::move(commits));
  out->push_back(std::move(records));
  out->push_back(std::move(seconds));
}

TaskdMetrics::TaskdMetrics(int max_queues, Clock* clock)
    : queues_(max_queues), grpc_(clock) {}

void TaskdMetrics::SetSources(ScrapeSources sources) {
  sources_ = std::move(sources);
  if (sources_.engine != nullptr) {
    first_event_ = sources_.engine->events().next_sequence();
  }
}

void AuthCells::OnDenied(absl::string_view reason) {
  if (reason == "missing_token") {
    missing_token_.Add();
  } else if (reason == "unknown_token") {
    unknown_token_.Add();
  } else {
    missing_role_.Add();
  }
}

void AuthCells::Collect(std::vector<prometheus::MetricFamily>* out) const {
  prometheus::MetricFamily f = Family(
      "taskd_auth_denied_total",
      "Calls refused by the auth processor (no token, unknown token, or a "
      "token without the method's role).",
      MetricType::Counter);
  f.metric.push_back(missing_token_.ToClientMetric({{"reason", "missing_token"}}));
  f.metric.push_back(unknown_token_.ToClientMetric({{"reason", "unknown_token"}}));
  f.metric.push_back(missing_role_.ToClientMetric({{"reason", "missing_role"}}));
  out->push_back(std::move(f));
}

std::vector<prometheus::MetricFamily> TaskdMetrics::Collect() const {
  std::vector<prometheus::MetricFamily> out;
  queues_.Collect(&out);
  CollectEngine(&out);
  journal_.Collect(&out);
  grpc_.Collect(&out);
  auth_.Collect(&out);
  CollectProcessMetrics(sources_.proc, &out);
  const BuildInfo& build = GetBuildInfo();
  AddSingle(&out, "taskd_build_info",
            "Always 1; the labels give taskd's version and its libraries'.",
            MetricType::Gauge, 1,
            {{"grpc", build.grpc},
             {"protobuf", build.protobuf},
             {"rocksdb", build.rocksdb},
             {"version", build.version}});
  return out;
}

void TaskdMetrics::CollectEngine(
    std::vector<prometheus::MetricFamily>* out) const {
  Engine* engine = sources_.engine;
  if (engine == nullptr) return;
  QueueMetricsTable& queues = queues_;

  std::map<std::string, QueueGauges> by_label;
  for (const v1::Queue& q : engine->ListQueues()) {
    QueueGauges& g = by_label[queues.LabelFor(q.queue())];
    const int64_t counts[6] = {q.pending(),   q.scheduled(), q.running(),
                               q.succeeded(), q.failed(),    q.cancelled()};
    for (int i = 0; i < 6; ++i) g.tasks[i] += static_cast<double>(counts[i]);
    if (q.has_oldest_pending_age()) {
      g.oldest_pending_age =
          std::max(g.oldest_pending_age,
                   absl::ToDoubleSeconds(ToDuration(q.oldest_pending_age())));
    }
    g.paused = std::max(g.paused, q.paused() ? 1.0 : 0.0);
    g.workers += q.workers();
  }
  auto tasks = Family("taskd_tasks",
                      "Tasks held now per state (terminal ones while "
                      "retained).",
                      MetricType::Gauge);
  auto oldest = Family("taskd_queue_oldest_pending_age_seconds",
                       "Age of the oldest PENDING task (0 when none).",
                       MetricType::Gauge);
  auto paused = Family("taskd_queue_paused", "1 when the queue is paused.",
                       MetricType::Gauge);
  auto workers = Family("taskd_workers",
                        "Connected workers serving the queue.",
                        MetricType::Gauge);
  static constexpr v1::TaskState kStates[6] = {
      v1::TASK_STATE_PENDING,   v1::TASK_STATE_SCHEDULED,
      v1::TASK_STATE_RUNNING,   v1::TASK_STATE_SUCCEEDED,
      v1::TASK_STATE_FAILED,    v1::TASK_STATE_CANCELLED};
  for (const auto& [label, g] : by_label) {
    for (int i = 0; i < 6; ++i) {
      tasks.metric.push_back(GaugeSample(
          g.tasks[i], {{"queue", label}, {"state", StateLabel(kStates[i])}}));
    }
    oldest.metric.push_back(
        GaugeSample(g.oldest_pending_age, {{"queue", label}}));
    paused.metric.push_back(GaugeSample(g.paused, {{"queue", label}}));
    workers.metric.push_back(GaugeSample(g.workers, {{"queue", label}}));
  }
  out->push_back(std::move(tasks));
  out->push_back(std::move(oldest));
  out->push_back(std::move(paused));
  out->push_back(std::move(workers));

  AddSingle(out, "taskd_max_tasks", "The --max-tasks limit.", MetricType::Gauge,
            static_cast<double>(engine->options().max_tasks));
  const WorkerSlots slots = engine->worker_slots();
  auto slot_family = Family("taskd_worker_slots",
                            "Summed concurrency of the connected workers.",
                            MetricType::Gauge);
  slot_family.metric.push_back(
      GaugeSample(static_cast<double>(slots.busy), {{"state", "busy"}}));
  slot_family.metric.push_back(
      GaugeSample(static_cast<double>(slots.free), {{"state", "free"}}));
  out->push_back(std::move(slot_family));
  AddSingle(out, "taskd_awaits", "Await calls waiting now.", MetricType::Gauge,
            static_cast<double>(engine->pending_awaits()));
  AddSingle(out, "taskd_streams", "Open Stream calls.", MetricType::Gauge,
            static_cast<double>(engine->events().subscriber_count()));
  AddSingle(out, "taskd_events_total", "Task events appended to the event log.",
            MetricType::Counter,
            static_cast<double>(engine->events().next_sequence() -
                                first_event_));
  AddSingle(out, "taskd_event_log_bytes",
            "Memory of the event log (Stream replay window), estimated.",
            MetricType::Gauge,
            static_cast<double>(engine->events().bytes()));
  AddSingle(out, "taskd_schedules", "Periodic schedules.", MetricType::Gauge,
            sources_.schedules ? static_cast<double>(sources_.schedules->size())
                               : 0.0);
  AddSingle(out, "taskd_schedule_firings_total",
            "Schedule firings that submitted a task.", MetricType::Counter,
            sources_.schedules
                ? static_cast<double>(sources_.schedules->firings())
                : 0.0);
  AddSingle(out, "taskd_storage_bytes", "Bytes on disk in the data directory.",
            MetricType::Gauge,
            sources_.data_dir.empty()
                ? 0.0
                : static_cast<double>(DirectoryBytes(sources_.data_dir)));
  AddSingle(out, "taskd_recovery_seconds",
            "How long the last start's recovery took.", MetricType::Gauge,
            absl::ToDoubleSeconds(sources_.recovery_time));
  AddSingle(out, "taskd_recovered_tasks",
            "Tasks the last start recovered from storage.", MetricType::Gauge,
            static_cast<double>(sources_.recovered_tasks));
  AddSingle(out, "taskd_recovery_quarantined_records",
            "Unreadable records the last start set aside (under q/ in the "
            "data directory) instead of refusing to start.",
            MetricType::Gauge,
            static_cast<double>(sources_.quarantined_records));
  AddSingle(out, "taskd_worker_outbox_bytes",
            "Bytes of messages waiting unsent to workers (each worker's "
            "share is bounded by --worker-outbox-bytes).",
            MetricType::Gauge,
            sources_.worker_outbox_bytes
                ? static_cast<double>(sources_.worker_outbox_bytes())
                : 0.0);
}

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& listen,
    std::shared_ptr<prometheus::Collectable> collectable) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_listen: not a host:port: \"", listen, "\""));
  }
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint);
  try {
    // civetweb: "[::1]:9464" for IPv6; one thread serves the scrapes.
    endpoint->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "metrics_listen: cannot listen on ", listen, ": ", e.what()));
  }
  std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  endpoint->port_ = ports.empty() ? port : ports.front();
  endpoint->exposer_->RegisterCollectable(collectable);
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "0.0.0.0") host = "127.0.0.1";  // any address: knock locally
  if (host == "::") host = "::1";
  endpoint->knock_host_ = host;
  return endpoint;
}

// civetweb's listener thread polls its socket in quanta of 2 s (compiled
// in) and looks at the stop flag only between them, so mg_stop waits up to
// 2 s. The stop runs on a thread of its own while this one connects to the
// port every few milliseconds, which ends the listener's poll at once. (A
// worker thread reading from a client that connected and sent nothing still
// looks at the flag only every 2 s; Prometheus sends its request at once.)
MetricsEndpoint::~MetricsEndpoint() {
  if (exposer_ == nullptr) return;
  absl::Notification stopped;
  std::thread stopper([this, &stopped] {
    exposer_.reset();
    stopped.Notify();
  });
  while (!stopped.WaitForNotificationWithTimeout(absl::Milliseconds(5))) {
    Knock();
  }
  stopper.join();
}

void MetricsEndpoint::Knock() const {
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(knock_host_.c_str(), std::to_string(port_).c_str(), &hints,
                  &found) != 0) {
    return;
  }
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd =
        socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const bool connected = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
    if (connected) break;
  }
  freeaddrinfo(found);
}

}  // namespace metrics
}  // namespace taskd

