// TokenAuthProcessor: the one place where taskd decides who may call which
// RPC. Installed on the server's credentials, it runs for every call before
// any handler:
//
//   - /grpc.health.v1.Health/* is open to everyone;
//   - otherwise the caller is the bearer token of `authorization: Bearer T`
//     (looked up by SHA-256 in the TokenTable) or, with no such header, the
//     mTLS client certificate's common name mapped by a `cn:` line;
//   - no identity, or an unknown token: UNAUTHENTICATED; an identity without
//     the method's role: PERMISSION_DENIED (see RequiredRole);
//   - an allowed call goes on with its `authorization` header, from which
//     the handlers' scope checks identify the caller again through this
//     processor as a CallerSource (caller.h says why not the AuthContext).
//
// The table is replaced atomically by Reload() (SIGHUP) and by the watcher
// thread when the file changes; a file that does not parse keeps the old
// table and is reported. Denials are counted through `on_denied` and logged
// at most once per caller per minute, never with the token.
//
// Thread-safe. Process() does no I/O and does not block (IsBlocking false).
#ifndef TASKD_SERVICES_AUTH_TOKEN_AUTH_PROCESSOR_H_
#define TASKD_SERVICES_AUTH_TOKEN_AUTH_PROCESSOR_H_

#include <grpcpp/security/auth_metadata_processor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/auth/caller.h"
#include "services/auth/token_table.h"

namespace taskd {
namespace auth {

// What a method needs: a role bit, kOpen (health) or kAnyIdentity
// (reflection). Unknown methods need kAdmin.
inline constexpr uint32_t kOpen = 0;
inline constexpr uint32_t kAnyIdentity = 1u << 31;
uint32_t RequiredRole(absl::string_view method_path);

// Denial reasons, the `reason` label of taskd_auth_denied_total.
inline constexpr char kMissingToken[] = "missing_token";
inline constexpr char kUnknownToken[] = "unknown_token";
inline constexpr char kMissingRole[] = "missing_role";

class TokenAuthProcessor final : public grpc::AuthMetadataProcessor,
                                 public CallerSource {
 public:
  struct Options {
    std::string tokens_path;
    // How often the file is checked for changes; zero: only Reload().
    absl::Duration watch_interval = absl::Seconds(2);
    // Called for each denied call with one of the reasons above.
    std::function<void(absl::string_view reason)> on_denied;
    // Where denials and reloads are reported (default: stderr).
    std::function<void(const std::string& line)> log;
  };

  // Loads the file (an error if it cannot be read or parsed) and starts
  // watching it.
  static absl::StatusOr<std::shared_ptr<TokenAuthProcessor>> Create(
      Options options);
  ~TokenAuthProcessor() override;  // stops the watcher

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata,
                       grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  bool Identify(const absl::string_view* authorization,
                const std::vector<absl::string_view>& common_names,
                Caller* caller) const override;

  // Re-reads the file. On error the previous table stays in force.
  absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the watcher thread; idempotent.
  void StopWatching();

  // Successful loads so far (the first included).
  uint64_t generation() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit TokenAuthProcessor(Options options);
  std::shared_ptr<const TokenTable> table() const ABSL_LOCKS_EXCLUDED(mu_);
  grpc::Status Deny(grpc::StatusCode code, const char* reason,
                    const std::string& who, absl::string_view method)
      ABSL_LOCKS_EXCLUDED(log_mu_);
  void Watch();

  // Constant after construction.
  const Options options_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const TokenTable> table_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // What the file looked like at the last load (mtime, size, inode).
  std::string file_signature_ ABSL_GUARDED_BY(mu_);

  absl::Mutex log_mu_;
  // Caller -> when it was last logged; cleared when it grows past a bound.
  absl::flat_hash_map<std::string, absl::Time> last_logged_
      ABSL_GUARDED_BY(log_mu_);

  absl::Notification stop_;
  std::thread watcher_;
};

}  // namespace auth
}  // namespace taskd

#endif  // TASKD_SERVICES_AUTH_TOKEN_AUTH_PROCESSOR_H_
