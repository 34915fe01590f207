#include "services/grpc_std/health_service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/ref_counted_call.h"
#include "services/unary_call.h"

namespace taskd {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {

using CheckCall = UnaryCall<HealthServiceHandlers::Service,
                            HealthServiceHandlers, HealthCheckRequest,
                            HealthCheckResponse>;

const CheckCall::Method kCheck{
    "Check", &HealthServiceHandlers::Service::RequestCheck,
    [](HealthServiceHandlers& health, const HealthCheckRequest& request,
       CheckCall::Reply reply) {
      if (!health.Known(request.service())) {
        return reply(absl::NotFoundError(
            absl::StrCat("unknown service \"", request.service(), "\"")));
      }
      HealthCheckResponse response;
      response.set_status(health.StatusOf(request.service()));
      reply(std::move(response));
    },
    // Health is open to every caller, scoped tokens included.
    [](HealthServiceHandlers&, const HealthCheckRequest&,
       const auth::Caller&) { return absl::OkStatus(); }};

}  // namespace

// One Watch stream: sends the status now and whenever it changes. One write
// in flight; a change during a write is sent after it (only the latest
// status matters). Lives until its done tag and its last op tag returned.
class WatchCall final : public RefCountedCall {
 public:
  static void Arm(const CallSite& site, HealthServiceHandlers* health,
                  grpc::ServerCompletionQueue* cq) {
    new WatchCall(site, health, cq);
  }

  void OnEvent(int op, bool ok) override {
    switch (op) {
      case kRequest:
        if (!ok) {
          delete this;
          return;
        }
        Arm(site_, health_, cq_);
        meter_.Start(site_.cells);
        meter_.Received();  // the request
        {
          absl::MutexLock lock(&mu_);
          Ref();  // the done tag
        }
        if (!health_->Register(this)) {
          absl::MutexLock lock(&mu_);
          FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "server is shutting down"));
        }
        break;
      case kWrite: {
        absl::MutexLock lock(&mu_);
        write_in_flight_ = false;
        if (!ok) {
          FinishLocked(grpc::Status::CANCELLED);
        } else {
          PumpLocked();
        }
        break;
      }
      case kDone: {
        absl::MutexLock lock(&mu_);
        if (ctx_.IsCancelled()) FinishLocked(grpc::Status::CANCELLED);
        break;
      }
      case kFinish:
        health_->Unregister(this);
        break;
    }
    Unref();
  }

  // The status is `status` as of change number `version` (a later version
  // wins, whichever call arrives first); sent if it differs from the last.
  void Notify(HealthServiceHandlers::Status status, uint64_t version) {
    absl::MutexLock lock(&mu_);
    if (version < version_) return;
    version_ = version;
    wanted_ = status;
    PumpLocked();
  }

  const std::string& watched() const { return request_.service(); }

  // Ends the stream (server shutting down). A write the client does not
  // read is cancelled, so the finish runs while the queues still poll.
  void Close() {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::OK);
    if (write_in_flight_) ctx_.TryCancel();
  }

 private:
  enum Op { kRequest, kWrite, kDone, kFinish };

  WatchCall(const CallSite& site, HealthServiceHandlers* health,
            grpc::ServerCompletionQueue* cq)
      : RefCountedCall(site), health_(health), cq_(cq), writer_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    health_->service()->RequestWatch(&ctx_, &request_, &writer_, cq_, cq_,
                                     &request_tag_);
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) {
      if (!write_in_flight_ && !finish_started_) StartFinishLocked();
      return;
    }
    if (write_in_flight_ || version_ == 0) return;
    const auto status = wanted_;
    if (sent_any_ && status == last_sent_) return;
    sent_any_ = true;
    last_sent_ = status;
    response_.set_status(status);
    write_in_flight_ = true;
    Ref();
    meter_.Sent();
    writer_.Write(response_, &write_tag_);
  }

  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_status_ = std::move(status);
    if (!write_in_flight_) StartFinishLocked();
  }

  void StartFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_started_) return;
    finish_started_ = true;
    Ref();
    meter_.Handled(final_status_.error_code());
    writer_.Finish(final_status_, &finish_tag_);
  }

  HealthServiceHandlers* const health_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  HealthCheckRequest request_;
  grpc::ServerAsyncWriter<HealthCheckResponse> writer_;
  Tag request_tag_{this, kRequest};
  Tag write_tag_{this, kWrite};
  Tag done_tag_{this, kDone};
  Tag finish_tag_{this, kFinish};

  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);  // the write in flight
  HealthServiceHandlers::Status wanted_ ABSL_GUARDED_BY(mu_) =
      HealthCheckResponse::UNKNOWN;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // 0: nothing known yet
  HealthServiceHandlers::Status last_sent_ ABSL_GUARDED_BY(mu_) =
      HealthCheckResponse::UNKNOWN;
  bool sent_any_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

HealthServiceHandlers::HealthServiceHandlers(Service* service,
                                             std::vector<std::string> services,
                                             CallSites* sites)
    : service_(service),
      services_([&] {
        absl::flat_hash_set<std::string> names(services.begin(),
                                               services.end());
        names.insert("");
        return names;
      }()),
      sites_(sites) {}

void HealthServiceHandlers::Arm(grpc::ServerCompletionQueue* cq) {
  const char* name = grpc::health::v1::Health::service_full_name();
  CheckCall::Arm(sites_->For(name, kCheck.name), this, service_, &kCheck, cq);
  WatchCall::Arm(sites_->For(name, "Watch"), this, cq);
}

HealthServiceHandlers::Status HealthServiceHandlers::StatusOf(
    const std::string& service) const {
  absl::MutexLock lock(&mu_);
  return StatusLocked(service);
}

HealthServiceHandlers::Status HealthServiceHandlers::StatusLocked(
    const std::string& service) const {
  if (!Known(service)) return HealthCheckResponse::SERVICE_UNKNOWN;
  return serving_ ? HealthCheckResponse::SERVING
                  : HealthCheckResponse::NOT_SERVING;
}

void HealthServiceHandlers::SetServing(bool serving) {
  // Under mu_, so no Watch can unregister (and be deleted) meanwhile; a
  // WatchCall takes only its own lock in Notify (order: mu_ -> call's mu_)
  // and never calls back here with its lock held.
  absl::MutexLock lock(&mu_);
  serving_ = serving;
  ++version_;
  for (WatchCall* call : watches_) {
    call->Notify(StatusLocked(call->watched()), version_);
  }
}

void HealthServiceHandlers::Shutdown() {
  absl::MutexLock lock(&mu_);
  serving_ = false;
  shut_down_ = true;
  ++version_;
  for (WatchCall* call : watches_) {
    call->Notify(StatusLocked(call->watched()), version_);  // NOT_SERVING
    call->Close();
  }
}

bool HealthServiceHandlers::Register(WatchCall* call) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  watches_.insert(call);
  call->Notify(StatusLocked(call->watched()), version_ + 1);
  return true;
}

void HealthServiceHandlers::Unregister(WatchCall* call) {
  absl::MutexLock lock(&mu_);
  watches_.erase(call);
}

}  // namespace taskd
