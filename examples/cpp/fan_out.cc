// Fan-out / fan-in: submit ten tasks at once and gather their results with
// WhenAll (asyncio.gather), then race two with WhenAny. One thread of the
// client serves every call and await; main() blocks only at the end.
//
//   bazel run //examples/cpp:fan_out -- 127.0.0.1:50051
#include <cstdio>
#include <string>
#include <vector>

#include <grpcpp/create_channel.h>

#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "clients/cpp/async_client.h"
#include "clients/cpp/when.h"
#include "examples/cpp/example_worker.h"

using taskd::AsyncTaskClient;
using taskd::Future;
using taskd::WhenAll;
using taskd::WhenAny;
namespace v1 = taskd::v1;

v1::TaskSpec Square(int n) {
  v1::TaskSpec spec;
  spec.set_queue(taskd::examples::kQueue);
  spec.set_type("square");
  spec.set_payload(std::to_string(n));
  return spec;
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

  // Fan out: ten submits in flight at once, each future resolving with the
  // finished task.
  std::vector<Future<v1::Task>> squares;
  for (int n = 1; n <= 10; ++n) squares.push_back(client.SubmitAndAwait(Square(n)));

  // Fan in: every outcome, in order; one failure does not hide the others.
  auto all = WhenAll(squares).Get(absl::Seconds(30));
  if (!all.ok()) {
    std::fprintf(stderr, "gather: %s\n", all.status().ToString().c_str());
    return 1;
  }
  long long sum = 0;
  for (const absl::StatusOr<v1::Task>& task : *all) {
    long long square = 0;
    if (!task.ok() || task->state() != v1::TASK_STATE_SUCCEEDED ||
        !absl::SimpleAtoi(task->result(), &square)) {
      std::fprintf(stderr, "a square failed\n");
      return 1;
    }
    sum += square;
  }
  std::printf("sum of squares 1..10 = %lld\n", sum);

  // The first of several to finish (asyncio.wait FIRST_COMPLETED).
  std::vector<Future<v1::Task>> race = {client.SubmitAndAwait(Square(11)),
                                        client.SubmitAndAwait(Square(12))};
  auto first = WhenAny(race).Get(absl::Seconds(30));
  if (!first.ok()) return 1;
  std::printf("first to finish: %s\n", race[*first].Get()->result().c_str());
  return 0;
}
