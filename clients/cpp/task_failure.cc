#include "clients/cpp/task_failure.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/types/optional.h"
#include "api/strings/utf8.h"

namespace taskd {

std::string LowercaseCodeName(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

absl::Status TaskFailure(absl::string_view code, absl::string_view message,
                         bool retryable, absl::string_view details) {
  // Stored as a TaskError, whose strings must be UTF-8 to parse back (and
  // to reach the server at all): raw bytes become U+FFFD here.
  v1::TaskError error;
  error.set_code(code.empty() ? "unknown" : ToValidUtf8(code));
  error.set_retryable(retryable);
  error.set_details(ToValidUtf8(details));
  absl::Status status(absl::StatusCode::kUnknown, ToValidUtf8(message));
  status.SetPayload(kTaskFailurePayloadUrl,
                    absl::Cord(error.SerializeAsString()));
  return status;
}

v1::TaskError TaskErrorFromStatus(const absl::Status& status) {
  v1::TaskError error;
  absl::optional<absl::Cord> payload = status.GetPayload(kTaskFailurePayloadUrl);
  if (payload.has_value() &&
      error.ParseFromString(std::string(*payload))) {
    if (error.code().empty()) error.set_code("unknown");
    error.set_message(std::string(status.message()));
    return error;
  }
  error.Clear();
  error.set_code(status.ok() ? "unknown" : LowercaseCodeName(status.code()));
  error.set_message(std::string(status.message()));
  error.set_retryable(status.code() != absl::StatusCode::kInvalidArgument &&
                      status.code() != absl::StatusCode::kFailedPrecondition);
  return error;
}

}  // namespace taskd
