// A coroutine pipeline: each stage's result is the next stage's payload.
// `co_await` suspends the coroutine without holding a thread; it resumes on
// the client's completion-queue thread when the task is done. Three
// pipelines run at once and are gathered with WhenAll.
//
//   bazel run //examples/cpp:pipeline -- 127.0.0.1:50051
#include <cstdio>
#include <string>
#include <vector>

#include <grpcpp/create_channel.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cpp/async_client.h"
#include "clients/cpp/when.h"
#include "examples/cpp/example_worker.h"

using taskd::AsyncTaskClient;
using taskd::Future;
namespace v1 = taskd::v1;

v1::TaskSpec Stage(const std::string& type, const std::string& payload) {
  v1::TaskSpec spec;
  spec.set_queue(taskd::examples::kQueue);
  spec.set_type(type);
  spec.set_payload(payload);
  return spec;
}

// A Future<T> function may co_await: it runs until its first suspension and
// its future resolves with what it co_returns.
Future<std::string> UpperThenReverse(AsyncTaskClient& client, std::string text) {
  absl::StatusOr<v1::Task> upper = co_await client.SubmitAndAwait(Stage("upper", text));
  if (!upper.ok()) co_return upper.status();
  if (upper->state() != v1::TASK_STATE_SUCCEEDED) {
    co_return absl::AbortedError(absl::StrCat("upper: ", upper->error().message()));
  }
  absl::StatusOr<v1::Task> reversed =
      co_await client.SubmitAndAwait(Stage("reverse", upper->result()));
  if (!reversed.ok()) co_return reversed.status();
  co_return reversed->result();
}

int main(int argc, char** argv) {
  const std::string target = taskd::examples::TargetFromArgs(argc, argv);
  auto worker = taskd::examples::StartExampleWorker(target);
  if (!worker.ok()) {
    std::fprintf(stderr, "worker: %s\n", worker.status().ToString().c_str());
    return 1;
  }
  AsyncTaskClient client(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));

  std::vector<Future<std::string>> pipelines;
  for (const char* word : {"taskd", "async", "c++20"}) {
    pipelines.push_back(UpperThenReverse(client, word));
  }
  auto results = taskd::WhenAll(pipelines).Get(absl::Seconds(30));
  if (!results.ok()) return 1;
  for (const absl::StatusOr<std::string>& result : *results) {
    if (!result.ok()) {
      std::fprintf(stderr, "pipeline: %s\n", result.status().ToString().c_str());
      return 1;
    }
    std::printf("%s\n", result->c_str());
  }
  return 0;
}
