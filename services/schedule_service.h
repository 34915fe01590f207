// ScheduleService on the completion-queue API: periodic schedules (like
// Celery beat) served from a ScheduleTable. Every RPC is unary; reads answer
// at once, changes once they are durable (from the journal's thread), so no
// CQ thread waits for a disk.
//
// ScheduleServiceHandlers is immutable after construction and shared by
// every CQ thread; Arm() posts the first handler of each RPC on a queue.
#ifndef TASKD_SERVICES_SCHEDULE_SERVICE_H_
#define TASKD_SERVICES_SCHEDULE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "api/taskd/v1/taskd.grpc.pb.h"
#include "services/call.h"
#include "scheduler/schedule_table.h"

namespace taskd {

class ScheduleServiceHandlers final {
 public:
  // `table`, `service` and `sites` must outlive every armed handler (until
  // the CQs are drained).
  ScheduleServiceHandlers(ScheduleTable* table,
                          v1::ScheduleService::AsyncService* service,
                          CallSites* sites)
      : table_(table), service_(service), sites_(sites) {}

  // Posts one waiting handler per RPC on `cq`; each posts its successor when
  // a call arrives.
  void Arm(grpc::ServerCompletionQueue* cq) const;

 private:
  ScheduleTable* const table_;
  v1::ScheduleService::AsyncService* const service_;
  CallSites* const sites_;
};

}  // namespace taskd

#endif  // TASKD_SERVICES_SCHEDULE_SERVICE_H_
