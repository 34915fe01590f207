#include "services/auth/caller.h"

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/strings/str_join.h"
#include "services/auth/token_table.h"

namespace taskd {
namespace auth {

namespace {

absl::Mutex source_mu(absl::kConstInit);
std::shared_ptr<const CallerSource>& Source() {
  static auto* source = new std::shared_ptr<const CallerSource>();
  return *source;
}

}  // namespace

void SetCallerSource(std::shared_ptr<const CallerSource> source) {
  absl::MutexLock lock(&source_mu);
  Source() = std::move(source);
}

Caller Caller::Nobody() {
  Caller caller;
  caller.name_ = "a caller no longer in the token file";
  caller.nobody_ = true;
  return caller;
}

Caller Caller::FromContext(const grpc::ServerContextBase& context) {
  std::shared_ptr<const CallerSource> source;
  {
    absl::MutexLock lock(&source_mu);
    source = Source();
  }
  if (source == nullptr) return Caller();
  absl::string_view header;
  bool has_header = false;
  for (const auto& [key, value] : context.client_metadata()) {
    if (key == "authorization") {
      header = absl::string_view(value.data(), value.size());
      has_header = true;
      break;
    }
  }
  std::vector<absl::string_view> common_names;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  std::vector<grpc::string_ref> names;
  if (!has_header && auth != nullptr) {
    names = auth->FindPropertyValues("x509_common_name");
    for (const grpc::string_ref& cn : names) {
      common_names.emplace_back(cn.data(), cn.size());
    }
  }
  Caller caller;
  if (!source->Identify(has_header ? &header : nullptr, common_names,
                        &caller)) {
    return Nobody();
  }
  return caller;
}

bool Caller::MayUseQueue(absl::string_view queue) const {
  if (nobody_) return false;
  if (queues_.empty()) return true;
  if (queue.empty()) queue = "default";
  for (const std::string& pattern : queues_) {
    if (QueueMatches(pattern, queue)) return true;
  }
  return false;
}

absl::Status Caller::CheckQueue(absl::string_view queue,
                                absl::string_view field) const {
  if (MayUseQueue(queue)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      field, ": \"", queue.empty() ? "default" : queue, "\" is outside the ",
      "queues of ", name_, " (", absl::StrJoin(queues_, ","), ")"));
}

absl::Status Caller::CheckTaskQueue(absl::string_view task_queue,
                                    absl::string_view task_id) const {
  if (MayUseQueue(task_queue)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("task ", task_id, " not found"));
}

absl::Status Caller::CheckUnscoped(absl::string_view what) const {
  if (!scoped()) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      what, ": ", name_, " may use only the queues ",
      absl::StrJoin(queues_, ","), "; name one"));
}

}  // namespace auth
}  // namespace taskd
