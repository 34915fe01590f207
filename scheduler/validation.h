// Validation of client input. Every error is INVALID_ARGUMENT and names the
// offending field by its path in the request ("task.priority",
// "tasks[3].type"), so clients can tell exactly what they did wrong.
//
// Pure functions; thread-safe.
#ifndef TASKD_SCHEDULER_VALIDATION_H_
#define TASKD_SCHEDULER_VALIDATION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd {

struct ValidationLimits {
  int64_t max_payload_bytes = 1 << 20;
  int max_labels = 64;
  int max_label_key_bytes = 128;
  int max_label_value_bytes = 1024;
  int max_idempotency_key_bytes = 256;
  int max_depends_on = 100;
  int max_attempts = 100;
};

// Checks `spec` (addressed as `path`, e.g. "task") against the API rules.
absl::Status ValidateTaskSpec(const v1::TaskSpec& spec,
                              const ValidationLimits& limits,
                              absl::string_view path);

// Queue names: [A-Za-z0-9_.:-]{1,64}. Empty is not accepted here; callers
// map empty to "default" first where the API allows it.
absl::Status ValidateQueueName(absl::string_view queue, absl::string_view path);

// Type names: [A-Za-z0-9_.:/-]{1,128}.
absl::Status ValidateTypeName(absl::string_view type, absl::string_view path);

// A well-formed, non-negative Duration / a well-formed Timestamp.
absl::Status ValidateDuration(const google::protobuf::Duration& d,
                              absl::string_view path);
// A valid Duration shorter than 1000 years: for spans added to the current
// time, so that every time computed from them is a valid Timestamp.
absl::Status ValidateSpan(const google::protobuf::Duration& d,
                          absl::string_view path);
absl::Status ValidateTimestamp(const google::protobuf::Timestamp& t,
                               absl::string_view path);

// A syntactically valid task id (26 Crockford base32 characters). Unknown but
// well-formed ids are NOT_FOUND later, not INVALID_ARGUMENT.
absl::Status ValidateTaskId(absl::string_view id, absl::string_view path);

// The queue a spec names, with the API default applied.
std::string QueueOf(const v1::TaskSpec& spec);

// Conversions between protobuf and absl time types (inputs already validated).
absl::Duration ToDuration(const google::protobuf::Duration& d);
absl::Time ToTime(const google::protobuf::Timestamp& t);
google::protobuf::Duration FromDuration(absl::Duration d);
google::protobuf::Timestamp FromTime(absl::Time t);

}  // namespace taskd

#endif  // TASKD_SCHEDULER_VALIDATION_H_
