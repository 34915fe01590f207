// echo_server: the null-RPC baseline of taskd_bench. It serves the Echo
// service of echo.proto with the asynchronous API from ONE completion-queue
// thread and does no work of its own, so what a call costs it is what gRPC
// costs: taskd_bench runs it as a separate process, like taskd, and reads
// its CPU time and RSS from /proc the same way.
//
//   echo_server --listen=127.0.0.1:0
//
// Logs `echo_server: serving on ADDR (port N)` to stderr (the line
// tests/taskd_process.h waits for) and serves until SIGTERM or SIGINT.
//
// Every call handler lives on the one CQ thread: it is created there (or in
// main() before the thread starts), its events arrive there, and it deletes
// itself there once no operation of its call is pending. The one thing the
// main thread shares with it is the shutdown flag: gRPC forbids starting an
// operation once the queue is shut down, so each operation starts under the
// flag's mutex, and only while the flag is clear.
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/completion_queue.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>
#include <grpcpp/support/async_unary_call.h>
#include <grpcpp/support/status.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/bench/echo.grpc.pb.h"
#include "tests/bench/echo.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "address to serve on");

namespace taskd::bench {
namespace {

// Larger replies are cut to this, below a client's default 4 MiB limit.
constexpr uint32_t kMaxReplyBytes = (4 << 20) - (64 << 10);
// How long Shutdown() lets calls in flight finish before cancelling them.
constexpr absl::Duration kShutdownGrace = absl::Seconds(1);

// What every handler needs.
struct ServerState {
  // Constant once the poller runs.
  Echo::AsyncService service;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;

  // Touched on the CQ thread only.
  int64_t idle_calls = 0;  // Idle calls started and not yet done

  // Set by the main thread before the server shuts down; see the file comment.
  absl::Mutex mu;
  bool shutting_down ABSL_GUARDED_BY(mu) = false;
};

// Runs `start_op` (which starts one gRPC operation) unless the server is
// shutting down; returns whether it ran.
template <typename StartOp>
bool StartUnlessShuttingDown(ServerState* state, StartOp start_op) {
  absl::MutexLock lock(&state->mu);
  if (state->shutting_down) return false;
  start_op();
  return true;
}

// A call handler. Each pending operation's tag is the address of one of the
// handler's Event members, which names the handler and the operation.
class Handler {
 public:
  enum class Op { kRequest, kFinish, kDone };
  struct Event {
    Handler* handler;
    Op op;
  };
  virtual ~Handler() = default;
  // Handles the completion of `op`. `ok` is false for a call that never
  // started or could not finish (shutdown, a client gone): normal, not a bug.
  virtual void OnEvent(Op op, bool ok) = 0;
};

// Echo.Call and Echo.Count: request, answer, done.
class CallHandler final : public Handler {
 public:
  enum class Method { kCall, kCount };

  // Asks gRPC for the next call of `method` (unless shutting down); the
  // handler owns itself.
  static void Arm(ServerState* state, Method method) {
    auto* handler = new CallHandler(state, method);
    if (!StartUnlessShuttingDown(state, [handler] { handler->Request(); })) {
      delete handler;
    }
  }

  void OnEvent(Op op, bool ok) override {
    if (op == Op::kFinish || !ok) {
      delete this;  // answered, or the call never started
      return;
    }
    Arm(state_, method_);  // the next call may arrive while this one runs
    EchoReply echo_reply;
    CountReply count_reply;
    if (method_ == Method::kCall) {
      echo_reply.mutable_body()->assign(
          std::min(request_.reply_bytes(), kMaxReplyBytes), 'x');
    } else {
      count_reply.set_idle_calls(state_->idle_calls);
    }
    const bool finishing = StartUnlessShuttingDown(state_, [&] {
      if (method_ == Method::kCall) {
        call_responder_.Finish(echo_reply, grpc::Status::OK, &finish_);
      } else {
        count_responder_.Finish(count_reply, grpc::Status::OK, &finish_);
      }
    });
    if (!finishing) delete this;  // shutdown cancels the call
  }

 private:
  CallHandler(ServerState* state, Method method)
      : state_(state),
        method_(method),
        call_responder_(&context_),
        count_responder_(&context_) {}

  void Request() {
    grpc::ServerCompletionQueue* cq = state_->cq.get();
    if (method_ == Method::kCall) {
      state_->service.RequestCall(&context_, &request_, &call_responder_, cq,
                                  cq, &request_event_);
    } else {
      state_->service.RequestCount(&context_, &count_request_,
                                   &count_responder_, cq, cq, &request_event_);
    }
  }

  ServerState* const state_;
  const Method method_;
  grpc::ServerContext context_;
  EchoRequest request_;
  CountRequest count_request_;
  grpc::ServerAsyncResponseWriter<EchoReply> call_responder_;
  grpc::ServerAsyncResponseWriter<CountReply> count_responder_;
  Event request_event_{this, Op::kRequest};
  Event finish_{this, Op::kFinish};
};

// Echo.Idle: a started call is only counted and held. Its one pending event
// is then the done notification (the client cancelled, or shutdown did).
class IdleHandler final : public Handler {
 public:
  static void Arm(ServerState* state) {
    auto* handler = new IdleHandler(state);
    if (!StartUnlessShuttingDown(state, [handler] { handler->Request(); })) {
      delete handler;
    }
  }

  void OnEvent(Op op, bool ok) override {
    if (op == Op::kRequest) {
      // gRPC returns the done tag only for a call that started, so a failed
      // request leaves nothing pending.
      if (!ok) {
        delete this;
        return;
      }
      Arm(state_);
      ++state_->idle_calls;
      started_ = true;
      return;
    }
    // kDone: nothing else of this call is pending.
    if (started_) --state_->idle_calls;
    delete this;
  }

 private:
  explicit IdleHandler(ServerState* state)
      : state_(state), writer_(&context_) {}

  void Request() {
    context_.AsyncNotifyWhenDone(&done_);
    grpc::ServerCompletionQueue* cq = state_->cq.get();
    state_->service.RequestIdle(&context_, &request_, &writer_, cq, cq,
                                &request_event_);
  }

  ServerState* const state_;
  grpc::ServerContext context_;
  EchoRequest request_;
  grpc::ServerAsyncWriter<EchoReply> writer_;
  bool started_ = false;
  Event request_event_{this, Op::kRequest};
  Event done_{this, Op::kDone};
};

// Runs the queue until it is shut down and drained.
void Poll(grpc::ServerCompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) {
    auto* event = static_cast<Handler::Event*>(tag);
    event->handler->OnEvent(event->op, ok);
  }
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "echo_server: the null gRPC service of taskd_bench (one CQ thread)");
  absl::ParseCommandLine(argc, argv);

  // Signals are taken by sigwait below; every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServerState state;
  const std::string listen = absl::GetFlag(FLAGS_listen);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&state.service);
  state.cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "echo_server: cannot serve on %s\n", listen.c_str());
    return 1;
  }
  CallHandler::Arm(&state, CallHandler::Method::kCall);
  CallHandler::Arm(&state, CallHandler::Method::kCount);
  IdleHandler::Arm(&state);
  std::thread poller([&state] { Poll(state.cq.get()); });
  std::fprintf(stderr, "echo_server: serving on %s (port %d)\n", listen.c_str(),
               port);

  int sig = 0;
  sigwait(&signals, &sig);
  {
    absl::MutexLock lock(&state.mu);
    state.shutting_down = true;
  }
  // The poller keeps running while Shutdown() cancels what is left, so every
  // handler sees its events; then the queue drains and the poller returns.
  server->Shutdown(absl::ToChronoTime(absl::Now() + kShutdownGrace));
  state.cq->Shutdown();
  poller.join();
  std::fprintf(stderr, "echo_server: stopped\n");
  return 0;
}

}  // namespace
}  // namespace taskd::bench

int main(int argc, char** argv) { return taskd::bench::Main(argc, argv); }
