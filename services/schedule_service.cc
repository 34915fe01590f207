#include "services/schedule_service.h"

#include <functional>
#include <utility>

#include "absl/status/statusor.h"
#include "services/call.h"
#include "services/status_util.h"

namespace taskd {
namespace {

using Service = v1::ScheduleService::AsyncService;

// One unary RPC: requested on a CQ, answered through a callback that may run
// on another thread (the journal's, once a change is durable). The handler
// is deleted when its finish tag returns (or its request tag fails, e.g. at
// shutdown); Finish is started exactly once.
template <class Request, class Response>
class ScheduleCall final : public Call {
 public:
  using Responder = grpc::ServerAsyncResponseWriter<Response>;
  using RequestMethod = void (Service::*)(grpc::ServerContext*, Request*,
                                          Responder*, grpc::CompletionQueue*,
                                          grpc::ServerCompletionQueue*, void*);
  using Reply = std::function<void(absl::StatusOr<Response>)>;
  using Handler = std::function<void(ScheduleTable&, const Request&, Reply)>;

  struct Method {
    RequestMethod request;
    Handler handle;
  };

  static void Arm(const ScheduleServiceHandlers* handlers, const Method* method,
                  grpc::ServerCompletionQueue* cq) {
    new ScheduleCall(handlers, method, cq);
  }

  void OnEvent(int op, bool ok) override {
    if (op == kFinish || !ok) {
      delete this;
      return;
    }
    Arm(handlers_, method_, cq_);  // the successor, before serving this one
    method_->handle(*handlers_->table(), request_,
                    [this](absl::StatusOr<Response> result) {
                      if (result.ok()) {
                        responder_.Finish(*result, grpc::Status::OK,
                                          &finish_tag_);
                      } else {
                        responder_.FinishWithError(
                            ToGrpcStatus(result.status()), &finish_tag_);
                      }
                    });
  }

 private:
  enum Op { kRequest, kFinish };

  ScheduleCall(const ScheduleServiceHandlers* handlers, const Method* method,
               grpc::ServerCompletionQueue* cq)
      : handlers_(handlers), method_(method), cq_(cq), responder_(&ctx_) {
    (handlers_->service()->*method_->request)(&ctx_, &request_, &responder_,
                                              cq_, cq_, &request_tag_);
  }

  const ScheduleServiceHandlers* const handlers_;
  const Method* const method_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  Request request_;
  Responder responder_;
  Tag request_tag_{this, kRequest};
  Tag finish_tag_{this, kFinish};
};

using CreateCall = ScheduleCall<v1::CreateScheduleRequest, v1::Schedule>;
using GetCall = ScheduleCall<v1::GetScheduleRequest, v1::Schedule>;
using ListCall =
    ScheduleCall<v1::ListSchedulesRequest, v1::ListSchedulesResponse>;
using DeleteCall =
    ScheduleCall<v1::DeleteScheduleRequest, v1::DeleteScheduleResponse>;
using PauseCall = ScheduleCall<v1::PauseScheduleRequest, v1::Schedule>;
using ResumeCall = ScheduleCall<v1::ResumeScheduleRequest, v1::Schedule>;

const CreateCall::Method kCreate{
    &Service::RequestCreateSchedule,
    [](ScheduleTable& table, const v1::CreateScheduleRequest& request,
       CreateCall::Reply reply) {
      if (!request.has_schedule()) {
        return reply(absl::InvalidArgumentError("schedule: required"));
      }
      table.CreateAsync(request.schedule(), std::move(reply));
    }};

const GetCall::Method kGet{
    &Service::RequestGetSchedule,
    [](ScheduleTable& table, const v1::GetScheduleRequest& request,
       GetCall::Reply reply) { reply(table.Get(request.id())); }};

const ListCall::Method kList{
    &Service::RequestListSchedules,
    [](ScheduleTable& table, const v1::ListSchedulesRequest& request,
       ListCall::Reply reply) { reply(table.List(request)); }};

const DeleteCall::Method kDelete{
    &Service::RequestDeleteSchedule,
    [](ScheduleTable& table, const v1::DeleteScheduleRequest& request,
       DeleteCall::Reply reply) {
      table.DeleteAsync(request.id(),
                        [reply = std::move(reply)](absl::Status s) {
                          if (!s.ok()) return reply(s);
                          reply(v1::DeleteScheduleResponse());
                        });
    }};

const PauseCall::Method kPause{
    &Service::RequestPauseSchedule,
    [](ScheduleTable& table, const v1::PauseScheduleRequest& request,
       PauseCall::Reply reply) {
      table.PauseAsync(request.id(), std::move(reply));
    }};

const ResumeCall::Method kResume{
    &Service::RequestResumeSchedule,
    [](ScheduleTable& table, const v1::ResumeScheduleRequest& request,
       ResumeCall::Reply reply) {
      table.ResumeAsync(request.id(), std::move(reply));
    }};

}  // namespace

void ScheduleServiceHandlers::Arm(grpc::ServerCompletionQueue* cq) const {
  CreateCall::Arm(this, &kCreate, cq);
  GetCall::Arm(this, &kGet, cq);
  ListCall::Arm(this, &kList, cq);
  DeleteCall::Arm(this, &kDelete, cq);
  PauseCall::Arm(this, &kPause, cq);
  ResumeCall::Arm(this, &kResume, cq);
}

}  // namespace taskd
