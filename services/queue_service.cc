#include "services/queue_service.h"

#include <optional>
#include <utility>

#include "services/unary_call.h"

namespace taskd {
namespace {

using Service = v1::QueueService::AsyncService;
template <class Request, class Response>
using Call = UnaryCall<Service, Engine, Request, Response>;

using ListCall = Call<v1::ListQueuesRequest, v1::ListQueuesResponse>;
using GetCall = Call<v1::GetQueueRequest, v1::Queue>;
using PauseCall = Call<v1::PauseQueueRequest, v1::Queue>;
using ResumeCall = Call<v1::ResumeQueueRequest, v1::Queue>;
using PurgeCall = Call<v1::PurgeQueueRequest, v1::PurgeQueueResponse>;
using UpdateCall = Call<v1::UpdateQueueRequest, v1::Queue>;

// A token scoped to some queues may operate on those only (ListQueues spans
// every queue: refused to such tokens, see unary_call.h).
template <class Request>
absl::Status NamedQueue(Engine&, const Request& request,
                        const auth::Caller& caller) {
  return caller.CheckQueue(request.queue());
}

const ListCall::Method kList{
    "ListQueues", &Service::RequestListQueues,
    [](Engine& engine, const v1::ListQueuesRequest&, ListCall::Reply reply) {
      v1::ListQueuesResponse response;
      for (v1::Queue& q : engine.ListQueues()) {
        *response.add_queues() = std::move(q);
      }
      reply(std::move(response));
    }};

const GetCall::Method kGet{
    "GetQueue", &Service::RequestGetQueue,
    [](Engine& engine, const v1::GetQueueRequest& request,
       GetCall::Reply reply) { reply(engine.GetQueue(request.queue())); },
    NamedQueue<v1::GetQueueRequest>};

const PauseCall::Method kPause{
    "PauseQueue", &Service::RequestPauseQueue,
    [](Engine& engine, const v1::PauseQueueRequest& request,
       PauseCall::Reply reply) {
      engine.PauseQueueAsync(request.queue(), true, std::move(reply));
    },
    NamedQueue<v1::PauseQueueRequest>};

const ResumeCall::Method kResume{
    "ResumeQueue", &Service::RequestResumeQueue,
    [](Engine& engine, const v1::ResumeQueueRequest& request,
       ResumeCall::Reply reply) {
      engine.PauseQueueAsync(request.queue(), false, std::move(reply));
    },
    NamedQueue<v1::ResumeQueueRequest>};

const PurgeCall::Method kPurge{
    "PurgeQueue", &Service::RequestPurgeQueue,
    [](Engine& engine, const v1::PurgeQueueRequest& request,
       PurgeCall::Reply reply) {
      engine.PurgeQueueAsync(
          request.queue(), request.reason(),
          [reply = std::move(reply)](absl::StatusOr<int64_t> purged) {
            if (!purged.ok()) return reply(purged.status());
            v1::PurgeQueueResponse response;
            response.set_purged(*purged);
            reply(std::move(response));
          });
    },
    NamedQueue<v1::PurgeQueueRequest>};

const UpdateCall::Method kUpdate{
    "UpdateQueue", &Service::RequestUpdateQueue,
    [](Engine& engine, const v1::UpdateQueueRequest& request,
       UpdateCall::Reply reply) {
      std::optional<int> concurrency;
      std::optional<double> rate;
      if (request.has_max_concurrency()) {
        concurrency = request.max_concurrency();
      }
      if (request.has_max_dispatch_per_second()) {
        rate = request.max_dispatch_per_second();
      }
      engine.UpdateQueueAsync(request.queue(), concurrency, rate,
                              std::move(reply));
    },
    NamedQueue<v1::UpdateQueueRequest>};

}  // namespace

void QueueServiceHandlers::Arm(grpc::ServerCompletionQueue* cq) const {
  auto site = [this](const char* method) {
    return sites_->For(v1::QueueService::service_full_name(), method);
  };
  ListCall::Arm(site(kList.name), engine_, service_, &kList, cq);
  GetCall::Arm(site(kGet.name), engine_, service_, &kGet, cq);
  PauseCall::Arm(site(kPause.name), engine_, service_, &kPause, cq);
  ResumeCall::Arm(site(kResume.name), engine_, service_, &kResume, cq);
  PurgeCall::Arm(site(kPurge.name), engine_, service_, &kPurge, cq);
  UpdateCall::Arm(site(kUpdate.name), engine_, service_, &kUpdate, cq);
}

}  // namespace taskd
