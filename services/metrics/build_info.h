// BuildInfo: taskd's version and the versions of the libraries it runs on,
// for `taskd --version` and the taskd_build_info metric.
//
// Immutable; thread-safe.
#ifndef TASKD_SERVICES_METRICS_BUILD_INFO_H_
#define TASKD_SERVICES_METRICS_BUILD_INFO_H_

#include <string>

namespace taskd {

inline constexpr char kTaskdVersion[] = "0.1.0";

struct BuildInfo {
  std::string version;   // taskd
  std::string grpc;      // the gRPC library loaded (grpc::Version())
  std::string protobuf;  // the protobuf headers built against, e.g. 3.21.12
  std::string rocksdb;   // the RocksDB headers built against, e.g. 7.8.3
};

const BuildInfo& GetBuildInfo();

// "taskd 0.1.0 (gRPC 1.51.1, protobuf 3.21.12, RocksDB 7.8.3)".
std::string VersionLine();

}  // namespace taskd

#endif  // TASKD_SERVICES_METRICS_BUILD_INFO_H_
