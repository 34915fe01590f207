// TaskService on the completion-queue API: SubmitTask, SubmitTasks, GetTask,
// ListTasks and Cancel answer at once from the engine; Await and Stream wait
// on the engine and are finished from its callbacks.
//
// TaskServiceHandlers is immutable after construction and shared by every CQ
// thread; Arm() posts the first handler of each RPC on a queue.
#ifndef TASKD_SERVICES_TASK_SERVICE_H_
#define TASKD_SERVICES_TASK_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "api/taskd/v1/taskd.grpc.pb.h"
#include "scheduler/engine.h"
#include "services/call.h"

namespace taskd {

class TaskServiceHandlers final {
 public:
  // `engine`, `service` and `sites` must outlive every armed handler (until
  // the CQs are drained).
  TaskServiceHandlers(Engine* engine, v1::TaskService::AsyncService* service,
                      CallSites* sites)
      : engine_(engine), service_(service), sites_(sites) {}

  // Posts one waiting handler per RPC on `cq`; each posts its successor when
  // a call arrives.
  void Arm(grpc::ServerCompletionQueue* cq) const;

  Engine* engine() const { return engine_; }
  v1::TaskService::AsyncService* service() const { return service_; }

 private:
  Engine* const engine_;
  v1::TaskService::AsyncService* const service_;
  CallSites* const sites_;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_TASK_SERVICE_H_
