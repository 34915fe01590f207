// Command line of taskd-worker, parsed into Worker options and shell
// handlers. Kept apart from worker_main.cc so it can be tested.
//
//   taskd-worker --server ADDR --queue Q[,Q...] (repeatable)
//       --handler TYPE=COMMAND (repeatable) [--concurrency N] [--grace 5s]
//       [--worker-id ID] [--heartbeat 5s]
//       [--tls-ca F] [--tls-cert F --tls-key F] [--token T | $TASKD_TOKEN]
//
// Thread-compatible.
#ifndef TASKD_CLIENTS_CPP_WORKER_CLI_H_
#define TASKD_CLIENTS_CPP_WORKER_CLI_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cpp/connection.h"

namespace taskd {

struct WorkerConfig {
  bool help = false;
  std::string server = "127.0.0.1:50051";
  std::string worker_id;  // empty: the SDK's default
  std::vector<std::string> queues;
  std::vector<std::pair<std::string, std::string>> handlers;  // type, command
  int concurrency = 1;
  absl::Duration grace = absl::Seconds(5);
  absl::Duration heartbeat = absl::Seconds(5);
  ChannelSecurity security;  // TLS and bearer token
};

// Parses argv without the program name; `env_server` is $TASKD_SERVER or
// null, `env_token` $TASKD_TOKEN or null. INVALID_ARGUMENT (a usage error)
// naming the problem.
absl::StatusOr<WorkerConfig> ParseWorkerArgs(
    const std::vector<std::string>& args, const char* env_server,
    const char* env_token = nullptr);

extern const char kWorkerUsage[];

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_WORKER_CLI_H_
