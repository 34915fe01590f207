// Hand-offs through a gRPC completion queue, for tsan_selftest:
//
//   grpc_handoffs <alarm|call|inprocess>
//
// A thread polling the queue starts first; then this thread writes a plain
// int and starts an operation whose tag the poller receives, and the poller
// reads the int. Only the queue orders the two accesses: under the tsan
// build TSan must report nothing; with TASKD_TSAN_ANNOTATE=0 it must
// report the race. Exits 0 when the poller saw the value.
#include <grpc/slice.h>
#include <grpcpp/alarm.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
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
#include <vector>

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

// The in-process transport: the client serialises a message into a slice
// (here: writes its bytes itself, as generated protobuf code does), and the
// server's polling thread reads the same memory when it parses the request.
// Only the slice annotations order the two (gRPC moves the slice through a
// lock-free call combiner).
bool InProcessMessage() {
  grpc::AsyncGenericService service;
  grpc::ServerBuilder builder;
  builder.RegisterAsyncGenericService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> server_cq =
      builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  grpc::GenericServerContext server_context;
  grpc::GenericServerAsyncReaderWriter stream(&server_context);
  service.RequestCall(&server_context, &stream, server_cq.get(),
                      server_cq.get(), &server_context);
  int seen = -1;
  std::thread serving([&] {
    void* tag = nullptr;
    bool ok = false;
    if (!server_cq->Next(&tag, &ok) || !ok) return;  // the call arrived
    grpc::ByteBuffer request;
    stream.Read(&request, &request);
    if (!server_cq->Next(&tag, &ok) || !ok) return;
    std::vector<grpc::Slice> slices;
    if (!request.Dump(&slices).ok() || slices.empty()) return;
    seen = slices[0].begin()[slices[0].size() - 1];  // written by the client
    stream.Finish(grpc::Status::OK, &stream);
    server_cq->Next(&tag, &ok);
  });

  constexpr size_t kSize = 4096;  // far beyond an inlined slice
  grpc_slice raw = grpc_slice_malloc(kSize);
  std::memset(GRPC_SLICE_START_PTR(raw), 0, kSize);
  GRPC_SLICE_START_PTR(raw)[kSize - 1] = kValue;
  grpc::Slice slice(raw, grpc::Slice::STEAL_REF);
  grpc::ByteBuffer request(&slice, 1);

  grpc::CompletionQueue client_cq;
  grpc::GenericStub stub(server->InProcessChannel(grpc::ChannelArguments()));
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> call =
      stub.PrepareUnaryCall(&context, "/taskd.tsan.SelfTest/InProcess",
                            request, &client_cq);
  call->StartCall();
  call->Finish(&response, &status, &status);
  void* tag = nullptr;
  bool ok = false;
  client_cq.Next(&tag, &ok);
  serving.join();
  server->Shutdown();
  server_cq->Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (server_cq->Next(&ignored_tag, &ignored_ok)) {
  }
  Drain(&client_cq);
  return status.ok() && seen == kValue;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    std::printf("alarm\ncall\ninprocess\n");
    return 0;
  }
  bool ok;
  if (argc == 2 && std::strcmp(argv[1], "alarm") == 0) {
    ok = AlarmHandOff();
  } else if (argc == 2 && std::strcmp(argv[1], "call") == 0) {
    ok = CallHandOff();
  } else if (argc == 2 && std::strcmp(argv[1], "inprocess") == 0) {
    ok = InProcessMessage();
  } else {
    std::fprintf(stderr, "usage: %s --list | alarm | call | inprocess\n",
                 argv[0]);
    return 2;
  }
  if (ok) return 0;
  std::fprintf(stderr, "%s: the poller saw a wrong value\n", argv[1]);
  return 1;
}
