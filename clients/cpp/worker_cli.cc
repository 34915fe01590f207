#include "clients/cpp/worker_cli.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clients/cpp/cli_args.h"

namespace taskd {

const char kWorkerUsage[] =
    R"(usage: taskd-worker --handler TYPE=COMMAND [--handler ...] [flags]

Serves taskd tasks by running COMMAND with /bin/sh -c in its own process
group: the payload is its stdin, its stdout (at most ~4 MiB) the result.
Exit 0 completes the task; exit N fails it with code exit_N (message: the
end of stderr); death by signal S fails it with signal_S. On cancellation
the process group gets SIGTERM, then SIGKILL after --grace. The command sees
TASKD_TASK_ID, TASKD_ATTEMPT and TASKD_TASK_TYPE.

flags:
  --server ADDR        taskd address (default $TASKD_SERVER, else 127.0.0.1:50051)
  --queue Q[,Q...]     queues to serve, repeatable (default: the default queue)
  --handler TYPE=CMD   command for task type TYPE, repeatable, at least one
  --concurrency N      tasks run at once (default 1)
  --grace D            SIGTERM to SIGKILL delay (default 5s)
  --heartbeat D        heartbeat interval (default 5s)
  --worker-id ID       name the server knows this worker by (default hostname-pid)
  --tls-ca FILE        connect with TLS, trusting the CA certificates in FILE
  --tls-cert FILE      client certificate for mTLS (with --tls-key)
  --tls-key FILE       private key of --tls-cert
  --token T            bearer token (default $TASKD_TOKEN); sent only over TLS
                       or to a loopback address
  --help               print this text

SIGTERM or SIGINT stops gracefully (running commands are cancelled and their
tasks handed back for retry); a second signal exits at once.
)";

namespace {

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status ParsePositiveDuration(const ParsedArgs& args,
                                   const std::string& name,
                                   absl::Duration* out) {
  if (!args.Has(name)) return absl::OkStatus();
  const std::string text = args.Get(name, "");
  if (!absl::ParseDuration(text, out) || *out < absl::ZeroDuration() ||
      *out == absl::InfiniteDuration()) {
    return Usage(absl::StrCat("--", name, ": not a duration: ", text));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WorkerConfig> ParseWorkerArgs(
    const std::vector<std::string>& args, const char* env_server,
    const char* env_token) {
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs(args, 0,
                {{"server"},
                 {"queue", true, true},
                 {"handler", true, true},
                 {"concurrency"},
                 {"grace"},
                 {"heartbeat"},
                 {"worker-id"},
                 {"help", false},
                 {"h", false},
                 {"tls-ca"},
                 {"tls-cert"},
                 {"tls-key"},
                 {"token"}});
  if (!parsed.ok()) return parsed.status();
  WorkerConfig config;
  if (parsed->GetBool("help") || parsed->GetBool("h")) {
    config.help = true;
    return config;
  }
  if (!parsed->positional.empty()) {
    return Usage(absl::StrCat("unexpected argument: ", parsed->positional[0]));
  }
  if (env_server != nullptr && env_server[0] != '\0') config.server = env_server;
  config.server = parsed->Get("server", config.server);
  if (config.server.empty()) return Usage("--server: empty address");
  config.worker_id = parsed->Get("worker-id", "");
  config.security = SecurityFromArgs({&*parsed}, env_token);
  if (parsed->Has("queue")) {
    for (const std::string& value : parsed->flags.at("queue")) {
      for (absl::string_view q :
           absl::StrSplit(value, ',', absl::SkipWhitespace())) {
        config.queues.emplace_back(q);
      }
    }
  }
  if (!parsed->Has("handler")) return Usage("at least one --handler needed");
  for (const std::string& value : parsed->flags.at("handler")) {
    const size_t eq = value.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
      return Usage(absl::StrCat("--handler: want TYPE=COMMAND, got: ", value));
    }
    std::string type = value.substr(0, eq);
    for (const auto& [existing, command] : config.handlers) {
      if (existing == type) {
        return Usage(absl::StrCat("--handler: type ", type, " given twice"));
      }
    }
    config.handlers.emplace_back(std::move(type), value.substr(eq + 1));
  }
  if (parsed->Has("concurrency") &&
      (!absl::SimpleAtoi(parsed->Get("concurrency", ""), &config.concurrency) ||
       config.concurrency < 1 || config.concurrency > 10000)) {
    return Usage("--concurrency: want an integer in 1..10000");
  }
  if (absl::Status s = ParsePositiveDuration(*parsed, "grace", &config.grace);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ParsePositiveDuration(*parsed, "heartbeat", &config.heartbeat);
      !s.ok()) {
    return s;
  }
  if (config.heartbeat <= absl::ZeroDuration()) {
    return Usage("--heartbeat: must be positive");
  }
  return config;
}

}  // namespace taskd
