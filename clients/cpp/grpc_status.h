// Conversion of gRPC status to absl::Status, the single place where the
// client libraries cross from gRPC's error type to the house error type.
//
//   grpc::Status s = stub->GetTask(&ctx, req, &task);
//   if (!s.ok()) return taskd::FromGrpcStatus(s);
//
// Stateless; safe to call from any thread.
#ifndef TASKD_CLIENTS_CPP_GRPC_STATUS_H_
#define TASKD_CLIENTS_CPP_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace taskd {

// Returns an absl::Status with the same canonical code and message as
// `status` (the two enums share their numeric values). OK maps to OK.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_GRPC_STATUS_H_
