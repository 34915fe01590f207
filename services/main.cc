// taskd: the task scheduler server.
//
//   taskd --listen=127.0.0.1:50051 --threads=2
//
// SIGTERM or SIGINT shuts down gracefully (see TaskdServer::Shutdown);
// SIGHUP re-reads the --auth-tokens file.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/metrics/build_info.h"
#include "services/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "address to serve on");
ABSL_FLAG(int, threads, 0,
          "completion-queue threads (0: one per two hardware threads)");
ABSL_FLAG(int64_t, max_payload_bytes, 1 << 20,
          "largest task payload (and result) in bytes");
ABSL_FLAG(absl::Duration, result_ttl, absl::Hours(24),
          "default retention of finished tasks");
ABSL_FLAG(absl::Duration, heartbeat_timeout, absl::Seconds(30),
          "default lease: a worker silent this long loses its tasks");
ABSL_FLAG(int64_t, max_tasks, 2'000'000,
          "tasks held at once (any state); submits beyond are refused");
ABSL_FLAG(int64_t, event_log_capacity, 1 << 16,
          "events retained for Stream replay");
ABSL_FLAG(int64_t, event_log_bytes, 64 << 20,
          "bytes the events retained for Stream replay may take; the oldest "
          "go first");
ABSL_FLAG(int64_t, worker_outbox_bytes, 64 << 20,
          "bytes of messages one worker may have waiting unsent before it "
          "is assigned nothing more (a worker that does not read)");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "how long shutdown waits for calls in flight");
ABSL_FLAG(std::string, durability, "sync",
          "sync: every change is fsynced before it is acknowledged; async: "
          "written to the OS (survives a process crash, not a power loss); "
          "memory: nothing survives a restart");
ABSL_FLAG(std::string, data_dir, "./taskd-data",
          "RocksDB data directory (durable modes)");
ABSL_FLAG(absl::Duration, compact_interval, absl::Minutes(10),
          "how often space of deleted tasks is reclaimed");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "host:port of the Prometheus /metrics endpoint; empty disables "
          "metrics");
ABSL_FLAG(std::string, health_listen, "",
          "host:port of a plaintext port serving only grpc.health.v1 (for "
          "Kubernetes probes, which speak no TLS); empty: none");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain to serve TLS with (with --tls-key); re-read "
          "when it changes, no restart needed");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require client certificates signed by it (mTLS)");
ABSL_FLAG(absl::Duration, tls_refresh, absl::Seconds(60),
          "how often the certificate files are checked for changes");
ABSL_FLAG(std::string, auth_tokens, "",
          "token file: `sha256:<hash> NAME ROLES [queues=P,...]` per line "
          "(see `taskctl token new`); re-read on SIGHUP and when it changes");
ABSL_FLAG(absl::Duration, auth_tokens_check, absl::Seconds(2),
          "how often the --auth-tokens file is checked for changes; 0: only "
          "on SIGHUP");
ABSL_FLAG(bool, insecure, false,
          "allow a non-loopback --listen without TLS or without tokens/"
          "client certificates (taskd refuses otherwise)");
ABSL_FLAG(int, metrics_max_queues, 100,
          "queues with their own metrics label; the rest report as "
          "queue=\"_other\"");

namespace {

// --help lists the flags of this file (absl's default only lists those of
// files named like the binary, which taskd has none of); --version prints
// the versions of taskd and the libraries it runs on.
void ConfigureUsage() {
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view file) {
    return absl::EndsWith(file, "services/main.cc");
  };
  config.contains_help_flags = ours;
  config.contains_helpshort_flags = ours;
  config.version_string = [] { return taskd::VersionLine() + "\n"; };
  absl::SetFlagsUsageConfig(config);
}

// `taskd --help`: every flag of this file on one line, with its default,
// spelled with dashes as the README does.
void PrintHelp() {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), "services/main.cc")) {
      flags.push_back(flag);
    }
  }
  std::sort(flags.begin(), flags.end(), [](const auto* a, const auto* b) {
    return a->Name() < b->Name();
  });
  std::printf(
      "usage: taskd [flags]\n\ntaskd: task scheduler server (gRPC API "
      "taskd.v1). SIGTERM or SIGINT shuts down gracefully; SIGHUP re-reads --auth-tokens.\n\nflags "
      "(--name=value; dashes and underscores are the same):\n");
  for (const auto* flag : flags) {
    std::string name = std::string(flag->Name());
    std::replace(name.begin(), name.end(), '_', '-');
    std::string value = flag->DefaultValue();
    if (value.empty()) value = "\"\"";
    std::printf("  --%-22s %s (default %s)\n", name.c_str(),
                flag->Help().c_str(), value.c_str());
  }
  std::printf("  --%-22s %s\n  --%-22s %s\n", "help", "print this text",
              "version",
              "print the versions of taskd, gRPC, protobuf and RocksDB");
}

// Accepts --data-dir as well as --data_dir: dashes in a flag's name (not in
// its value) become underscores, the spelling absl flags use.
void NormalizeFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (arg[0] != '-' || arg[1] != '-') continue;
    if (arg[2] == '\0') break;  // "--": the rest are not flags
    for (char* c = arg + 2; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "task scheduler server (gRPC API taskd.v1). Flags may be spelled "
      "--data-dir or --data_dir.");
  ConfigureUsage();
  NormalizeFlagNames(argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ||
        std::strcmp(argv[i], "--helpshort") == 0) {
      PrintHelp();
      return 0;
    }
  }
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  if (absl::GetFlag(FLAGS_max_payload_bytes) <= 0 ||
      absl::GetFlag(FLAGS_max_tasks) <= 0 ||
      absl::GetFlag(FLAGS_event_log_capacity) <= 0 ||
      absl::GetFlag(FLAGS_event_log_bytes) <= 0 ||
      absl::GetFlag(FLAGS_worker_outbox_bytes) <= 0 ||
      absl::GetFlag(FLAGS_threads) < 0 ||
      absl::GetFlag(FLAGS_metrics_max_queues) < 1) {
    std::fprintf(stderr,
                 "taskd: --max_payload_bytes, --max_tasks, "
                 "--event_log_capacity, --event_log_bytes, "
                 "--worker_outbox_bytes and --metrics_max_queues must be "
                 "positive, --threads >= 0\n");
    return 2;
  }

  // Signals are taken synchronously by the main thread; every other thread
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // re-read --auth-tokens
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  taskd::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.engine.limits.max_payload_bytes =
      absl::GetFlag(FLAGS_max_payload_bytes);
  options.engine.default_result_ttl = absl::GetFlag(FLAGS_result_ttl);
  options.engine.default_heartbeat_timeout =
      absl::GetFlag(FLAGS_heartbeat_timeout);
  options.engine.max_tasks = absl::GetFlag(FLAGS_max_tasks);
  options.engine.event_log_capacity = absl::GetFlag(FLAGS_event_log_capacity);
  options.engine.event_log_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_event_log_bytes));
  options.worker_outbox_bytes =
      static_cast<size_t>(absl::GetFlag(FLAGS_worker_outbox_bytes));
  options.durability = absl::GetFlag(FLAGS_durability);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.compact_interval = absl::GetFlag(FLAGS_compact_interval);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.metrics_max_queues = absl::GetFlag(FLAGS_metrics_max_queues);
  options.health_listen = absl::GetFlag(FLAGS_health_listen);
  options.security.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.security.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.security.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.security.cert_refresh = absl::GetFlag(FLAGS_tls_refresh);
  options.security.auth_tokens = absl::GetFlag(FLAGS_auth_tokens);
  options.security.tokens_watch = absl::GetFlag(FLAGS_auth_tokens_check);
  options.security.insecure = absl::GetFlag(FLAGS_insecure);

  taskd::TaskdServer server(options);
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "taskd: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (options.durability != "memory") {
    const taskd::RecoveryStats& r = server.recovery();
    std::fprintf(stderr,
                 "taskd: recovered %zu tasks (%zu pending, %zu scheduled, "
                 "%zu running, %zu finished) from %s in %lld ms\n",
                 r.tasks, r.pending, r.scheduled, r.running, r.terminal,
                 options.data_dir.c_str(),
                 static_cast<long long>(
                     absl::ToInt64Milliseconds(server.recovery_time())));
    if (r.quarantined > 0) {
      std::fprintf(stderr,
                   "taskd: WARNING: %llu unreadable records were set aside "
                   "under the q/ prefix of %s (see the log above)\n",
                   static_cast<unsigned long long>(r.quarantined),
                   options.data_dir.c_str());
    }
  }
  std::fprintf(stderr, "taskd: serving on %s (port %d), durability=%s, %s\n",
               options.listen.c_str(), server.port(),
               options.durability.c_str(), server.security_summary().c_str());
  if (server.health_port() != 0) {
    std::fprintf(stderr, "taskd: health only (plaintext) on %s (port %d)\n",
                 options.health_listen.c_str(), server.health_port());
  }
  for (const std::string& warning : server.security_warnings()) {
    std::fprintf(stderr, "taskd: WARNING: %s\n", warning.c_str());
  }
  if (server.metrics_port() != 0) {
    std::fprintf(stderr, "taskd: metrics on http://%s/metrics (port %d)\n",
                 options.metrics_listen.c_str(), server.metrics_port());
  }

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    if (auto s = server.ReloadTokens(); !s.ok()) {
      std::fprintf(stderr, "taskd: SIGHUP: %s\n",
                   std::string(s.message()).c_str());
    }
  }
  std::fprintf(stderr, "taskd: %s received, shutting down\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT");
  server.Shutdown();
  std::fprintf(stderr, "taskd: stopped\n");
  return 0;
}
