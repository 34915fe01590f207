// The one place where absl::Status becomes grpc::Status.
#ifndef TASKD_SERVICES_STATUS_UTIL_H_
#define TASKD_SERVICES_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace taskd {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace taskd

#endif  // TASKD_SERVICES_STATUS_UTIL_H_
