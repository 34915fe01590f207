#include "scheduler/validation.h"

#include "absl/strings/str_cat.h"
#include "api/strings/utf8.h"

namespace taskd {
namespace {

constexpr int64_t kMaxDurationSeconds = 315'576'000'000;  // protobuf's bound
constexpr int64_t kMinTimestampSeconds = -62'135'596'800;  // 0001-01-01
constexpr int64_t kMaxTimestampSeconds = 253'402'300'799;  // 9999-12-31
// Spans added to "now" stay below 1000 years, so every time computed from
// them (schedule time, deadlines, retention) is a valid Timestamp until the
// year 9000.
constexpr int64_t kMaxSpanSeconds = 1000LL * 365 * 86400;

absl::Status Invalid(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

bool NameChars(absl::string_view s, absl::string_view extra) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || extra.find(c) != absl::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string Field(absl::string_view path, absl::string_view field) {
  return absl::StrCat(path, ".", field);
}

}  // namespace

absl::Status ValidateQueueName(absl::string_view queue,
                               absl::string_view path) {
  if (queue.empty() || queue.size() > 64 || !NameChars(queue, "_.:-")) {
    return Invalid(path,
                   absl::StrCat("invalid queue name \"", ToValidUtf8(queue, 80),
                                "\" (want [A-Za-z0-9_.:-]{1,64})"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTypeName(absl::string_view type, absl::string_view path) {
  if (type.empty()) return Invalid(path, "required");
  if (type.size() > 128 || !NameChars(type, "_.:/-")) {
    return Invalid(path,
                   absl::StrCat("invalid task type \"", ToValidUtf8(type, 140),
                                "\" (want [A-Za-z0-9_.:/-]{1,128})"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDuration(const google::protobuf::Duration& d,
                              absl::string_view path) {
  if (d.seconds() < 0 || d.nanos() < 0) {
    return Invalid(path, "must not be negative");
  }
  if (d.seconds() > kMaxDurationSeconds || d.nanos() > 999'999'999) {
    return Invalid(path, "out of range");
  }
  return absl::OkStatus();
}

absl::Status ValidateSpan(const google::protobuf::Duration& d,
                          absl::string_view path) {
  if (auto s = ValidateDuration(d, path); !s.ok()) return s;
  if (d.seconds() >= kMaxSpanSeconds) {
    return Invalid(path, absl::StrCat(
                             "must be less than 1000 years (", kMaxSpanSeconds,
                             " s): times computed from it must stay valid "
                             "timestamps (before year 10000)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTimestamp(const google::protobuf::Timestamp& t,
                               absl::string_view path) {
  if (t.seconds() < kMinTimestampSeconds || t.seconds() > kMaxTimestampSeconds ||
      t.nanos() < 0 || t.nanos() > 999'999'999) {
    return Invalid(path, "not a valid timestamp");
  }
  return absl::OkStatus();
}

absl::Status ValidateTaskId(absl::string_view id, absl::string_view path) {
  if (id.empty()) return Invalid(path, "required");
  // Crockford base32, upper case, as TaskIdGenerator writes it.
  bool crockford = id.size() == 26;
  for (char c : id) {
    crockford &= (c >= '0' && c <= '9') ||
                 (c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' &&
                  c != 'U');
  }
  if (!crockford) {
    return Invalid(path, absl::StrCat("not a task id: \"", ToValidUtf8(id, 40),
                                      "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateTaskSpec(const v1::TaskSpec& spec,
                              const ValidationLimits& limits,
                              absl::string_view path) {
  if (!spec.queue().empty()) {
    if (auto s = ValidateQueueName(spec.queue(), Field(path, "queue")); !s.ok())
      return s;
  }
  if (auto s = ValidateTypeName(spec.type(), Field(path, "type")); !s.ok())
    return s;
  if (static_cast<int64_t>(spec.payload().size()) > limits.max_payload_bytes) {
    return Invalid(Field(path, "payload"),
                   absl::StrCat("is ", spec.payload().size(),
                                " bytes; the limit is ",
                                limits.max_payload_bytes));
  }
  if (spec.priority() < 0 || spec.priority() > 9) {
    return Invalid(Field(path, "priority"),
                   absl::StrCat("must be 0..9, got ", spec.priority()));
  }
  if (spec.has_run_at() && spec.has_delay()) {
    return Invalid(Field(path, "run_at"), "set at most one of run_at and delay");
  }
  if (spec.has_run_at()) {
    if (auto s = ValidateTimestamp(spec.run_at(), Field(path, "run_at"));
        !s.ok())
      return s;
  }
  struct {
    const char* name;
    bool set;
    const google::protobuf::Duration* d;
  } durations[] = {
      {"delay", spec.has_delay(), &spec.delay()},
      {"timeout", spec.has_timeout(), &spec.timeout()},
      {"heartbeat_timeout", spec.has_heartbeat_timeout(),
       &spec.heartbeat_timeout()},
      {"result_ttl", spec.has_result_ttl(), &spec.result_ttl()},
      {"retry.initial_backoff", spec.retry().has_initial_backoff(),
       &spec.retry().initial_backoff()},
      {"retry.max_backoff", spec.retry().has_max_backoff(),
       &spec.retry().max_backoff()},
  };
  for (const auto& d : durations) {
    if (!d.set) continue;
    if (auto s = ValidateSpan(*d.d, Field(path, d.name)); !s.ok()) return s;
  }
  const v1::RetryPolicy& retry = spec.retry();
  if (retry.max_attempts() < 0 || retry.max_attempts() > limits.max_attempts) {
    return Invalid(Field(path, "retry.max_attempts"),
                   absl::StrCat("must be 0..", limits.max_attempts, ", got ",
                                retry.max_attempts()));
  }
  if (retry.multiplier() != 0 &&
      !(retry.multiplier() >= 1.0 && retry.multiplier() <= 100.0)) {
    return Invalid(Field(path, "retry.multiplier"),
                   "must be 0 (default) or within 1..100");
  }
  if (retry.has_initial_backoff() && retry.has_max_backoff() &&
      ToDuration(retry.max_backoff()) > absl::ZeroDuration() &&
      ToDuration(retry.max_backoff()) < ToDuration(retry.initial_backoff())) {
    return Invalid(Field(path, "retry.max_backoff"),
                   "must not be less than retry.initial_backoff");
  }
  if (static_cast<int>(spec.idempotency_key().size()) >
      limits.max_idempotency_key_bytes) {
    return Invalid(Field(path, "idempotency_key"),
                   absl::StrCat("longer than ", limits.max_idempotency_key_bytes,
                                " bytes"));
  }
  if (spec.depends_on_size() > limits.max_depends_on) {
    return Invalid(Field(path, "depends_on"),
                   absl::StrCat("at most ", limits.max_depends_on, " ids"));
  }
  for (int i = 0; i < spec.depends_on_size(); ++i) {
    if (auto s = ValidateTaskId(spec.depends_on(i),
                                absl::StrCat(path, ".depends_on[", i, "]"));
        !s.ok())
      return s;
  }
  if (spec.labels_size() > limits.max_labels) {
    return Invalid(Field(path, "labels"),
                   absl::StrCat("at most ", limits.max_labels, " entries, got ",
                                spec.labels_size()));
  }
  for (const auto& [key, value] : spec.labels()) {
    if (key.empty() || static_cast<int>(key.size()) > limits.max_label_key_bytes) {
      return Invalid(Field(path, "labels"),
                     absl::StrCat("keys must be 1..", limits.max_label_key_bytes,
                                  " bytes"));
    }
    if (static_cast<int>(value.size()) > limits.max_label_value_bytes) {
      return Invalid(absl::StrCat(path, ".labels[", ToValidUtf8(key, 64), "]"),
                     absl::StrCat("value longer than ",
                                  limits.max_label_value_bytes, " bytes"));
    }
  }
  return absl::OkStatus();
}

std::string QueueOf(const v1::TaskSpec& spec) {
  return spec.queue().empty() ? std::string("default") : spec.queue();
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

google::protobuf::Duration FromDuration(absl::Duration d) {
  google::protobuf::Duration out;
  int64_t secs = absl::IDivDuration(d, absl::Seconds(1), &d);
  out.set_seconds(secs);
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
  return out;
}

google::protobuf::Timestamp FromTime(absl::Time t) {
  google::protobuf::Timestamp out;
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return out;
  int64_t secs = absl::ToUnixSeconds(t);  // rounds down
  out.set_seconds(secs);
  out.set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(secs))));
  return out;
}

}  // namespace taskd
