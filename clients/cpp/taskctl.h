// taskctl: the command-line client of taskd. Parsing (ParseTaskctl) and
// execution (RunTaskctl) are separate so both can be tested; taskctl_main.cc
// only forwards argv and the process environment.
//
//   taskctl [--server ADDR] [--json] submit TYPE [--payload STR |
//           --payload-file F] [--queue Q] [--priority N] [--delay D]
//           [--timeout D] [--retries N] [--idempotency-key K | --key K]
//           [--after ID]... [--wait] [--wait-timeout D]
//   taskctl get ID | await ID... [--any] [--timeout D] | cancel ID [--reason R]
//   taskctl watch [ID...] [--queue Q] [--from N] | list [--queue Q]
//           [--state pending,running,...] [--limit N]
//   taskctl queues | pause QUEUE | resume QUEUE | purge QUEUE [--reason R]
//           | queue-limit QUEUE [--max-concurrency N] [--max-rate R]
//   taskctl schedule create ID (--cron EXPR | --every D) TYPE [--payload P]
//           [--queue Q] [--priority N]
//   taskctl schedule list | get ID | delete ID | pause ID | resume ID
//   taskctl token new NAME --roles R[,R...] [--queues P[,P...]]
//   security flags anywhere: --tls-ca F --tls-cert F --tls-key F --token T
//   (or $TASKD_TOKEN), see connection.h
//
// Exit status: 0 success; 1 an RPC failed (stderr: "taskctl: CODE: message"),
// or an awaited task FAILED or was CANCELLED, or the wait timed out; 2 usage
// error (stderr: the problem and the usage text).
//
// Thread-compatible.
#ifndef TASKD_CLIENTS_CPP_TASKCTL_H_
#define TASKD_CLIENTS_CPP_TASKCTL_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "clients/cpp/connection.h"

namespace taskd {

inline constexpr char kDefaultServer[] = "127.0.0.1:50051";

struct TaskctlInvocation {
  enum class Command {
    kHelp,
    kSubmit,
    kGet,
    kAwait,
    kCancel,
    kWatch,
    kList,
    // QueueService (operators).
    kQueues,
    kPauseQueue,
    kResumeQueue,
    kPurgeQueue,
    kQueueLimit,
    // ScheduleService: `schedule <verb>`.
    kScheduleCreate,
    kScheduleList,
    kScheduleGet,
    kScheduleDelete,
    kSchedulePause,
    kScheduleResume,
    // `token new`: prints a fresh token and its line for --auth-tokens.
    kTokenNew,
  };
  Command command = Command::kHelp;
  std::string server = kDefaultServer;
  bool json = false;
  // TLS and bearer token (--tls-ca, --tls-cert, --tls-key, --token).
  ChannelSecurity security;
  // token new: NAME, --roles, --queues.
  std::string token_name;
  std::string token_roles;
  std::string token_queues;
  // submit: type, queue, payload, priority, delay, timeout,
  // retry.max_attempts, idempotency_key, depends_on.
  v1::TaskSpec spec;
  std::string payload_file;  // read at run time; "-" = stdin
  bool wait = false;
  // get, cancel, schedule get/delete/pause/resume: one id; await: at least
  // one; watch: any number.
  std::vector<std::string> ids;
  bool any = false;
  // How long submit --wait (--wait-timeout) or await (--timeout) waits.
  absl::Duration timeout = absl::InfiniteDuration();
  std::string reason;  // cancel, purge
  // watch, list; pause, resume, purge, queue-limit: the queue named.
  std::string queue;
  // queue-limit: the limits to change (unset ones stay as they are).
  std::optional<int32_t> max_concurrency;
  std::optional<double> max_dispatch_per_second;
  // schedule create: id, cron or interval, template.
  v1::Schedule schedule;
  uint64_t from_sequence = 0;
  std::vector<v1::TaskState> states;
  int limit = 100;  // 0 = no limit
};

// Parses argv without the program name. `env_server` is $TASKD_SERVER (null
// or empty when unset); --server overrides it. INVALID_ARGUMENT (a usage
// error) with a message naming the problem.
// `env_token` is $TASKD_TOKEN (null when unset); --token overrides it.
absl::StatusOr<TaskctlInvocation> ParseTaskctl(
    const std::vector<std::string>& args, const char* env_server,
    const char* env_token = nullptr);

// Parses and runs; returns the process exit status.
int RunTaskctl(const std::vector<std::string>& args, const char* env_server,
               std::ostream& out, std::ostream& err,
               const char* env_token = nullptr);

// One-line human summaries.
std::string FormatTask(const v1::Task& task);
std::string FormatEvent(const v1::TaskEvent& event);
std::string FormatQueue(const v1::Queue& queue);
std::string FormatSchedule(const v1::Schedule& schedule);

extern const char kTaskctlUsage[];

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_TASKCTL_H_
