#include "clients/cpp/taskctl_admin.h"

#include <cmath>
#include <memory>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/grpc_status.h"

namespace taskd {
namespace taskctl_internal {
namespace {

using Command = TaskctlInvocation::Command;

absl::Status OnePositional(const ParsedArgs& args, absl::string_view usage,
                           std::vector<std::string>* out) {
  if (args.positional.size() != 1) {
    return Usage(absl::StrCat(usage, " needs exactly one argument"));
  }
  *out = args.positional;
  return absl::OkStatus();
}

absl::Status ParseQueueLimit(const ParsedArgs& args, TaskctlInvocation* inv) {
  if (args.Has("max-concurrency")) {
    int32_t n;
    if (!absl::SimpleAtoi(args.Get("max-concurrency", ""), &n) || n < 0) {
      return Usage("--max-concurrency: not a non-negative integer");
    }
    inv->max_concurrency = n;
  }
  if (args.Has("max-rate")) {
    double rate;
    if (!absl::SimpleAtod(args.Get("max-rate", ""), &rate) ||
        !std::isfinite(rate) || rate < 0) {
      return Usage("--max-rate: not a non-negative number");
    }
    inv->max_dispatch_per_second = rate;
  }
  if (!inv->max_concurrency && !inv->max_dispatch_per_second) {
    return Usage("queue-limit needs --max-concurrency and/or --max-rate");
  }
  return absl::OkStatus();
}

absl::Status ParseScheduleCreate(const ParsedArgs& args,
                                 TaskctlInvocation* inv) {
  if (args.positional.size() != 2) {
    return Usage("schedule create needs ID and TYPE");
  }
  v1::Schedule& s = inv->schedule;
  s.set_id(args.positional[0]);
  s.mutable_template_()->set_type(args.positional[1]);
  if (args.Has("cron") == args.Has("every")) {
    return Usage("schedule create needs exactly one of --cron and --every");
  }
  if (args.Has("cron")) {
    s.set_cron(args.Get("cron", ""));
  } else {
    absl::StatusOr<absl::Duration> every =
        ParseDurationFlag(args, "every", absl::ZeroDuration());
    if (!every.ok()) return every.status();
    if (*every <= absl::ZeroDuration() || *every == absl::InfiniteDuration()) {
      return Usage("--every: must be a positive duration");
    }
    SetDuration(*every, s.mutable_interval());
  }
  s.mutable_template_()->set_payload(args.Get("payload", ""));
  s.mutable_template_()->set_queue(args.Get("queue", ""));
  if (args.Has("priority")) {
    int priority;
    if (!absl::SimpleAtoi(args.Get("priority", ""), &priority)) {
      return Usage("--priority: not an integer");
    }
    s.mutable_template_()->set_priority(priority);
  }
  return absl::OkStatus();
}

std::string FormatTime(const google::protobuf::Timestamp& t) {
  return absl::FormatTime(absl::RFC3339_sec,
                          absl::FromUnixSeconds(t.seconds()) +
                              absl::Nanoseconds(t.nanos()),
                          absl::UTCTimeZone());
}

absl::Duration ToAbsl(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// Runs one unary RPC and prints its answer with `format` (or as JSON).
template <class Response, class Rpc, class Format>
int Unary(const TaskctlInvocation& inv, std::ostream& out, std::ostream& err,
          Rpc rpc, Format format) {
  grpc::ClientContext ctx;
  Response response;
  grpc::Status status = rpc(&ctx, &response);
  if (!status.ok()) return Fail(err, FromGrpcStatus(status));
  out << (inv.json ? ToJson(response) : format(response)) << "\n";
  return 0;
}

int ExecuteQueue(const TaskctlInvocation& inv,
                 const std::shared_ptr<grpc::Channel>& channel,
                 std::ostream& out, std::ostream& err) {
  auto stub = v1::QueueService::NewStub(channel);
  const std::string& queue = inv.queue;
  switch (inv.command) {
    case Command::kQueues:
      return Unary<v1::ListQueuesResponse>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::ListQueuesResponse* r) {
            return stub->ListQueues(ctx, v1::ListQueuesRequest(), r);
          },
          [](const v1::ListQueuesResponse& r) {
            std::string lines;
            for (const v1::Queue& q : r.queues()) {
              absl::StrAppend(&lines, lines.empty() ? "" : "\n",
                              FormatQueue(q));
            }
            return lines.empty() ? std::string("(no queues)") : lines;
          });
    case Command::kPauseQueue: {
      v1::PauseQueueRequest request;
      request.set_queue(queue);
      return Unary<v1::Queue>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::Queue* r) {
            return stub->PauseQueue(ctx, request, r);
          },
          FormatQueue);
    }
    case Command::kResumeQueue: {
      v1::ResumeQueueRequest request;
      request.set_queue(queue);
      return Unary<v1::Queue>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::Queue* r) {
            return stub->ResumeQueue(ctx, request, r);
          },
          FormatQueue);
    }
    case Command::kPurgeQueue: {
      v1::PurgeQueueRequest request;
      request.set_queue(queue);
      request.set_reason(inv.reason);
      return Unary<v1::PurgeQueueResponse>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::PurgeQueueResponse* r) {
            return stub->PurgeQueue(ctx, request, r);
          },
          [&](const v1::PurgeQueueResponse& r) {
            return absl::StrCat(queue, " purged=", r.purged());
          });
    }
    case Command::kQueueLimit: {
      v1::UpdateQueueRequest request;
      request.set_queue(queue);
      if (inv.max_concurrency) {
        request.set_max_concurrency(*inv.max_concurrency);
      }
      if (inv.max_dispatch_per_second) {
        request.set_max_dispatch_per_second(*inv.max_dispatch_per_second);
      }
      return Unary<v1::Queue>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::Queue* r) {
            return stub->UpdateQueue(ctx, request, r);
          },
          FormatQueue);
    }
    default:
      return Fail(err, absl::InternalError("not a queue command"));
  }
}

int ListSchedules(const TaskctlInvocation& inv, v1::ScheduleService::Stub& stub,
                  std::ostream& out, std::ostream& err) {
  v1::ListSchedulesRequest request;
  request.set_page_size(1000);
  bool any = false;
  do {
    grpc::ClientContext ctx;
    v1::ListSchedulesResponse page;
    grpc::Status status = stub.ListSchedules(&ctx, request, &page);
    if (!status.ok()) return Fail(err, FromGrpcStatus(status));
    for (const v1::Schedule& s : page.schedules()) {
      out << (inv.json ? ToJson(s) : FormatSchedule(s)) << "\n";
      any = true;
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  if (!any && !inv.json) out << "(no schedules)\n";
  return 0;
}

int ExecuteSchedule(const TaskctlInvocation& inv,
                    const std::shared_ptr<grpc::Channel>& channel,
                    std::ostream& out, std::ostream& err) {
  auto stub = v1::ScheduleService::NewStub(channel);
  const std::string id = inv.ids.empty() ? "" : inv.ids[0];
  switch (inv.command) {
    case Command::kScheduleCreate: {
      v1::CreateScheduleRequest request;
      *request.mutable_schedule() = inv.schedule;
      return Unary<v1::Schedule>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::Schedule* r) {
            return stub->CreateSchedule(ctx, request, r);
          },
          FormatSchedule);
    }
    case Command::kScheduleList:
      return ListSchedules(inv, *stub, out, err);
    case Command::kScheduleGet: {
      v1::GetScheduleRequest request;
      request.set_id(id);
      return Unary<v1::Schedule>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::Schedule* r) {
            return stub->GetSchedule(ctx, request, r);
          },
          FormatSchedule);
    }
    case Command::kScheduleDelete: {
      v1::DeleteScheduleRequest request;
      request.set_id(id);
      return Unary<v1::DeleteScheduleResponse>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::DeleteScheduleResponse* r) {
            return stub->DeleteSchedule(ctx, request, r);
          },
          [&](const v1::DeleteScheduleResponse&) {
            return absl::StrCat("deleted ", id);
          });
    }
    case Command::kSchedulePause: {
      v1::PauseScheduleRequest request;
      request.set_id(id);
      return Unary<v1::Schedule>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::Schedule* r) {
            return stub->PauseSchedule(ctx, request, r);
          },
          FormatSchedule);
    }
    case Command::kScheduleResume: {
      v1::ResumeScheduleRequest request;
      request.set_id(id);
      return Unary<v1::Schedule>(
          inv, out, err,
          [&](grpc::ClientContext* ctx, v1::Schedule* r) {
            return stub->ResumeSchedule(ctx, request, r);
          },
          FormatSchedule);
    }
    default:
      return Fail(err, absl::InternalError("not a schedule command"));
  }
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

int Fail(std::ostream& err, const absl::Status& status) {
  err << "taskctl: " << absl::StatusCodeToString(status.code()) << ": "
      << status.message() << "\n";
  return 1;
}

absl::Status Usage(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<absl::Duration> ParseDurationFlag(const ParsedArgs& args,
                                                 const std::string& name,
                                                 absl::Duration fallback) {
  if (!args.Has(name)) return fallback;
  absl::Duration d;
  const std::string text = args.Get(name, "");
  if (!absl::ParseDuration(text, &d) || d < absl::ZeroDuration()) {
    return Usage(absl::StrCat("--", name, ": not a duration: ", text));
  }
  return d;
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

absl::StatusOr<Command> ScheduleCommand(absl::string_view verb) {
  static const std::pair<const char*, Command> kVerbs[] = {
      {"create", Command::kScheduleCreate},
      {"list", Command::kScheduleList},
      {"get", Command::kScheduleGet},
      {"delete", Command::kScheduleDelete},
      {"pause", Command::kSchedulePause},
      {"resume", Command::kScheduleResume}};
  for (const auto& [name, command] : kVerbs) {
    if (verb == name) return command;
  }
  return Usage(absl::StrCat(
      "unknown schedule command \"", verb,
      "\" (want create, list, get, delete, pause or resume)"));
}

std::vector<FlagSpec> AdminFlags(Command command) {
  switch (command) {
    case Command::kPurgeQueue:
      return {{"reason"}};
    case Command::kQueueLimit:
      return {{"max-concurrency"}, {"max-rate"}};
    case Command::kScheduleCreate:
      return {{"cron"}, {"every"}, {"payload"}, {"queue"}, {"priority"}};
    default:
      return {};
  }
}

absl::Status ParseAdminArgs(const ParsedArgs& args, TaskctlInvocation* inv) {
  std::vector<std::string> one;
  switch (inv->command) {
    case Command::kQueues:
    case Command::kScheduleList:
      if (!args.positional.empty()) {
        return Usage("this command takes no positional arguments");
      }
      return absl::OkStatus();
    case Command::kPauseQueue:
    case Command::kResumeQueue:
    case Command::kPurgeQueue:
    case Command::kQueueLimit:
      if (auto s = OnePositional(args, "QUEUE", &one); !s.ok()) return s;
      inv->queue = one[0];
      inv->reason = args.Get("reason", "");
      if (inv->command == Command::kQueueLimit) {
        return ParseQueueLimit(args, inv);
      }
      return absl::OkStatus();
    case Command::kScheduleCreate:
      return ParseScheduleCreate(args, inv);
    case Command::kScheduleGet:
    case Command::kScheduleDelete:
    case Command::kSchedulePause:
    case Command::kScheduleResume:
      return OnePositional(args, "schedule ID", &inv->ids);
    default:
      return Usage("not a queue or schedule command");
  }
}

int ExecuteAdmin(const TaskctlInvocation& inv, std::ostream& out,
                 std::ostream& err) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> connected =
      NewChannel(inv.server, inv.security);
  if (!connected.ok()) {
    err << "taskctl: " << connected.status().message() << "\n";
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel = *std::move(connected);
  switch (inv.command) {
    case Command::kQueues:
    case Command::kPauseQueue:
    case Command::kResumeQueue:
    case Command::kPurgeQueue:
    case Command::kQueueLimit:
      return ExecuteQueue(inv, channel, out, err);
    default:
      return ExecuteSchedule(inv, channel, out, err);
  }
}

}  // namespace taskctl_internal

std::string FormatQueue(const v1::Queue& q) {
  std::string line = absl::StrCat(
      q.queue(), " pending=", q.pending(), " scheduled=", q.scheduled(),
      " running=", q.running(), " succeeded=", q.succeeded(),
      " failed=", q.failed(), " cancelled=", q.cancelled(),
      " workers=", q.workers());
  if (q.paused()) absl::StrAppend(&line, " paused");
  if (q.max_concurrency() > 0) {
    absl::StrAppend(&line, " max_concurrency=", q.max_concurrency());
  }
  if (q.max_dispatch_per_second() > 0) {
    absl::StrAppend(&line, " max_rate=", q.max_dispatch_per_second(), "/s");
  }
  if (q.has_oldest_pending_age()) {
    const absl::Duration age = taskctl_internal::ToAbsl(q.oldest_pending_age());
    if (age > absl::ZeroDuration()) {
      absl::StrAppend(&line, " oldest_pending=",
                      absl::FormatDuration(absl::Trunc(age, absl::Seconds(1))));
    }
  }
  return line;
}

std::string FormatSchedule(const v1::Schedule& s) {
  std::string line = s.id();
  if (s.trigger_case() == v1::Schedule::kCron) {
    absl::StrAppend(&line, " cron=\"", s.cron(), "\"");
  } else if (s.trigger_case() == v1::Schedule::kInterval) {
    const absl::Duration every = taskctl_internal::ToAbsl(s.interval());
    absl::StrAppend(&line, " every=", absl::FormatDuration(every));
  }
  absl::StrAppend(&line, " type=", s.template_().type());
  if (!s.template_().queue().empty()) {
    absl::StrAppend(&line, " queue=", s.template_().queue());
  }
  if (s.paused()) absl::StrAppend(&line, " paused");
  if (s.has_next_fire_time()) {
    absl::StrAppend(&line, " next=",
                    taskctl_internal::FormatTime(s.next_fire_time()));
  }
  if (s.has_last_fire_time()) {
    absl::StrAppend(&line, " last=",
                    taskctl_internal::FormatTime(s.last_fire_time()));
  }
  if (!s.last_task_id().empty()) {
    absl::StrAppend(&line, " last_task=", s.last_task_id());
  }
  return line;
}

}  // namespace taskd
