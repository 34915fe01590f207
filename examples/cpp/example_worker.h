// The worker the C++ examples bring along, so that they run against a bare
// `make run`: queue "examples-cpp", task types "square" (decimal in, decimal
// out), "upper" and "reverse" (text). Built on the worker SDK (worker.h).
#ifndef TASKD_EXAMPLES_CPP_EXAMPLE_WORKER_H_
#define TASKD_EXAMPLES_CPP_EXAMPLE_WORKER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "clients/cpp/worker.h"

namespace taskd::examples {

inline constexpr char kQueue[] = "examples-cpp";

// A started worker serving kQueue on `target`; stop it by destroying it.
absl::StatusOr<std::unique_ptr<Worker>> StartExampleWorker(
    const std::string& target);

// The server address: argv[1], else $TASKD_TARGET, else 127.0.0.1:50051.
std::string TargetFromArgs(int argc, char** argv);

}  // namespace taskd::examples

#endif  // TASKD_EXAMPLES_CPP_EXAMPLE_WORKER_H_
