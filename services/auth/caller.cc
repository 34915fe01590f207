#include "services/auth/caller.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/auth/token_table.h"

namespace taskd {
namespace auth {

Caller Caller::FromContext(const grpc::ServerContextBase& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return Caller();
  std::vector<grpc::string_ref> names =
      auth->FindPropertyValues(kIdentityProperty);
  if (names.empty()) return Caller();
  std::vector<std::string> queues;
  for (const grpc::string_ref& q : auth->FindPropertyValues(kQueueProperty)) {
    queues.emplace_back(q.data(), q.size());
  }
  return Caller(std::string(names[0].data(), names[0].size()),
                std::move(queues));
}

bool Caller::MayUseQueue(absl::string_view queue) const {
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
