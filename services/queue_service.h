// QueueService on the completion-queue API: the operator view of queues
// (counts, pause/resume, purge, limits). Every call is answered from the
// engine; changes once they are durable.
//
// Immutable after construction; Arm() is called once per CQ.
#ifndef TASKD_SERVICES_QUEUE_SERVICE_H_
#define TASKD_SERVICES_QUEUE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "api/taskd/v1/taskd.grpc.pb.h"
#include "services/call.h"
#include "scheduler/engine.h"

namespace taskd {

class QueueServiceHandlers final {
 public:
  // `engine`, `service` and `sites` must outlive every armed handler (until
  // the CQs are drained).
  QueueServiceHandlers(Engine* engine, v1::QueueService::AsyncService* service,
                       CallSites* sites)
      : engine_(engine), service_(service), sites_(sites) {}

  void Arm(grpc::ServerCompletionQueue* cq) const;

 private:
  Engine* const engine_;
  v1::QueueService::AsyncService* const service_;
  CallSites* const sites_;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_QUEUE_SERVICE_H_
