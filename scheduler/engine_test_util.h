// Test doubles and helpers shared by the engine tests.
//
//   FakeClock clock;
//   Engine engine(TestOptions(), &clock);
//   RecordingSink sink;
//   auto worker = ConnectWorker(engine, &sink);
//   auto task = engine.Submit(MakeSpec("resize"));
//   std::optional<v1::Assignment> a = sink.LastAssignment();
//
// RecordingSink and AwaitRecorder are thread-safe.
#ifndef TASKD_SCHEDULER_ENGINE_TEST_UTIL_H_
#define TASKD_SCHEDULER_ENGINE_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "scheduler/engine.h"
#include "scheduler/worker_session.h"

namespace taskd {
namespace testing {

// A WorkerSink that keeps every message it was sent.
class RecordingSink final : public WorkerSink {
 public:
  void Send(v1::WorkResponse message) override {
    absl::MutexLock lock(&mu_);
    messages_.push_back(std::move(message));
  }

  std::vector<v1::WorkResponse> Messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }
  std::vector<v1::Assignment> Assignments() const {
    absl::MutexLock lock(&mu_);
    std::vector<v1::Assignment> out;
    for (const auto& m : messages_) {
      if (m.has_assignment()) out.push_back(m.assignment());
    }
    return out;
  }
  std::vector<v1::CancelNotice> Cancels() const {
    absl::MutexLock lock(&mu_);
    std::vector<v1::CancelNotice> out;
    for (const auto& m : messages_) {
      if (m.has_cancel()) out.push_back(m.cancel());
    }
    return out;
  }
  std::optional<v1::Assignment> LastAssignment() const {
    absl::MutexLock lock(&mu_);
    for (auto it = messages_.rbegin(); it != messages_.rend(); ++it) {
      if (it->has_assignment()) return it->assignment();
    }
    return std::nullopt;
  }
  // The newest assignment of `task_id`, if any.
  std::optional<v1::Assignment> AssignmentFor(const std::string& task_id) const {
    absl::MutexLock lock(&mu_);
    for (auto it = messages_.rbegin(); it != messages_.rend(); ++it) {
      if (it->has_assignment() && it->assignment().task().id() == task_id) {
        return it->assignment();
      }
    }
    return std::nullopt;
  }
  size_t AssignmentCount() const { return Assignments().size(); }

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::WorkResponse> messages_ ABSL_GUARDED_BY(mu_);
};

// Collects Await callbacks.
class AwaitRecorder {
 public:
  Engine::AwaitCallback Callback() {
    return [this](absl::StatusOr<v1::AwaitResponse> r) {
      absl::MutexLock lock(&mu_);
      ++calls_;
      last_ = std::move(r);
    };
  }
  int calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // The last answer; call only when calls() > 0.
  absl::StatusOr<v1::AwaitResponse> last() const {
    absl::MutexLock lock(&mu_);
    if (!last_.has_value()) return absl::InternalError("no Await answer yet");
    return *last_;
  }

 private:
  mutable absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::StatusOr<v1::AwaitResponse>> last_ ABSL_GUARDED_BY(mu_);
};

inline EngineOptions TestOptions() {
  EngineOptions options;
  options.id_seed = 42;
  return options;
}

inline v1::TaskSpec MakeSpec(const std::string& type = "work",
                             const std::string& queue = "") {
  v1::TaskSpec spec;
  spec.set_type(type);
  if (!queue.empty()) spec.set_queue(queue);
  spec.set_payload("payload:" + type);
  return spec;
}

inline google::protobuf::Duration ProtoDuration(absl::Duration d) {
  return FromDuration(d);
}

inline std::shared_ptr<WorkerSession> ConnectWorker(
    Engine& engine, WorkerSink* sink, const std::string& worker_id = "w1",
    std::vector<std::string> queues = {}, std::vector<std::string> types = {},
    int concurrency = 10) {
  v1::Hello hello;
  hello.set_worker_id(worker_id);
  for (auto& q : queues) hello.add_queues(q);
  for (auto& t : types) hello.add_types(t);
  hello.set_concurrency(concurrency);
  auto session = engine.ConnectWorker(hello, sink);
  if (!session.ok()) return nullptr;
  return *std::move(session);
}

inline v1::Complete CompleteMsg(const v1::Assignment& a,
                                const std::string& result) {
  v1::Complete c;
  c.set_task_id(a.task().id());
  c.set_lease_id(a.lease_id());
  c.set_result(result);
  return c;
}

inline v1::Fail FailMsg(const v1::Assignment& a, const std::string& code,
                        const std::string& message, bool retryable) {
  v1::Fail f;
  f.set_task_id(a.task().id());
  f.set_lease_id(a.lease_id());
  f.mutable_error()->set_code(code);
  f.mutable_error()->set_message(message);
  f.mutable_error()->set_retryable(retryable);
  return f;
}

// Every retained event, oldest first.
inline std::vector<v1::TaskEvent> AllEvents(Engine& engine) {
  std::vector<v1::TaskEvent> out;
  absl::Status s = engine.events().Read(engine.events().first_retained(),
                                        SIZE_MAX, &out);
  if (!s.ok()) out.clear();
  return out;
}

// The retained events of one task, oldest first.
inline std::vector<v1::TaskEvent> EventsFor(Engine& engine,
                                            const std::string& id) {
  std::vector<v1::TaskEvent> out;
  for (auto& e : AllEvents(engine)) {
    if (e.task().id() == id) out.push_back(std::move(e));
  }
  return out;
}

inline std::vector<v1::EventType> EventTypesFor(Engine& engine,
                                                const std::string& id) {
  std::vector<v1::EventType> out;
  for (const auto& e : EventsFor(engine, id)) out.push_back(e.type());
  return out;
}

inline bool IsTerminalEvent(v1::EventType type) {
  return type == v1::EVENT_TYPE_SUCCEEDED || type == v1::EVENT_TYPE_FAILED ||
         type == v1::EVENT_TYPE_CANCELLED;
}

}  // namespace testing
}  // namespace taskd

#endif  // TASKD_SCHEDULER_ENGINE_TEST_UTIL_H_
