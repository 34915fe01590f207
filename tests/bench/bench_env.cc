#include "tests/bench/bench_env.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/bench/metrics_scrape.h"

namespace taskd::bench {
namespace {

constexpr absl::Duration kStartLimit = absl::Seconds(120);
constexpr absl::Duration kExitLimit = absl::Seconds(15);
constexpr absl::Duration kLogLinePoll = absl::Milliseconds(1);
// A channel argument of our own whose value differs per index: channels with
// different arguments never share a connection.
constexpr char kChannelIndexArg[] = "taskd_bench.channel_index";

}  // namespace

v1::TaskSpec BenchSpec(int payload_bytes) {
  v1::TaskSpec spec;
  spec.set_queue(kQueue);
  spec.set_type(kTaskType);
  spec.set_payload(std::string(static_cast<size_t>(payload_bytes), 'x'));
  return spec;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(
    const std::string& target, int index, absl::Duration timeout) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(kChannelIndexArg, index);
  // Replies of a 1,000-task batch and big scrapes stay far below this; it
  // only keeps a large SubmitTasks response from failing the benchmark.
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout))) {
    return absl::UnavailableError(absl::StrCat("no connection to ", target,
                                               " within ",
                                               absl::FormatDuration(timeout)));
  }
  return channel;
}

std::string DescribeGrpcError(const grpc::Status& status) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  const int code = static_cast<int>(status.error_code());
  const char* name = code >= 0 && code < 17 ? kNames[code] : "?";
  return absl::StrCat(name, ": ", status.error_message());
}

absl::Status CallError(absl::string_view what, const grpc::Status& status) {
  return absl::UnavailableError(
      absl::StrCat(what, ": ", DescribeGrpcError(status)));
}

BenchEnv::Server::~Server() {
  process.reset();  // SIGKILL and reap
  if (!data_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir, ignored);
  }
}

absl::StatusOr<int> BenchEnv::Server::MetricsPort(
    absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<int> port =
        bench::MetricsPort(process->LastLineContaining("metrics on"));
    if (port.ok() || absl::Now() >= deadline) return port;
    // TaskdProcess has no event for a log line; it comes microseconds after
    // the one Start() waited for, so a short poll finds it.
    absl::SleepFor(kLogLinePoll);
  }
}

std::string BenchEnv::NewDataDir() {
  return absl::StrCat(config_.work_dir, "/data-", next_dir_++);
}

testing::TaskdProcess::Options BenchEnv::TaskdOptions(
    absl::string_view mode, const std::string& data_dir,
    std::string name) const {
  testing::TaskdProcess::Options options;
  options.binary = config_.taskd_bin;
  options.flags = {"--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                   absl::StrCat("--durability=", mode),
                   absl::StrCat("--data_dir=", data_dir)};
  options.name = std::move(name);
  return options;
}

absl::StatusOr<std::unique_ptr<testing::TaskdProcess>> BenchEnv::Spawn(
    testing::TaskdProcess::Options options) {
  options.start_limit = kStartLimit;
  options.exit_limit = kExitLimit;
  return testing::TaskdProcess::Start(std::move(options));
}

absl::StatusOr<BenchEnv::Server> BenchEnv::StartTaskd(
    absl::string_view mode, std::vector<std::string> extra_flags) {
  Server server;
  server.data_dir = NewDataDir();
  testing::TaskdProcess::Options options =
      TaskdOptions(mode, server.data_dir, absl::StrCat("taskd-", mode));
  options.flags.insert(options.flags.end(), extra_flags.begin(),
                       extra_flags.end());
  absl::StatusOr<std::unique_ptr<testing::TaskdProcess>> process =
      Spawn(std::move(options));
  if (!process.ok()) return process.status();
  server.process = *std::move(process);
  return server;
}

absl::Status BenchEnv::RestartTaskd(absl::string_view mode, Server& server) {
  server.process.reset();
  absl::StatusOr<std::unique_ptr<testing::TaskdProcess>> process =
      Spawn(TaskdOptions(mode, server.data_dir,
                         absl::StrCat("taskd-", mode, "-restarted")));
  if (!process.ok()) return process.status();
  server.process = *std::move(process);
  return absl::OkStatus();
}

absl::StatusOr<BenchEnv::Server> BenchEnv::StartEcho() {
  testing::TaskdProcess::Options options;
  options.binary = config_.echo_bin;
  options.flags = {"--listen=127.0.0.1:0"};
  options.name = "echo_server";
  absl::StatusOr<std::unique_ptr<testing::TaskdProcess>> process =
      Spawn(std::move(options));
  if (!process.ok()) return process.status();
  Server server;
  server.process = *std::move(process);
  return server;
}

}  // namespace taskd::bench
