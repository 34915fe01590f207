// UnaryCall: the handler of one unary RPC on the completion-queue API, for
// any generated AsyncService and any backend (the Engine, the
// ScheduleTable, ...).
//
//   using GetCall = UnaryCall<Svc, Engine, Req, Resp>;
//   const GetCall::Method kGet{
//       "Get", &Svc::RequestGet,
//       [](Engine& engine, const Req& req, GetCall::Reply reply) {
//         reply(engine.Get(req.id()));   // now, or later from a callback
//       }};
//   GetCall::Arm(sites.For("pkg.Svc", kGet.name), &engine, &service, &kGet,
//                cq);
//
// The handler answers through `reply`, at once for reads or later from the
// engine's callback (after a write is durable), so no CQ thread waits for a
// disk. Each call posts its successor when it arrives; it is deleted when
// its finish tag returns. `reply` must be called exactly once. The handler
// counts its call in its site's metrics (call.h).
//
// Queue scopes (auth/caller.h): for a caller whose token is limited to some
// queues, the Method's `scope` check runs first and its error is the answer;
// a Method without one refuses such callers (PERMISSION_DENIED), so a new
// RPC is closed to scoped tokens until it says which queue it touches.
#ifndef TASKD_SERVICES_UNARY_CALL_H_
#define TASKD_SERVICES_UNARY_CALL_H_

#include <grpcpp/grpcpp.h>

#include <functional>

#include "absl/status/statusor.h"
#include "services/auth/caller.h"
#include "services/call.h"
#include "services/status_util.h"

namespace taskd {

template <class Service, class Backend, class Request, class Response>
class UnaryCall final : public Call {
 public:
  using Responder = grpc::ServerAsyncResponseWriter<Response>;
  using RequestMethod = void (Service::*)(grpc::ServerContext*, Request*,
                                          Responder*, grpc::CompletionQueue*,
                                          grpc::ServerCompletionQueue*, void*);
  using Reply = std::function<void(absl::StatusOr<Response>)>;
  using Handler = std::function<void(Backend&, const Request&, Reply)>;
  using ScopeCheck = std::function<absl::Status(Backend&, const Request&,
                                                const auth::Caller&)>;

  struct Method {
    const char* name;  // the RPC's name in its service, e.g. "GetTask"
    RequestMethod request;
    Handler handle;
    ScopeCheck scope = nullptr;  // see above
  };

  static void Arm(const CallSite& site, Backend* backend, Service* service,
                  const Method* method, grpc::ServerCompletionQueue* cq) {
    new UnaryCall(site, backend, service, method, cq);
  }

  void OnEvent(int op, bool ok) override {
    if (op == kFinish || !ok) {
      delete this;  // finished, or never started (no done tag is pending)
      return;
    }
    Arm(site_, backend_, service_, method_, cq_);
    meter_.Start(site_.cells);
    meter_.Received();  // the request
    auto reply = [this](absl::StatusOr<Response> r) {
      if (r.ok()) {
        meter_.Sent();
        meter_.Handled(grpc::StatusCode::OK);
        responder_.Finish(*r, grpc::Status::OK, &finish_tag_);
      } else {
        grpc::Status status = ToGrpcStatus(r.status());
        meter_.Handled(status.error_code());
        responder_.FinishWithError(status, &finish_tag_);
      }
    };
    if (auth::Caller caller = auth::Caller::FromContext(ctx_);
        caller.scoped()) {
      absl::Status allowed =
          method_->scope ? method_->scope(*backend_, request_, caller)
                         : caller.CheckUnscoped("this call");
      if (!allowed.ok()) return reply(allowed);
    }
    method_->handle(*backend_, request_, std::move(reply));
  }

 private:
  enum Op { kRequest, kFinish };

  UnaryCall(const CallSite& site, Backend* backend, Service* service,
            const Method* method, grpc::ServerCompletionQueue* cq)
      : Call(site),
        backend_(backend),
        service_(service),
        method_(method),
        cq_(cq),
        responder_(&ctx_) {
    (service_->*method_->request)(&ctx_, &request_, &responder_, cq_, cq_,
                                  &request_tag_);
  }

  Backend* const backend_;
  Service* const service_;
  const Method* const method_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  Request request_;
  Responder responder_;
  Tag request_tag_{this, kRequest};
  Tag finish_tag_{this, kFinish};
};

}  // namespace taskd

#endif  // TASKD_SERVICES_UNARY_CALL_H_
