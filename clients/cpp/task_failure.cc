#include "clients/cpp/task_failure.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/types/optional.h"

namespace taskd {

std::string LowercaseCodeName(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

absl::Status TaskFailure(absl::string_view code, absl::string_view message,
                         bool retryable, absl::string_view details) {
  v1::TaskError error;
  error.set_code(code.empty() ? "unknown" : std::string(code));
  error.set_retryable(retryable);
  error.set_details(std::string(details));
  absl::Status status(absl::StatusCode::kUnknown, message);
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
