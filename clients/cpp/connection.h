// ChannelSecurity: how a taskd client or worker connects — TLS (the CA that
// signed the server's certificate, and a client certificate for mTLS) and a
// bearer token — and NewChannel, which turns it into a gRPC channel.
//
//   ChannelSecurity security;
//   security.tls_ca = "ca.pem";                // TLS, verify the server
//   security.token = std::getenv("TASKD_TOKEN");
//   absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
//       NewChannel("taskd.example.com:50051", security);
//   TaskClient client(*channel);
//
// The token travels as `authorization: Bearer <token>` call credentials, so
// gRPC sends it only over a channel that protects it: TLS, or gRPC's local
// credentials to a loopback address (a development server without TLS).
// A token to a non-loopback address without TLS is refused here.
//
// Files are read once, when the channel is made; a worker picks up a
// renewed client certificate when it reconnects with a new channel.
//
// Thread-compatible value; NewChannel is thread-safe.
#ifndef TASKD_CLIENTS_CPP_CONNECTION_H_
#define TASKD_CLIENTS_CPP_CONNECTION_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clients/cpp/cli_args.h"

namespace taskd {

struct ChannelSecurity {
  // Use TLS. Implied by any of the three files below; with no `tls_ca` the
  // system's trusted roots verify the server.
  bool tls = false;
  std::string tls_ca;    // PEM bundle trusted for the server's certificate
  std::string tls_cert;  // PEM client certificate (mTLS), with tls_key
  std::string tls_key;   // PEM private key of tls_cert
  std::string token;     // bearer token; empty: none

  bool UsesTls() const {
    return tls || !tls_ca.empty() || !tls_cert.empty() || !tls_key.empty();
  }
};

// A channel to `target` with `security`. INVALID_ARGUMENT when a file
// cannot be read, tls_cert comes without tls_key (or the reverse), or a
// token would go to a non-loopback address without TLS.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(
    const std::string& target, const ChannelSecurity& security);

// Whether `target` names a loopback address ("127.0.0.1:50051",
// "localhost:50051", "[::1]:50051", with an optional "dns:///" or "ipv4:").
bool IsLoopbackTarget(absl::string_view target);

// The command-line flags of taskctl and taskd-worker: --tls-ca, --tls-cert,
// --tls-key, --token.
std::vector<FlagSpec> SecurityFlagSpecs();
// Reads them (the last of `sets` that has a flag wins) and $TASKD_TOKEN
// (`env_token`, null when unset; --token overrides it).
ChannelSecurity SecurityFromArgs(const std::vector<const ParsedArgs*>& sets,
                                 const char* env_token);

}  // namespace taskd

#endif  // TASKD_CLIENTS_CPP_CONNECTION_H_
