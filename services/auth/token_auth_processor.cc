#include "services/auth/token_auth_processor.h"

#include <sys/stat.h>

#include <cstdio>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/auth/caller.h"
#include "services/auth/token_hash.h"

namespace taskd {
namespace auth {
namespace {

constexpr size_t kMaxLoggedCallers = 4096;
constexpr absl::Duration kLogEvery = absl::Minutes(1);

// mtime (ns), size and inode: a rename over the file (as Kubernetes does for
// mounted Secrets) changes the inode even within one mtime tick.
std::string FileSignature(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/",
                      st.st_size, "/", st.st_ino);
}

}  // namespace

uint32_t RequiredRole(absl::string_view path) {
  if (absl::StartsWith(path, "/grpc.health.v1.Health/")) return kOpen;
  if (absl::StartsWith(path, "/grpc.reflection.")) return kAnyIdentity;
  if (absl::ConsumePrefix(&path, "/taskd.v1.TaskService/")) {
    if (path == "SubmitTask" || path == "SubmitTasks" || path == "Cancel") {
      return kSubmit;
    }
    if (path == "GetTask" || path == "ListTasks" || path == "Await" ||
        path == "Stream") {
      return kRead;
    }
    return kAdmin;
  }
  if (path == "/taskd.v1.WorkerService/Work") return kWork;
  return kAdmin;  // QueueService, ScheduleService, anything unknown
}

TokenAuthProcessor::TokenAuthProcessor(Options options)
    : options_(std::move(options)) {}

absl::StatusOr<std::shared_ptr<TokenAuthProcessor>> TokenAuthProcessor::Create(
    Options options) {
  std::shared_ptr<TokenAuthProcessor> processor(
      new TokenAuthProcessor(std::move(options)));
  if (auto s = processor->Reload(); !s.ok()) return s;
  if (processor->options_.watch_interval > absl::ZeroDuration()) {
    processor->watcher_ = std::thread([p = processor.get()] { p->Watch(); });
  }
  return processor;
}

TokenAuthProcessor::~TokenAuthProcessor() { StopWatching(); }

void TokenAuthProcessor::StopWatching() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (watcher_.joinable()) watcher_.join();
}

void TokenAuthProcessor::Watch() {
  while (!stop_.WaitForNotificationWithTimeout(options_.watch_interval)) {
    std::string signature = FileSignature(options_.tokens_path);
    {
      absl::MutexLock lock(&mu_);
      if (signature.empty() || signature == file_signature_) continue;
    }
    // A failed parse is reported by Reload; the signature is not recorded,
    // so a fixed file is picked up by the next check.
    (void)Reload();
  }
}

absl::Status TokenAuthProcessor::Reload() {
  std::string signature = FileSignature(options_.tokens_path);
  absl::StatusOr<TokenTable> table = TokenTable::Load(options_.tokens_path);
  auto log = [this](const std::string& line) {
    if (options_.log) {
      options_.log(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  };
  if (!table.ok()) {
    log(absl::StrCat("taskd: auth: keeping the previous tokens: ",
                     table.status().message()));
    return table.status();
  }
  size_t entries = table->size();
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    table_ = std::make_shared<const TokenTable>(*std::move(table));
    file_signature_ = signature;
    generation = ++generation_;
  }
  log(absl::StrCat("taskd: auth: loaded ", entries, " entries from ",
                   options_.tokens_path, " (load ", generation, ")"));
  return absl::OkStatus();
}

uint64_t TokenAuthProcessor::generation() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

std::shared_ptr<const TokenTable> TokenAuthProcessor::table() const {
  absl::MutexLock lock(&mu_);
  return table_;
}

grpc::Status TokenAuthProcessor::Deny(grpc::StatusCode code,
                                      const char* reason,
                                      const std::string& who,
                                      absl::string_view method) {
  if (options_.on_denied) options_.on_denied(reason);
  absl::Time now = absl::Now();
  bool log = false;
  {
    absl::MutexLock lock(&log_mu_);
    if (last_logged_.size() >= kMaxLoggedCallers) last_logged_.clear();
    auto [it, inserted] = last_logged_.try_emplace(who, now);
    if (inserted || now - it->second >= kLogEvery) {
      it->second = now;
      log = true;
    }
  }
  std::string message =
      code != grpc::StatusCode::UNAUTHENTICATED
          ? absl::StrCat(who, " may not call ", method)
      : absl::string_view(reason) == kMissingToken
          ? absl::StrCat("no credentials for ", method,
                         ": send authorization: Bearer <token>")
          : absl::StrCat("unknown token (", method, ")");
  if (log) {
    std::string line = absl::StrCat("taskd: auth: denied ", method, " to ",
                                    who, ": ", reason,
                                    " (logged once a minute per caller)");
    if (options_.log) {
      options_.log(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  return grpc::Status(code, message);
}

grpc::Status TokenAuthProcessor::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context,
                                         OutputMetadata* /*consumed*/,
                                         OutputMetadata* /*response*/) {
  absl::string_view method;
  if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) {
    method = absl::string_view(it->second.data(), it->second.size());
  }
  const uint32_t required = RequiredRole(method);
  if (required == kOpen) return grpc::Status::OK;

  std::shared_ptr<const TokenTable> table = this->table();
  const Identity* identity = nullptr;
  std::string who;
  auto header = auth_metadata.find("authorization");
  if (header != auth_metadata.end()) {
    absl::string_view value(header->second.data(), header->second.size());
    // "Bearer <token>", the scheme case-insensitive (RFC 6750).
    if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7),
                                                    "bearer ")) {
      return Deny(grpc::StatusCode::UNAUTHENTICATED, kUnknownToken,
                  "a non-Bearer authorization header", method);
    }
    TokenHash hash = HashToken(absl::StripAsciiWhitespace(value.substr(7)));
    identity = table->FindToken(hash);
    if (identity == nullptr) {
      // A short hash prefix tells operators which stray token it is without
      // revealing anything usable.
      return Deny(grpc::StatusCode::UNAUTHENTICATED, kUnknownToken,
                  absl::StrCat("unknown token sha256:",
                               absl::BytesToHexString(absl::string_view(
                                   reinterpret_cast<const char*>(hash.data()),
                                   4)),
                               "..."),
                  method);
    }
  } else {
    for (const grpc::string_ref& cn :
         context->FindPropertyValues("x509_common_name")) {
      identity =
          table->FindCommonName(absl::string_view(cn.data(), cn.size()));
      if (identity != nullptr) break;
    }
    if (identity == nullptr) {
      return Deny(grpc::StatusCode::UNAUTHENTICATED, kMissingToken,
                  "a caller without token", method);
    }
  }
  if (required != kAnyIdentity && !identity->Has(required)) {
    return Deny(grpc::StatusCode::PERMISSION_DENIED, kMissingRole,
                absl::StrCat(identity->name, " (roles ",
                             FormatRoles(identity->roles), ")"),
                method);
  }
  return grpc::Status::OK;
}

bool TokenAuthProcessor::Identify(
    const absl::string_view* authorization,
    const std::vector<absl::string_view>& common_names, Caller* caller) const {
  std::shared_ptr<const TokenTable> table = this->table();
  const Identity* identity = nullptr;
  if (authorization != nullptr) {
    absl::string_view value = *authorization;
    if (value.size() < 7 ||
        !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
      return false;
    }
    identity =
        table->FindToken(HashToken(absl::StripAsciiWhitespace(value.substr(7))));
  } else {
    for (absl::string_view cn : common_names) {
      identity = table->FindCommonName(cn);
      if (identity != nullptr) break;
    }
  }
  if (identity == nullptr) return false;
  *caller = Caller(identity->name, identity->queues);
  return true;
}

}  // namespace auth
}  // namespace taskd
