#include "tests/crash_verify.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "clients/cpp/task_context.h"
#include "clients/cpp/worker.h"

namespace taskd::crash_test {
namespace {

constexpr char kMarkerQueue[] = "crash-marker";

// Limits of the checks.
constexpr absl::Duration kCompletionLimit = absl::Seconds(90);
constexpr int kMaxListPages = 200;
constexpr int kMaxStreamResumes = 20;
constexpr int kAwaitChunk = 1000;

// Terminal events per task id of kQueue, read from a Stream of everything.
// WaitLive() returns once the stream is known to deliver events (a marker
// task's event came through), so no later event is missed. The stream ends
// by itself once every expected id had a terminal event. Thread-safe.
class TerminalEventCounter {
 public:
  TerminalEventCounter(const std::string& target,
                       absl::flat_hash_set<std::string> expected,
                       absl::Time deadline)
      : client_(NewClient(target)),
        stub_(v1::TaskService::NewStub(
            grpc::CreateChannel(target, grpc::InsecureChannelCredentials()))),
        expected_(std::move(expected)),
        deadline_(deadline) {
    thread_ = std::thread([this] { Run(); });
  }
  ~TerminalEventCounter() {
    Finish(absl::ZeroDuration()).IgnoreError();
    thread_.join();
  }

  // Submits marker tasks (another queue) until one's event arrives.
  absl::Status WaitLive() {
    CallOptions options;
    options.timeout = kCallTimeout;
    for (int i = 0; i < 20 && !finished_.HasBeenNotified(); ++i) {
      v1::TaskSpec marker;
      marker.set_queue(kMarkerQueue);
      marker.set_type("marker");
      absl::StatusOr<v1::SubmitTaskResponse> r =
          client_.Submit(marker, options);
      if (!r.ok()) return r.status();
      if (live_.WaitForNotificationWithTimeout(absl::Milliseconds(500))) {
        return absl::OkStatus();
      }
    }
    return absl::DeadlineExceededError(
        absl::StrCat("event stream not live: ", StreamStatus().ToString()));
  }

  // Waits at most `grace` for the stream to end by itself, then cancels it.
  // Returns why it ended, OK when every expected id had a terminal event.
  absl::Status Finish(absl::Duration grace) {
    if (!finished_.WaitForNotificationWithTimeout(grace)) {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    finished_.WaitForNotification();  // bounded by the cancel or the deadline
    return StreamStatus();
  }

  // Number of terminal events seen for `id`.
  int TerminalEvents(const std::string& id) {
    absl::MutexLock lock(&mu_);
    auto it = terminal_events_.find(id);
    return it == terminal_events_.end() ? 0 : it->second;
  }

 private:
  void Run() {
    uint64_t next_sequence = 0;  // 0: from now on
    grpc::Status status;
    for (int resume = 0; resume <= kMaxStreamResumes; ++resume) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(deadline_));
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) break;
        context_ = &context;
      }
      v1::StreamRequest request;
      request.set_from_sequence(next_sequence);
      std::unique_ptr<grpc::ClientReader<v1::TaskEvent>> reader =
          stub_->Stream(&context, request);
      v1::TaskEvent event;
      bool all_seen = false;
      while (!all_seen && reader->Read(&event)) {
        next_sequence = event.sequence() + 1;
        all_seen = OnEvent(event);
      }
      if (all_seen) {
        context.TryCancel();
        while (reader->Read(&event)) {
        }
      }
      status = reader->Finish();
      {
        absl::MutexLock lock(&mu_);
        context_ = nullptr;
      }
      if (all_seen) {
        status = grpc::Status::OK;
        break;
      }
      // A slow consumer is cut off with RESOURCE_EXHAUSTED and may resume.
      if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED ||
          next_sequence == 0) {
        break;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      if (seen_terminal_ < static_cast<int>(expected_.size())) {
        stream_status_ = absl::Status(
            status.ok() ? absl::StatusCode::kAborted
                        : static_cast<absl::StatusCode>(status.error_code()),
            absl::StrCat("event stream ended (", status.error_message(),
                         ") after terminal events for ", seen_terminal_, " of ",
                         expected_.size(), " tasks"));
      }
    }
    finished_.Notify();
  }

  // True once every expected id had a terminal event.
  bool OnEvent(const v1::TaskEvent& event) {
    if (event.task().spec().queue() == kMarkerQueue) {
      if (!live_.HasBeenNotified()) live_.Notify();
      return false;
    }
    if (event.task().spec().queue() != kQueue) return false;
    const bool terminal = event.type() == v1::EVENT_TYPE_SUCCEEDED ||
                          event.type() == v1::EVENT_TYPE_FAILED ||
                          event.type() == v1::EVENT_TYPE_CANCELLED;
    if (!terminal) return false;
    absl::MutexLock lock(&mu_);
    if (++terminal_events_[event.task().id()] == 1 &&
        expected_.contains(event.task().id())) {
      ++seen_terminal_;
    }
    return seen_terminal_ >= static_cast<int>(expected_.size());
  }

  absl::Status StreamStatus() {
    absl::MutexLock lock(&mu_);
    return stream_status_;
  }

  // Constant after construction.
  const TaskClient client_;
  const std::unique_ptr<v1::TaskService::Stub> stub_;
  const absl::flat_hash_set<std::string> expected_;
  const absl::Time deadline_;

  absl::Notification live_;
  absl::Notification finished_;
  absl::Mutex mu_;
  // The stream's context while a call is open, for Finish() to cancel it.
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, int> terminal_events_ ABSL_GUARDED_BY(mu_);
  int seen_terminal_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status stream_status_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;  // last: started once everything above exists
};

}  // namespace

TaskClient NewClient(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return TaskClient(grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args));
}

bool Retryable(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::vector<v1::Task>> ListAll(const TaskClient& client,
                                              const std::string& queue) {
  std::vector<v1::Task> tasks;
  v1::ListTasksRequest request;
  request.set_queue(queue);
  request.set_page_size(1000);
  CallOptions options;
  options.timeout = absl::Seconds(30);
  for (int page = 0; page < kMaxListPages; ++page) {
    absl::StatusOr<v1::ListTasksResponse> response =
        client.List(request, options);
    if (!response.ok()) return response.status();
    for (v1::Task& t : *response->mutable_tasks())
      tasks.push_back(std::move(t));
    if (response->next_page_token().empty()) return tasks;
    if (response->next_page_token() == request.page_token()) {
      return absl::InternalError("ListTasks returned the same page token");
    }
    request.set_page_token(response->next_page_token());
  }
  return absl::DeadlineExceededError(
      absl::StrCat("ListTasks: more than ", kMaxListPages, " pages"));
}

absl::StatusOr<std::vector<std::string>> FindAcked(
    const TaskClient& client, const std::vector<std::string>& acked_ids) {
  std::vector<char> found(acked_ids.size(), 0);
  std::atomic<int> next{0};
  std::atomic<int> lost{0};
  absl::Mutex mu;
  absl::Status error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kClientThreads; ++t) {
    threads.emplace_back([&] {
      CallOptions options;
      options.timeout = kCallTimeout;
      for (int n;
           (n = next.fetch_add(1)) < static_cast<int>(acked_ids.size());) {
        absl::StatusOr<v1::Task> task;
        for (int attempt = 0; attempt < 5; ++attempt) {
          task = client.Get(acked_ids[n], options);
          if (task.ok() || !Retryable(task.status().code())) break;
        }
        if (task.ok() &&
            task->spec().idempotency_key() == absl::StrCat("key-", n)) {
          found[n] = 1;  // each thread writes distinct elements
        } else if (absl::IsNotFound(task.status())) {
          if (lost.fetch_add(1) < 10) {
            std::fprintf(stderr, "crash_test: lost key-%d id %s\n", n,
                         acked_ids[n].c_str());
          }
        } else {
          absl::MutexLock lock(&mu);
          if (error.ok()) {
            error = task.ok() ? absl::InternalError(absl::StrCat(
                                    "GetTask(", acked_ids[n], ") for key-", n,
                                    " returned ", task->ShortDebugString()))
                              : task.status();
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  absl::MutexLock lock(&mu);
  if (!error.ok()) return error;
  std::vector<std::string> existing;
  for (size_t n = 0; n < acked_ids.size(); ++n) {
    if (found[n]) existing.push_back(acked_ids[n]);
  }
  return existing;
}

int CountDuplicated(const std::vector<v1::Task>& listed,
                    const std::vector<std::string>& acked_ids,
                    int* unexpected) {
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_key;
  for (int n = 0; n < static_cast<int>(acked_ids.size()); ++n) {
    by_key[absl::StrCat("key-", n)].insert(acked_ids[n]);
  }
  *unexpected = 0;
  for (const v1::Task& t : listed) {
    auto it = by_key.find(t.spec().idempotency_key());
    if (it == by_key.end()) {
      ++*unexpected;
      continue;
    }
    it->second.insert(t.id());
  }
  int duplicated = 0;
  for (const auto& [key, ids] : by_key) {
    if (ids.size() > 1) {
      if (++duplicated <= 10) {
        std::fprintf(stderr, "crash_test: %s has tasks %s\n", key.c_str(),
                     absl::StrJoin(ids, ", ").c_str());
      }
    }
  }
  return duplicated;
}

absl::StatusOr<Completion> CompleteAll(const std::string& target,
                                       const TaskClient& client,
                                       const std::vector<std::string>& ids) {
  const absl::Time deadline = absl::Now() + kCompletionLimit;
  TerminalEventCounter events(
      target, absl::flat_hash_set<std::string>(ids.begin(), ids.end()),
      deadline);
  if (absl::Status s = events.WaitLive(); !s.ok()) return s;

  std::atomic<int> attempts{0};
  Worker::Options options;
  options.target = target;
  options.queues = {kQueue};
  options.concurrency = 32;
  options.worker_id = "crash-test-worker";
  Worker worker(options);
  absl::Status registered =
      worker.RegisterHandler(kType, [&](TaskContext& ctx) {
        attempts.fetch_add(1);
        return absl::StatusOr<std::string>(absl::StrCat("done ", ctx.id()));
      });
  if (!registered.ok()) return registered;
  if (absl::Status s = worker.Start(); !s.ok()) return s;

  // The state each task had when its Await answered.
  std::vector<v1::TaskState> states(ids.size(), v1::TASK_STATE_UNSPECIFIED);
  bool await_failed = false;
  for (size_t begin = 0; begin < ids.size(); begin += kAwaitChunk) {
    const size_t end = std::min(ids.size(), begin + kAwaitChunk);
    std::vector<std::string> chunk(ids.begin() + begin, ids.begin() + end);
    absl::StatusOr<v1::AwaitResponse> done = client.AwaitUntilDone(
        chunk, v1::AWAIT_MODE_ALL,
        std::max(deadline - absl::Now(), absl::Seconds(1)));
    if (!done.ok() || done->tasks_size() != static_cast<int>(chunk.size())) {
      const std::string why = done.ok()
                                  ? absl::StrCat(done->tasks_size(), " tasks")
                                  : done.status().ToString();
      std::fprintf(stderr, "crash_test: Await of ids %zu..%zu: %s\n", begin,
                   end - 1, why.c_str());
      await_failed = true;
      continue;
    }
    for (size_t i = 0; i < chunk.size(); ++i) {
      states[begin + i] = done->tasks(i).state();
    }
  }
  // Every terminal event precedes the Await answers; allow for delivery.
  const absl::Status stream_status =
      events.Finish(await_failed ? absl::ZeroDuration() : absl::Seconds(10));
  worker.Stop();
  if (!stream_status.ok()) {
    std::fprintf(stderr, "crash_test: %s\n", stream_status.ToString().c_str());
  }

  Completion out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int terminal_events = events.TerminalEvents(ids[i]);
    if (terminal_events != 1 && ++out.wrong_event_count <= 10) {
      std::fprintf(stderr, "crash_test: task %s had %d terminal events\n",
                   ids[i].c_str(), terminal_events);
    }
    switch (states[i]) {
      case v1::TASK_STATE_SUCCEEDED:
        ++out.succeeded;
        if (terminal_events == 1) ++out.completed;
        break;
      case v1::TASK_STATE_FAILED:
        ++out.failed;
        break;
      case v1::TASK_STATE_CANCELLED:
        ++out.cancelled;
        break;
      default:
        ++out.not_terminal;
    }
  }
  std::fprintf(stderr,
               "crash_test: worker ran %d attempts; succeeded=%d failed=%d "
               "cancelled=%d not_terminal=%d not_one_terminal_event=%d\n",
               attempts.load(), out.succeeded, out.failed, out.cancelled,
               out.not_terminal, out.wrong_event_count);
  return out;
}

}  // namespace taskd::crash_test
