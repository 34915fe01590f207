#include "clients/cpp/taskctl.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cpp/cli_args.h"
#include "clients/cpp/client.h"
#include "clients/cpp/taskctl_admin.h"
#include "services/auth/token_hash.h"
#include "services/auth/token_table.h"

namespace taskd {

const char kTaskctlUsage[] =
    R"(usage: taskctl [--server ADDR] [--json] COMMAND [ARGS]

commands:
  submit TYPE [--payload STR | --payload-file F] [--queue Q] [--priority N]
              [--delay D] [--timeout D] [--retries N] [--key K] [--after ID]...
              [--wait] [--wait-timeout D]
      submit a task and print its id; --wait also awaits it and prints it.
      --timeout: execution limit per attempt; --retries: total attempts;
      --key (or --idempotency-key): idempotency key; --after: a task that
      must succeed first (repeatable)
  get ID                              print a task
  await ID... [--any] [--timeout D]   wait until all (or any) are terminal
  cancel ID [--reason R]              cancel a task
  watch [ID...] [--queue Q] [--from N]
      print one line per event (ends when all listed tasks are terminal)
  list [--queue Q] [--state pending,scheduled,running,...] [--limit N]
      list tasks (default limit 100; 0 = all)

queues (operators):
  queues                              one line per queue: counts, limits
  pause QUEUE | resume QUEUE          stop / restart dispatching a queue
  purge QUEUE [--reason R]            cancel its pending and scheduled tasks
  queue-limit QUEUE [--max-concurrency N] [--max-rate R]
      running tasks at most / dispatches per second (0 removes the limit)

schedules (periodic tasks):
  schedule create ID (--cron EXPR | --every D) TYPE [--payload P] [--queue Q]
                  [--priority N]
      cron is 5 fields in UTC, e.g. "*/15 * * * *"; --every 1m
  schedule list | get ID | delete ID | pause ID | resume ID

tokens (for taskd --auth-tokens; needs no server):
  token new NAME --roles R[,R...] [--queues P[,P...]]
      print a fresh random token (line 1) and the line to add to the token
      file (line 2). Roles: submit, read, work, admin; queue patterns may
      use * and ?, e.g. build-*

global flags:
  --server ADDR   taskd address (default $TASKD_SERVER, else 127.0.0.1:50051)
  --json          print JSON objects, one per line
  --tls-ca FILE   connect with TLS, trusting the CA certificates in FILE
  --tls-cert FILE client certificate for mTLS (with --tls-key; implies TLS)
  --tls-key FILE  private key of --tls-cert
  --token T       bearer token (default $TASKD_TOKEN); sent only over TLS or
                  to a loopback address
  --help          print this text

durations look like 30s, 5m, 1h30m. Exit status: 0 ok; 1 RPC error, failed
or cancelled task, or wait timeout; 2 usage error.
)";

namespace {

using Command = TaskctlInvocation::Command;
using taskctl_internal::Fail;
using taskctl_internal::ParseDurationFlag;
using taskctl_internal::SetDuration;
using taskctl_internal::ToJson;
using taskctl_internal::Usage;
constexpr size_t kMaxPayloadFileBytes = 64 << 20;
constexpr size_t kMaxShownResultChars = 512;

absl::StatusOr<v1::TaskState> ParseState(absl::string_view text) {
  std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  if (!absl::StartsWith(name, "TASK_STATE_")) name = "TASK_STATE_" + name;
  v1::TaskState state;
  if (!v1::TaskState_Parse(name, &state) ||
      state == v1::TASK_STATE_UNSPECIFIED) {
    return Usage(absl::StrCat("--state: unknown state: ", text));
  }
  return state;
}

std::vector<FlagSpec> FlagsFor(Command command) {
  std::vector<FlagSpec> flags = {{"server"}, {"json", false}, {"help", false}, {"h", false}};
  for (FlagSpec& spec : SecurityFlagSpecs()) flags.push_back(spec);
  auto add = [&](std::vector<FlagSpec> more) {
    flags.insert(flags.end(), more.begin(), more.end());
  };
  switch (command) {
    case Command::kSubmit:
      add({{"payload"}, {"payload-file"}, {"queue"}, {"priority"}, {"delay"},
           {"timeout"}, {"retries"}, {"idempotency-key"}, {"key"},
           {"after", true, true}, {"wait", false}, {"wait-timeout"}});
      break;
    case Command::kAwait:
      add({{"any", false}, {"timeout"}});
      break;
    case Command::kCancel:
      add({{"reason"}});
      break;
    case Command::kWatch:
      add({{"queue"}, {"from"}});
      break;
    case Command::kList:
      add({{"queue"}, {"state", true, true}, {"limit"}});
      break;
    case Command::kTokenNew:
      add({{"roles"}, {"queues"}});
      break;
    case Command::kGet:
    case Command::kHelp:
      break;
    default:  // queue and schedule commands
      add(taskctl_internal::AdminFlags(command));
      break;
  }
  return flags;
}

absl::Status ParseCommandArgs(const ParsedArgs& args, TaskctlInvocation* inv) {
  const std::vector<std::string>& pos = args.positional;
  switch (inv->command) {
    case Command::kTokenNew: {
      if (pos.size() != 1) return Usage("token new needs exactly one NAME");
      if (!args.Has("roles")) return Usage("token new: --roles required");
      inv->token_name = pos[0];
      inv->token_roles = args.Get("roles", "");
      inv->token_queues = args.Get("queues", "");
      return absl::OkStatus();
    }
    case Command::kSubmit: {
      if (pos.size() != 1) return Usage("submit needs exactly one TYPE");
      inv->spec.set_type(pos[0]);
      if (args.Has("payload") && args.Has("payload-file")) {
        return Usage("--payload and --payload-file are exclusive");
      }
      inv->spec.set_payload(args.Get("payload", ""));
      inv->payload_file = args.Get("payload-file", "");
      inv->spec.set_queue(args.Get("queue", ""));
      if (args.Has("idempotency-key") && args.Has("key")) {
        return Usage("--key is --idempotency-key: give one of them");
      }
      inv->spec.set_idempotency_key(
          args.Get("key", args.Get("idempotency-key", "")));
      if (args.Has("after")) {
        for (const std::string& id : args.flags.at("after")) {
          if (id.empty()) return Usage("--after: empty task id");
          inv->spec.add_depends_on(id);
        }
      }
      if (args.Has("retries")) {
        int attempts;
        if (!absl::SimpleAtoi(args.Get("retries", ""), &attempts) ||
            attempts < 0) {
          return Usage("--retries: not a non-negative integer");
        }
        inv->spec.mutable_retry()->set_max_attempts(attempts);
      }
      absl::StatusOr<absl::Duration> task_timeout =
          ParseDurationFlag(args, "timeout", absl::ZeroDuration());
      if (!task_timeout.ok()) return task_timeout.status();
      if (*task_timeout == absl::InfiniteDuration()) {
        return Usage("--timeout: infinite (omit it for no limit)");
      }
      if (*task_timeout > absl::ZeroDuration()) {
        SetDuration(*task_timeout, inv->spec.mutable_timeout());
      }
      if (args.Has("priority")) {
        int priority;
        if (!absl::SimpleAtoi(args.Get("priority", ""), &priority)) {
          return Usage("--priority: not an integer");
        }
        inv->spec.set_priority(priority);
      }
      absl::StatusOr<absl::Duration> delay =
          ParseDurationFlag(args, "delay", absl::ZeroDuration());
      if (!delay.ok()) return delay.status();
      if (*delay == absl::InfiniteDuration()) return Usage("--delay: infinite");
      if (*delay > absl::ZeroDuration()) {
        SetDuration(*delay, inv->spec.mutable_delay());
      }
      inv->wait = args.GetBool("wait");
      if (args.Has("wait-timeout") && !inv->wait) {
        return Usage("--wait-timeout needs --wait");
      }
      break;
    }
    case Command::kGet:
      if (pos.size() != 1) return Usage("get needs exactly one ID");
      inv->ids = pos;
      break;
    case Command::kCancel:
      if (pos.size() != 1) return Usage("cancel needs exactly one ID");
      inv->ids = pos;
      inv->reason = args.Get("reason", "");
      break;
    case Command::kAwait:
      if (pos.empty()) return Usage("await needs at least one ID");
      inv->ids = pos;
      inv->any = args.GetBool("any");
      break;
    case Command::kWatch:
      inv->ids = pos;
      inv->queue = args.Get("queue", "");
      if (args.Has("from") &&
          !absl::SimpleAtoi(args.Get("from", ""), &inv->from_sequence)) {
        return Usage("--from: not a sequence number");
      }
      break;
    case Command::kList:
      if (!pos.empty()) return Usage("list takes no positional arguments");
      inv->queue = args.Get("queue", "");
      if (args.Has("limit") &&
          (!absl::SimpleAtoi(args.Get("limit", ""), &inv->limit) ||
           inv->limit < 0)) {
        return Usage("--limit: not a non-negative integer");
      }
      if (args.Has("state")) {
        for (const std::string& value : args.flags.at("state")) {
          for (absl::string_view part :
               absl::StrSplit(value, ',', absl::SkipWhitespace())) {
            absl::StatusOr<v1::TaskState> state = ParseState(part);
            if (!state.ok()) return state.status();
            inv->states.push_back(*state);
          }
        }
      }
      break;
    case Command::kHelp:
      break;
    default:
      return taskctl_internal::ParseAdminArgs(args, inv);
  }
  if (inv->command == Command::kSubmit || inv->command == Command::kAwait) {
    // How long to wait: submit --wait-timeout, await --timeout.
    absl::StatusOr<absl::Duration> timeout = ParseDurationFlag(
        args, inv->command == Command::kSubmit ? "wait-timeout" : "timeout",
        absl::InfiniteDuration());
    if (!timeout.ok()) return timeout.status();
    inv->timeout = *timeout;
  }
  return absl::OkStatus();
}

std::string StateName(v1::TaskState state) {
  return std::string(
      absl::StripPrefix(v1::TaskState_Name(state), "TASK_STATE_"));
}

void Print(const TaskctlInvocation& inv, std::ostream& out,
           const v1::Task& task) {
  out << (inv.json ? ToJson(task) : FormatTask(task)) << "\n";
}

// 1 when any of `tasks` FAILED or was CANCELLED.
int OutcomeExit(const google::protobuf::RepeatedPtrField<v1::Task>& tasks) {
  for (const v1::Task& t : tasks) {
    if (t.state() == v1::TASK_STATE_FAILED ||
        t.state() == v1::TASK_STATE_CANCELLED) {
      return 1;
    }
  }
  return 0;
}

int AwaitAndPrint(const TaskctlInvocation& inv, const TaskClient& client,
                  const std::vector<std::string>& ids, std::ostream& out,
                  std::ostream& err) {
  absl::StatusOr<v1::AwaitResponse> r = client.AwaitUntilDone(
      ids, inv.any ? v1::AWAIT_MODE_ANY : v1::AWAIT_MODE_ALL, inv.timeout);
  if (!r.ok()) return Fail(err, r.status());
  if (inv.json) {
    out << ToJson(*r) << "\n";
  } else {
    for (const v1::Task& task : r->tasks()) Print(inv, out, task);
  }
  if (!r->done()) {
    return Fail(err, absl::DeadlineExceededError(absl::StrCat(
                         "not done within ", absl::FormatDuration(inv.timeout))));
  }
  return OutcomeExit(r->tasks());
}

absl::Status ReadPayloadFile(const std::string& path, std::string* payload) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("cannot open ", path));
    in = &file;
  }
  payload->clear();
  char buffer[65536];
  while (in->read(buffer, sizeof(buffer)) || in->gcount() > 0) {
    payload->append(buffer, in->gcount());
    if (payload->size() > kMaxPayloadFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": payload larger than ", kMaxPayloadFileBytes, " bytes"));
    }
  }
  if (in->bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return absl::OkStatus();
}

// `token new`: the token on line 1, its --auth-tokens line on line 2.
int NewTokenLine(const TaskctlInvocation& inv, std::ostream& out,
                 std::ostream& err) {
  if (inv.token_name.empty() ||
      inv.token_name.find_first_of(" \t#") != std::string::npos) {
    err << "taskctl: token new: NAME must be one word without #\n";
    return 2;
  }
  absl::StatusOr<uint32_t> roles = auth::ParseRoles(inv.token_roles);
  if (!roles.ok()) {
    err << "taskctl: --roles: " << roles.status().message() << "\n";
    return 2;
  }
  std::string line = absl::StrCat(" ", inv.token_name, " ",
                                  auth::FormatRoles(*roles));
  if (!inv.token_queues.empty()) {
    for (absl::string_view pattern :
         absl::StrSplit(inv.token_queues, ',', absl::SkipEmpty())) {
      if (!auth::ValidQueuePattern(pattern)) {
        err << "taskctl: --queues: not a queue pattern: " << pattern << "\n";
        return 2;
      }
    }
    absl::StrAppend(&line, " queues=", inv.token_queues);
  }
  absl::StatusOr<std::string> token = auth::NewToken();
  if (!token.ok()) return Fail(err, token.status());
  out << *token << "\n" << auth::HashLine(*token) << line << "\n";
  err << "taskctl: line 1 is the token (give it to the client as --token or "
         "TASKD_TOKEN; it is not stored anywhere); add line 2 to the "
         "--auth-tokens file (taskd reloads it on change or SIGHUP)\n";
  return 0;
}

int Execute(TaskctlInvocation inv, std::ostream& out, std::ostream& err) {
  if (inv.command == Command::kTokenNew) return NewTokenLine(inv, out, err);
  absl::StatusOr<TaskClient> connected =
      TaskClient::Connect(inv.server, inv.security);
  if (!connected.ok()) {
    err << "taskctl: " << connected.status().message() << "\n";
    return 2;
  }
  TaskClient client = *std::move(connected);
  switch (inv.command) {
    case Command::kHelp:
      out << kTaskctlUsage;
      return 0;
    case Command::kSubmit: {
      if (!inv.payload_file.empty()) {
        absl::Status s =
            ReadPayloadFile(inv.payload_file, inv.spec.mutable_payload());
        if (!s.ok()) return Fail(err, s);
      }
      absl::StatusOr<v1::SubmitTaskResponse> r = client.Submit(inv.spec);
      if (!r.ok()) return Fail(err, r.status());
      out << (inv.json ? ToJson(*r) : r->task().id()) << "\n";
      if (!inv.wait) return 0;
      out.flush();
      return AwaitAndPrint(inv, client, {r->task().id()}, out, err);
    }
    case Command::kGet: {
      absl::StatusOr<v1::Task> task = client.Get(inv.ids[0]);
      if (!task.ok()) return Fail(err, task.status());
      Print(inv, out, *task);
      return 0;
    }
    case Command::kAwait:
      return AwaitAndPrint(inv, client, inv.ids, out, err);
    case Command::kCancel: {
      absl::StatusOr<v1::Task> task = client.Cancel(inv.ids[0], inv.reason);
      if (!task.ok()) return Fail(err, task.status());
      Print(inv, out, *task);
      return 0;
    }
    case Command::kWatch: {
      v1::StreamRequest request;
      for (const std::string& id : inv.ids) request.add_ids(id);
      request.set_queue(inv.queue);
      request.set_from_sequence(inv.from_sequence);
      absl::Status s = client.Stream(request, [&](const v1::TaskEvent& e) {
        out << (inv.json ? ToJson(e) : FormatEvent(e)) << std::endl;
        return static_cast<bool>(out);
      });
      return s.ok() ? 0 : Fail(err, s);
    }
    case Command::kList: {
      v1::ListTasksRequest request;
      request.set_queue(inv.queue);
      for (v1::TaskState state : inv.states) request.add_states(state);
      int printed = 0;
      do {
        if (inv.limit > 0) {
          request.set_page_size(std::min(inv.limit - printed, 1000));
        }
        absl::StatusOr<v1::ListTasksResponse> page = client.List(request);
        if (!page.ok()) return Fail(err, page.status());
        for (const v1::Task& task : page->tasks()) {
          if (inv.limit > 0 && printed >= inv.limit) break;
          Print(inv, out, task);
          ++printed;
        }
        request.set_page_token(page->next_page_token());
      } while (!request.page_token().empty() &&
               (inv.limit == 0 || printed < inv.limit));
      return 0;
    }
    default:
      return taskctl_internal::ExecuteAdmin(inv, out, err);
  }
  return 0;
}

}  // namespace

absl::StatusOr<TaskctlInvocation> ParseTaskctl(
    const std::vector<std::string>& args, const char* env_server,
    const char* env_token) {
  TaskctlInvocation inv;
  if (env_server != nullptr && env_server[0] != '\0') inv.server = env_server;
  absl::StatusOr<ParsedArgs> global =
      ParseArgs(args, 0, FlagsFor(Command::kHelp), /*stop_at_positional=*/true);
  if (!global.ok()) return global.status();
  if (global->GetBool("help") || global->GetBool("h")) return inv;
  if (global->next >= args.size()) return Usage("missing command");
  const std::string& name = args[global->next];
  static const std::pair<const char*, Command> kCommands[] = {
      {"submit", Command::kSubmit}, {"get", Command::kGet},
      {"await", Command::kAwait},   {"cancel", Command::kCancel},
      {"watch", Command::kWatch},   {"list", Command::kList},
      {"help", Command::kHelp},     {"queues", Command::kQueues},
      {"pause", Command::kPauseQueue},
      {"resume", Command::kResumeQueue},
      {"purge", Command::kPurgeQueue},
      {"queue-limit", Command::kQueueLimit}};
  bool known = false;
  for (const auto& [command_name, command] : kCommands) {
    if (name == command_name) {
      inv.command = command;
      known = true;
    }
  }
  size_t rest_begin = global->next + 1;
  if (name == "token") {  // `token new ...`
    if (rest_begin >= args.size() || args[rest_begin] != "new") {
      return Usage("token needs a command: new");
    }
    inv.command = Command::kTokenNew;
    known = true;
    ++rest_begin;
  }
  if (name == "schedule") {  // `schedule VERB ...`
    if (rest_begin >= args.size()) {
      return Usage("schedule needs a command: create, list, get, delete, "
                   "pause or resume");
    }
    absl::StatusOr<Command> verb =
        taskctl_internal::ScheduleCommand(args[rest_begin]);
    if (!verb.ok()) return verb.status();
    inv.command = *verb;
    known = true;
    ++rest_begin;
  }
  if (!known) return Usage(absl::StrCat("unknown command: ", name));
  absl::StatusOr<ParsedArgs> rest =
      ParseArgs(args, rest_begin, FlagsFor(inv.command));
  if (!rest.ok()) return rest.status();
  // Global flags may come before or after the command, once.
  for (const char* flag :
       {"server", "json", "help", "tls-ca", "tls-cert", "tls-key", "token"}) {
    if (global->Has(flag) && rest->Has(flag)) {
      return Usage(absl::StrCat("flag --", flag, " given more than once"));
    }
  }
  inv.server = rest->Get("server", global->Get("server", inv.server));
  inv.json = global->GetBool("json") || rest->GetBool("json");
  inv.security = SecurityFromArgs({&*global, &*rest}, env_token);
  if (inv.server.empty()) return Usage("--server: empty address");
  if (rest->GetBool("help") || rest->GetBool("h")) {
    inv.command = Command::kHelp;
    return inv;
  }
  if (absl::Status s = ParseCommandArgs(*rest, &inv); !s.ok()) return s;
  return inv;
}

int RunTaskctl(const std::vector<std::string>& args, const char* env_server,
               std::ostream& out, std::ostream& err, const char* env_token) {
  absl::StatusOr<TaskctlInvocation> inv =
      ParseTaskctl(args, env_server, env_token);
  if (!inv.ok()) {
    err << "taskctl: " << inv.status().message() << "\n\n" << kTaskctlUsage;
    return 2;
  }
  return Execute(*std::move(inv), out, err);
}

std::string FormatTask(const v1::Task& task) {
  std::string line = absl::StrCat(task.id(), " ", StateName(task.state()),
                                  " type=", task.spec().type());
  if (!task.spec().queue().empty()) {
    absl::StrAppend(&line, " queue=", task.spec().queue());
  }
  absl::StrAppend(&line, " attempt=", task.attempt());
  if (task.state() == v1::TASK_STATE_RUNNING && task.has_progress()) {
    absl::StrAppend(&line, " progress=", task.progress().percent(), "%");
  }
  if (task.cancel_requested() && !IsFinalState(task.state())) {
    absl::StrAppend(&line, " cancel_requested");
  }
  if (!task.result().empty()) {
    std::string shown = absl::CHexEscape(task.result());
    if (shown.size() > kMaxShownResultChars) {
      shown = absl::StrCat(shown.substr(0, kMaxShownResultChars), "...");
    }
    absl::StrAppend(&line, " result=\"", shown, "\"");
  }
  if (!task.error().code().empty()) {
    absl::StrAppend(&line, " error=", task.error().code(), ": ",
                    absl::CHexEscape(task.error().message()));
  }
  return line;
}

std::string FormatEvent(const v1::TaskEvent& event) {
  return absl::StrCat(
      event.sequence(), " ",
      absl::StripPrefix(v1::EventType_Name(event.type()), "EVENT_TYPE_"), " ",
      FormatTask(event.task()));
}

}  // namespace taskd
