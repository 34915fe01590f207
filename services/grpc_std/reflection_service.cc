#include "services/grpc_std/reflection_service.h"

#include <deque>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "services/ref_counted_call.h"

namespace taskd {

using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;
namespace pb = google::protobuf;

namespace {

// Adds `file` and, depth first, every file it imports (each once).
void AddFileAndDependencies(const pb::FileDescriptor* file,
                            absl::flat_hash_set<std::string>* added,
                            ServerReflectionResponse* response) {
  if (!added->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  response->mutable_file_descriptor_response()->add_file_descriptor_proto(
      proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndDependencies(file->dependency(i), added, response);
  }
}

void NotFound(const std::string& what, ServerReflectionResponse* response) {
  auto* error = response->mutable_error_response();
  error->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  error->set_error_message(what);
}

}  // namespace

ServerReflectionResponse ReflectionServiceHandlers::Answer(
    const ServerReflectionRequest& request) const {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  ServerReflectionResponse response;
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  absl::flat_hash_set<std::string> added;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& name : services_) {
        response.mutable_list_services_response()->add_service()->set_name(
            name);
      }
      break;
    case ServerReflectionRequest::kFileByFilename:
      if (const auto* file = pool->FindFileByName(request.file_by_filename())) {
        AddFileAndDependencies(file, &added, &response);
      } else {
        NotFound(absl::StrCat("file not found: ", request.file_by_filename()),
                 &response);
      }
      break;
    case ServerReflectionRequest::kFileContainingSymbol:
      if (const auto* file = pool->FindFileContainingSymbol(
              request.file_containing_symbol())) {
        AddFileAndDependencies(file, &added, &response);
      } else {
        NotFound(absl::StrCat("symbol not found: ",
                              request.file_containing_symbol()),
                 &response);
      }
      break;
    case ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const auto* type = pool->FindMessageTypeByName(ext.containing_type());
      const auto* field =
          type ? pool->FindExtensionByNumber(type, ext.extension_number())
               : nullptr;
      if (field != nullptr) {
        AddFileAndDependencies(field->file(), &added, &response);
      } else {
        NotFound("extension not found", &response);
      }
      break;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const auto* type =
          pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        NotFound(absl::StrCat("type not found: ",
                              request.all_extension_numbers_of_type()),
                 &response);
        break;
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* numbers = response.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const auto* f : extensions) numbers->add_extension_number(f->number());
      break;
    }
    default: {
      auto* error = response.mutable_error_response();
      error->set_error_code(static_cast<int>(grpc::StatusCode::UNIMPLEMENTED));
      error->set_error_message("unknown reflection request");
    }
  }
  return response;
}

// One reflection stream: read a request, write its answer, read the next.
// Exactly one operation (read or write) in flight, then the finish.
class ReflectionCall final : public RefCountedCall {
 public:
  static void Arm(const CallSite& site, ReflectionServiceHandlers* handlers,
                  grpc::ServerCompletionQueue* cq) {
    new ReflectionCall(site, handlers, cq);
  }

  void OnEvent(int op, bool ok) override {
    switch (op) {
      case kRequest:
        if (!ok) {
          delete this;
          return;
        }
        Arm(site_, handlers_, cq_);
        meter_.Start(site_.cells);
        {
          absl::MutexLock lock(&mu_);
          Ref();  // the done tag
        }
        if (!handlers_->Register(this)) {
          absl::MutexLock lock(&mu_);
          FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "server is shutting down"));
        } else {
          absl::MutexLock lock(&mu_);
          ReadLocked();
        }
        break;
      case kRead: {
        absl::MutexLock lock(&mu_);
        op_in_flight_ = false;
        if (!ok) {
          FinishLocked(grpc::Status::OK);  // the client half-closed
          break;
        }
        meter_.Received();
        if (!finished_) {
          response_ = handlers_->Answer(request_);
          op_in_flight_ = true;
          Ref();
          meter_.Sent();
          stream_.Write(response_, &write_tag_);
        } else {
          StartFinishLocked();
        }
        break;
      }
      case kWrite: {
        absl::MutexLock lock(&mu_);
        op_in_flight_ = false;
        if (!ok) {
          FinishLocked(grpc::Status::CANCELLED);
        } else if (finished_) {
          StartFinishLocked();
        } else {
          ReadLocked();
        }
        break;
      }
      case kDone:
        break;
      case kFinish:
        handlers_->Unregister(this);
        break;
    }
    Unref();
  }

  // Ends the stream (server shutting down); an operation in flight (a read
  // waiting for the client, a write it does not read) is cancelled, so the
  // finish runs while the queues still poll.
  void Close() {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "server is shutting down"));
    if (op_in_flight_) ctx_.TryCancel();
  }

 private:
  enum Op { kRequest, kRead, kWrite, kDone, kFinish };

  ReflectionCall(const CallSite& site, ReflectionServiceHandlers* handlers,
                 grpc::ServerCompletionQueue* cq)
      : RefCountedCall(site), handlers_(handlers), cq_(cq), stream_(&ctx_) {
    ctx_.AsyncNotifyWhenDone(&done_tag_);
    handlers_->service()->RequestServerReflectionInfo(&ctx_, &stream_, cq_,
                                                      cq_, &request_tag_);
  }

  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    op_in_flight_ = true;
    Ref();
    stream_.Read(&request_, &read_tag_);
  }

  // With a read in flight, the finish waits for it (one op at a time).
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    final_status_ = std::move(status);
    if (!op_in_flight_) StartFinishLocked();
  }

  void StartFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_started_) return;
    finish_started_ = true;
    Ref();
    meter_.Handled(final_status_.error_code());
    stream_.Finish(final_status_, &finish_tag_);
  }

  ReflectionServiceHandlers* const handlers_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext ctx_;
  grpc::ServerAsyncReaderWriter<ServerReflectionResponse,
                                ServerReflectionRequest>
      stream_;
  Tag request_tag_{this, kRequest};
  Tag read_tag_{this, kRead};
  Tag write_tag_{this, kWrite};
  Tag done_tag_{this, kDone};
  Tag finish_tag_{this, kFinish};

  ServerReflectionRequest request_ ABSL_GUARDED_BY(mu_);
  ServerReflectionResponse response_ ABSL_GUARDED_BY(mu_);
  bool op_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

void ReflectionServiceHandlers::Arm(grpc::ServerCompletionQueue* cq) {
  ReflectionCall::Arm(
      sites_->For(grpc::reflection::v1alpha::ServerReflection::
                      service_full_name(),
                  "ServerReflectionInfo"),
      this, cq);
}

void ReflectionServiceHandlers::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (ReflectionCall* call : calls_) call->Close();
}

bool ReflectionServiceHandlers::Register(ReflectionCall* call) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  calls_.insert(call);
  return true;
}

void ReflectionServiceHandlers::Unregister(ReflectionCall* call) {
  absl::MutexLock lock(&mu_);
  calls_.erase(call);
}

}  // namespace taskd
