#include "clients/cpp/connection.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace taskd {
namespace {

absl::StatusOr<std::string> ReadFile(const char* flag,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

bool IsLoopbackTarget(absl::string_view target) {
  absl::ConsumePrefix(&target, "dns:///");
  absl::ConsumePrefix(&target, "ipv4:");
  absl::ConsumePrefix(&target, "ipv6:");
  absl::string_view host = target;
  if (absl::StartsWith(host, "[")) {
    host = host.substr(1, host.find(']') == absl::string_view::npos
                              ? 0
                              : host.find(']') - 1);
  } else if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (host == "localhost" || host == "::1") return true;
  return absl::StartsWith(host, "127.") &&
         host.find_first_not_of("0123456789.") == absl::string_view::npos;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> NewChannel(
    const std::string& target, const ChannelSecurity& security) {
  if (security.tls_cert.empty() != security.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (security.UsesTls()) {
    grpc::SslCredentialsOptions ssl;
    if (!security.tls_ca.empty()) {
      auto ca = ReadFile("tls-ca", security.tls_ca);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!security.tls_cert.empty()) {
      auto cert = ReadFile("tls-cert", security.tls_cert);
      if (!cert.ok()) return cert.status();
      auto key = ReadFile("tls-key", security.tls_key);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
  } else if (!security.token.empty()) {
    if (!IsLoopbackTarget(target)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "refusing to send a token to ", target,
          " without TLS: give --tls-ca (a token in clear text is readable "
          "by anyone on the path)"));
    }
    // Plain TCP that gRPC deems secure enough for call credentials because
    // the peer is on this machine.
    credentials = grpc::experimental::LocalCredentials(LOCAL_TCP);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  if (!security.token.empty()) {
    credentials = grpc::CompositeChannelCredentials(
        credentials, grpc::AccessTokenCredentials(security.token));
  }
  return grpc::CreateChannel(target, credentials);
}

std::vector<FlagSpec> SecurityFlagSpecs() {
  return {{"tls-ca"}, {"tls-cert"}, {"tls-key"}, {"token"}};
}

ChannelSecurity SecurityFromArgs(const std::vector<const ParsedArgs*>& sets,
                                 const char* env_token) {
  ChannelSecurity security;
  if (env_token != nullptr) security.token = env_token;
  for (const ParsedArgs* args : sets) {
    security.tls_ca = args->Get("tls-ca", security.tls_ca);
    security.tls_cert = args->Get("tls-cert", security.tls_cert);
    security.tls_key = args->Get("tls-key", security.tls_key);
    security.token = args->Get("token", security.token);
  }
  return security;
}

}  // namespace taskd
