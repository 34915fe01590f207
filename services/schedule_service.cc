#include "services/schedule_service.h"

#include <functional>
#include <utility>

#include "absl/status/statusor.h"
#include "services/unary_call.h"

namespace taskd {
namespace {

using Service = v1::ScheduleService::AsyncService;

template <class Request, class Response>
using ScheduleCall = UnaryCall<Service, ScheduleTable, Request, Response>;

using CreateCall = ScheduleCall<v1::CreateScheduleRequest, v1::Schedule>;
using GetCall = ScheduleCall<v1::GetScheduleRequest, v1::Schedule>;
using ListCall =
    ScheduleCall<v1::ListSchedulesRequest, v1::ListSchedulesResponse>;
using DeleteCall =
    ScheduleCall<v1::DeleteScheduleRequest, v1::DeleteScheduleResponse>;
using PauseCall = ScheduleCall<v1::PauseScheduleRequest, v1::Schedule>;
using ResumeCall = ScheduleCall<v1::ResumeScheduleRequest, v1::Schedule>;

// A token scoped to some queues manages the schedules whose template
// submits into them (ListSchedules spans every queue: refused to such
// tokens, see unary_call.h). An unknown id is left to the handler.
template <class Request>
absl::Status ScheduleById(ScheduleTable& table, const Request& request,
                          const auth::Caller& caller) {
  absl::StatusOr<v1::Schedule> schedule = table.Get(request.id());
  if (!schedule.ok()) return absl::OkStatus();
  return caller.CheckQueue(schedule->template_().queue(),
                           "schedule.template.queue");
}

const CreateCall::Method kCreate{
    "CreateSchedule", &Service::RequestCreateSchedule,
    [](ScheduleTable& table, const v1::CreateScheduleRequest& request,
       CreateCall::Reply reply) {
      if (!request.has_schedule()) {
        return reply(absl::InvalidArgumentError("schedule: required"));
      }
      table.CreateAsync(request.schedule(), std::move(reply));
    },
    [](ScheduleTable&, const v1::CreateScheduleRequest& request,
       const auth::Caller& caller) {
      return caller.CheckQueue(request.schedule().template_().queue(),
                               "schedule.template.queue");
    }};

const GetCall::Method kGet{
    "GetSchedule", &Service::RequestGetSchedule,
    [](ScheduleTable& table, const v1::GetScheduleRequest& request,
       GetCall::Reply reply) { reply(table.Get(request.id())); },
    ScheduleById<v1::GetScheduleRequest>};

const ListCall::Method kList{
    "ListSchedules", &Service::RequestListSchedules,
    [](ScheduleTable& table, const v1::ListSchedulesRequest& request,
       ListCall::Reply reply) { reply(table.List(request)); }};

const DeleteCall::Method kDelete{
    "DeleteSchedule", &Service::RequestDeleteSchedule,
    [](ScheduleTable& table, const v1::DeleteScheduleRequest& request,
       DeleteCall::Reply reply) {
      table.DeleteAsync(request.id(),
                        [reply = std::move(reply)](absl::Status s) {
                          if (!s.ok()) return reply(s);
                          reply(v1::DeleteScheduleResponse());
                        });
    },
    ScheduleById<v1::DeleteScheduleRequest>};

const PauseCall::Method kPause{
    "PauseSchedule", &Service::RequestPauseSchedule,
    [](ScheduleTable& table, const v1::PauseScheduleRequest& request,
       PauseCall::Reply reply) {
      table.PauseAsync(request.id(), std::move(reply));
    },
    ScheduleById<v1::PauseScheduleRequest>};

const ResumeCall::Method kResume{
    "ResumeSchedule", &Service::RequestResumeSchedule,
    [](ScheduleTable& table, const v1::ResumeScheduleRequest& request,
       ResumeCall::Reply reply) {
      table.ResumeAsync(request.id(), std::move(reply));
    },
    ScheduleById<v1::ResumeScheduleRequest>};

}  // namespace

void ScheduleServiceHandlers::Arm(grpc::ServerCompletionQueue* cq) const {
  auto site = [this](const char* method) {
    return sites_->For(v1::ScheduleService::service_full_name(), method);
  };
  CreateCall::Arm(site(kCreate.name), table_, service_, &kCreate, cq);
  GetCall::Arm(site(kGet.name), table_, service_, &kGet, cq);
  ListCall::Arm(site(kList.name), table_, service_, &kList, cq);
  DeleteCall::Arm(site(kDelete.name), table_, service_, &kDelete, cq);
  PauseCall::Arm(site(kPause.name), table_, service_, &kPause, cq);
  ResumeCall::Arm(site(kResume.name), table_, service_, &kResume, cq);
}

}  // namespace taskd
