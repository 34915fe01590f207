// Hand-offs through a gRPC completion queue, for tsan_selftest:
//
//   grpc_handoffs <alarm|call>
//
// A thread polling the queue starts first; then this thread writes a plain
// int and starts an operation whose tag the poller receives, and the poller
// reads the int. Only the queue orders the two accesses: under the tsan
// build TSan must report nothing; with TASKD_TSAN_ANNOTATE=0 it must
// report the race. Exits 0 when the poller saw the value.
#include <grpcpp/alarm.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>

namespace {

constexpr int kValue = 42;

// Polls `cq` for one tag and returns what it read of `value` then (and
// runs `then`, to read what gRPC wrote for the operation). With
// `after` it polls only once `after` is set: a relaxed flag, which orders
// nothing for TSan, but makes sure the tag is queued before the poller asks
// for it, so gRPC has no sleeping poller to wake (through an eventfd, which
// TSan would take for an order of its own).
class Poller {
 public:
  Poller(grpc::CompletionQueue* cq, const int* value,
         const std::atomic<bool>* after = nullptr,
         std::function<void()> then = nullptr)
      : thread_([this, cq, value, after, then = std::move(then)] {
          if (after != nullptr) {
            while (!after->load(std::memory_order_relaxed)) {
              std::this_thread::yield();
            }
          }
          void* tag = nullptr;
          bool ok = false;
          if (cq->Next(&tag, &ok)) {
            seen_ = *value;
            if (then) then();
          }
        }) {}
  int Join() {
    thread_.join();
    return seen_;
  }

 private:
  int seen_ = -1;
  std::thread thread_;
};

void Drain(grpc::CompletionQueue* cq) {
  cq->Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
  }
}

// grpc::Alarm: its start (begin_op in libgrpc++) orders the write. An
// alarm already due fires inside Set, on this thread.
bool AlarmHandOff() {
  grpc::CompletionQueue cq;
  int value = 0;
  std::atomic<bool> set{false};
  Poller poller(&cq, &value, &set);
  value = kValue;
  grpc::Alarm alarm;
  alarm.Set(&cq, std::chrono::system_clock::now(), &alarm);
  set.store(true, std::memory_order_relaxed);
  const int seen = poller.Join();
  Drain(&cq);
  return seen == kValue;
}

// A call batch (grpc_call_start_batch): a unary call to a socket nobody
// listens on fails at once with UNAVAILABLE, its Finish tag on the queue.
// The poller also reads the status gRPC filled in (on whichever thread
// failed the call, this one included) before it completed the batch.
bool CallHandOff() {
  grpc::CompletionQueue cq;
  int value = 0;
  grpc::Status status;
  std::string message;
  Poller poller(&cq, &value, nullptr,
                [&status, &message] { message = status.error_message(); });
  auto channel = grpc::CreateChannel("unix:/nonexistent/taskd-tsan-selftest",
                                     grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, "/taskd.tsan.SelfTest/Call", request,
                            &cq);
  value = kValue;  // before the batches whose tags reach the poller
  call->StartCall();
  call->Finish(&response, &status, &status);
  const int seen = poller.Join();
  Drain(&cq);
  if (status.ok() || message.empty()) {
    std::fprintf(stderr, "call: unexpectedly succeeded or without a message\n");
    return false;
  }
  return seen == kValue;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    std::printf("alarm\ncall\n");
    return 0;
  }
  bool ok;
  if (argc == 2 && std::strcmp(argv[1], "alarm") == 0) {
    ok = AlarmHandOff();
  } else if (argc == 2 && std::strcmp(argv[1], "call") == 0) {
    ok = CallHandOff();
  } else {
    std::fprintf(stderr, "usage: %s --list | alarm | call\n", argv[0]);
    return 2;
  }
  if (ok) return 0;
  std::fprintf(stderr, "%s: the poller saw a wrong value\n", argv[1]);
  return 1;
}
