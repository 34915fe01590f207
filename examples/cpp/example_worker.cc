#include "examples/cpp/example_worker.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "clients/cpp/task_context.h"

namespace taskd::examples {

absl::StatusOr<std::unique_ptr<Worker>> StartExampleWorker(
    const std::string& target) {
  Worker::Options options;
  options.target = target;
  options.queues = {kQueue};
  options.concurrency = 4;
  auto worker = std::make_unique<Worker>(options);
  absl::Status status = worker->RegisterHandler(
      "square", [](TaskContext& ctx) -> absl::StatusOr<std::string> {
        long long n = 0;
        if (!absl::SimpleAtoi(ctx.payload(), &n)) {
          return absl::InvalidArgumentError("payload: not a number");
        }
        return std::to_string(n * n);
      });
  if (status.ok()) {
    status = worker->RegisterHandler(
        "upper", [](TaskContext& ctx) -> absl::StatusOr<std::string> {
          std::string text = ctx.payload();
          for (char& c : text) c = std::toupper(static_cast<unsigned char>(c));
          return text;
        });
  }
  if (status.ok()) {
    status = worker->RegisterHandler(
        "reverse", [](TaskContext& ctx) -> absl::StatusOr<std::string> {
          std::string text = ctx.payload();
          std::reverse(text.begin(), text.end());
          return text;
        });
  }
  if (status.ok()) status = worker->Start();
  if (!status.ok()) return status;
  return worker;
}

std::string TargetFromArgs(int argc, char** argv) {
  if (argc > 1) return argv[1];
  if (const char* env = std::getenv("TASKD_TARGET")) return env;
  return "127.0.0.1:50051";
}

}  // namespace taskd::examples
