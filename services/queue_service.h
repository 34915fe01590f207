// QueueService on the completion-queue API: the operator view of queues
// (counts, pause/resume, purge, limits). Every call is answered from the
// engine; changes once they are durable.
//
// Immutable after construction; Arm() is called once per CQ.
#ifndef TASKD_SERVICES_QUEUE_SERVICE_H_
#define TASKD_SERVICES_QUEUE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "api/taskd/v1/taskd.grpc.pb.h"
#include "scheduler/engine.h"

namespace taskd {

class QueueServiceHandlers final {
 public:
  QueueServiceHandlers(Engine* engine, v1::QueueService::AsyncService* service)
      : engine_(engine), service_(service) {}

  void Arm(grpc::ServerCompletionQueue* cq) const;

 private:
  Engine* const engine_;
  v1::QueueService::AsyncService* const service_;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_QUEUE_SERVICE_H_
