#include "clients/cpp/grpc_status.h"

#include <string>

namespace taskd {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  // Both enums follow google.rpc.Code; anything outside it is UNKNOWN.
  const absl::StatusCode absl_code =
      (code >= 0 && code <= 16) ? static_cast<absl::StatusCode>(code)
                                : absl::StatusCode::kUnknown;
  return absl::Status(absl_code, status.error_message());
}

}  // namespace taskd
