// ServerSecurity: the credentials taskd listens with, built from its
// security flags, and the policy that keeps a default install safe.
//
//   absl::StatusOr<ServerSecurity> security =
//       MakeServerSecurity(options.listen, options.security);
//   builder.AddListeningPort(listen, security->credentials, &port);
//
// - TLS (`tls_cert` + `tls_key`) uses gRPC's TlsServerCredentials with a
//   FileWatcherCertificateProvider: certificate, key and client CA are
//   re-read every `cert_refresh`, so a rotated certificate is served to new
//   connections without a restart (a half-written pair whose key and
//   certificate do not match is skipped until both are in place).
// - mTLS (`tls_client_ca`): client certificates are required and verified
//   against that CA bundle.
// - Tokens (`auth_tokens`): a TokenAuthProcessor on the credentials. Without
//   TLS this is allowed on a loopback address only, through gRPC's local
//   credentials (plain TCP that accepts loopback peers only), so a token
//   never crosses a network in clear text.
// - Policy: on a non-loopback address taskd needs TLS and a way to tell
//   callers apart (tokens or client certificates); otherwise it refuses to
//   start unless `insecure` is set, in which case `warnings` says what is
//   exposed. Loopback (`make run`) stays plain.
//
// Thread-compatible; the returned objects are thread-safe.
#ifndef TASKD_SERVICES_AUTH_SERVER_SECURITY_H_
#define TASKD_SERVICES_AUTH_SERVER_SECURITY_H_

#include <grpcpp/security/server_credentials.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/auth/token_auth_processor.h"

namespace taskd {
namespace auth {

struct SecurityOptions {
  std::string tls_cert;       // PEM certificate chain
  std::string tls_key;        // PEM private key
  std::string tls_client_ca;  // PEM CA bundle; set: require client certs
  // How often the certificate files are checked for changes (whole
  // seconds, at least 1).
  absl::Duration cert_refresh = absl::Seconds(60);
  std::string auth_tokens;  // token file (token_table.h); empty: no tokens
  absl::Duration tokens_watch = absl::Seconds(2);
  // Serve a non-loopback address without TLS or without caller checks.
  bool insecure = false;
  // Counts denied calls (taskd_auth_denied_total{reason}).
  std::function<void(absl::string_view reason)> on_denied;
  std::function<void(const std::string& line)> log;  // default: stderr
};

struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::shared_ptr<TokenAuthProcessor> processor;  // null without tokens
  std::string summary;  // e.g. "TLS, client certificates, tokens"
  std::vector<std::string> warnings;
};

// Whether `listen` ("host:port") names a loopback address only (127.0.0.0/8,
// ::1, localhost). 0.0.0.0, [::] and other names are not loopback.
bool IsLoopbackListen(absl::string_view listen);

// INVALID_ARGUMENT for a half-given pair (cert without key...), a file that
// cannot be read or is no PEM, a key that does not match its certificate;
// FAILED_PRECONDITION when the policy above refuses.
absl::StatusOr<ServerSecurity> MakeServerSecurity(
    absl::string_view listen, const SecurityOptions& options);

}  // namespace auth
}  // namespace taskd

#endif  // TASKD_SERVICES_AUTH_SERVER_SECURITY_H_
