#include "services/metrics/build_info.h"

#include <google/protobuf/stubs/common.h>
#include <grpcpp/grpcpp.h>
#include <rocksdb/version.h>

#include "absl/strings/str_cat.h"

namespace taskd {

const BuildInfo& GetBuildInfo() {
  static const BuildInfo* info = [] {
    auto* b = new BuildInfo;
    b->version = kTaskdVersion;
    b->grpc = grpc::Version();
    b->protobuf = google::protobuf::internal::VersionString(
        GOOGLE_PROTOBUF_VERSION);
    b->rocksdb =
        absl::StrCat(ROCKSDB_MAJOR, ".", ROCKSDB_MINOR, ".", ROCKSDB_PATCH);
    return b;
  }();
  return *info;
}

std::string VersionLine() {
  const BuildInfo& b = GetBuildInfo();
  return absl::StrCat("taskd ", b.version, " (gRPC ", b.grpc, ", protobuf ",
                      b.protobuf, ", RocksDB ", b.rocksdb, ")");
}

}  // namespace taskd
