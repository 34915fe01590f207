#include "tests/bench/bench_worker.h"

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/cpp/task_context.h"
#include "tests/bench/bench_env.h"

namespace taskd::bench {

void TaskCounter::Record(const std::string& id) {
  absl::MutexLock lock(&mu_);
  ++count_;
  recent_.push_back(id);
  if (recent_.size() > kRecent) recent_.pop_front();
}

int64_t TaskCounter::WaitFor(int64_t n, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]()
                     ABSL_SHARED_LOCKS_REQUIRED(mu_) { return count_ >= n; };
  mu_.AwaitWithDeadline(absl::Condition(&reached), deadline);
  return count_;
}

int64_t TaskCounter::count() const {
  absl::MutexLock lock(&mu_);
  return count_;
}

std::vector<std::string> TaskCounter::Recent() const {
  absl::MutexLock lock(&mu_);
  return std::vector<std::string>(recent_.begin(), recent_.end());
}

absl::StatusOr<std::unique_ptr<Worker>> StartNoopWorker(
    const std::string& target, int concurrency, TaskCounter* counter) {
  Worker::Options options;
  options.target = target;
  options.queues = {kQueue};
  options.concurrency = concurrency;
  options.worker_id = "taskd-bench";
  // The server goes away with SIGKILL after a run; don't wait long for it.
  options.shutdown_timeout = absl::Seconds(2);
  auto worker = std::make_unique<Worker>(options);
  absl::Status status = worker->RegisterHandler(
      kTaskType,
      [counter](TaskContext& context) -> absl::StatusOr<std::string> {
        counter->Record(context.id());
        return std::string();
      });
  if (status.ok()) status = worker->Start();
  if (!status.ok()) return status;
  if (!worker->WaitConnected(absl::Seconds(10))) {
    return absl::UnavailableError(
        absl::StrCat("worker not connected to ", target, " within 10s"));
  }
  return worker;
}

absl::Status AwaitSucceeded(v1::TaskService::Stub& stub,
                            const std::vector<std::string>& ids,
                            absl::Time deadline) {
  if (ids.empty()) return absl::OkStatus();
  v1::AwaitRequest request;
  for (const std::string& id : ids) request.add_ids(id);
  request.set_mode(v1::AWAIT_MODE_ALL);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  v1::AwaitResponse response;
  const grpc::Status status = stub.Await(&context, request, &response);
  if (!status.ok()) return CallError("Await", status);
  if (!response.done()) return absl::DeadlineExceededError("Await not done");
  for (const v1::Task& task : response.tasks()) {
    if (task.state() != v1::TASK_STATE_SUCCEEDED) {
      return absl::InternalError(absl::StrCat(
          "task ", task.id(), " is ", v1::TaskState_Name(task.state())));
    }
  }
  return absl::OkStatus();
}

}  // namespace taskd::bench
