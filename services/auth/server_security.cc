#include "services/auth/server_security.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace taskd {
namespace auth {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag,
                                    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot read ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", path, " is not PEM"));
  }
  return text.str();
}

// The certificate parses, the key parses and belongs to it; a certificate
// outside its validity period is worth a warning (it will be refused by
// every client until it is replaced on disk).
absl::Status CheckKeyPair(const std::string& cert_pem,
                          const std::string& key_pem,
                          std::vector<std::string>* warnings) {
  BIO* cert_bio = BIO_new_mem_buf(cert_pem.data(), cert_pem.size());
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  if (cert == nullptr) {
    return absl::InvalidArgumentError("--tls-cert: no certificate in the file");
  }
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), key_pem.size());
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  absl::Status status;
  if (key == nullptr) {
    status = absl::InvalidArgumentError(
        "--tls-key: no (unencrypted) private key in the file");
  } else if (X509_check_private_key(cert, key) != 1) {
    status = absl::InvalidArgumentError(
        "--tls-key: the key does not belong to the --tls-cert certificate");
  } else if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    warnings->push_back(
        "the --tls-cert certificate has expired: clients will refuse it "
        "until a new one is written to the same path");
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  return status;
}

}  // namespace

bool IsLoopbackListen(absl::string_view listen) {
  absl::string_view host = listen;
  absl::ConsumePrefix(&host, "ipv4:");
  absl::ConsumePrefix(&host, "ipv6:");
  if (absl::StartsWith(host, "[")) {
    size_t end = host.find(']');
    if (end == absl::string_view::npos) return false;
    host = host.substr(1, end - 1);
  } else if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (host == "localhost" || host == "::1") return true;
  // 127.0.0.0/8 as a dotted address, not a name that starts with "127.".
  return absl::StartsWith(host, "127.") &&
         host.find_first_not_of("0123456789.") == absl::string_view::npos;
}

absl::StatusOr<ServerSecurity> MakeServerSecurity(
    absl::string_view listen, const SecurityOptions& options) {
  ServerSecurity security;
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  const bool client_certs = !options.tls_client_ca.empty();
  const bool tokens = !options.auth_tokens.empty();
  const bool loopback = IsLoopbackListen(listen);
  if (tls && (options.tls_cert.empty() || options.tls_key.empty())) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together");
  }
  if (client_certs && !tls) {
    return absl::InvalidArgumentError(
        "--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS with "
        "client certificates)");
  }
  if (!loopback && tokens && !tls) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to accept bearer tokens in clear text on ", listen,
        ": give --tls-cert and --tls-key (tokens without TLS work on a "
        "loopback address only)"));
  }
  if (!loopback && !(tls && (tokens || client_certs))) {
    std::string missing =
        !tls ? "without TLS or any caller authentication"
             : "with TLS but without tokens or client certificates";
    if (!options.insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve ", listen, " ", missing,
          ": anyone who can reach it could submit, cancel, purge and "
          "receive every payload. Give --tls-cert/--tls-key and "
          "--auth-tokens (or --tls-client-ca), or --insecure if something "
          "in front of taskd (a service mesh, a private network) does this "
          "job"));
    }
    security.warnings.push_back(absl::StrCat(
        "--insecure: serving ", listen, " ", missing,
        "; every caller may do everything"));
  }

  std::vector<std::string> parts;
  if (tls) {
    auto cert = ReadPem("tls-cert", options.tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadPem("tls-key", options.tls_key);
    if (!key.ok()) return key.status();
    if (auto s = CheckKeyPair(*cert, *key, &security.warnings); !s.ok()) {
      return s;
    }
    if (client_certs) {
      if (auto ca = ReadPem("tls-client-ca", options.tls_client_ca);
          !ca.ok()) {
        return ca.status();
      }
    }
    const unsigned refresh = static_cast<unsigned>(std::max<int64_t>(
        1, absl::ToInt64Seconds(options.cert_refresh)));
    auto provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            options.tls_key, options.tls_cert,
            client_certs ? options.tls_client_ca : std::string(), refresh);
    grpc::experimental::TlsServerCredentialsOptions tls_options(provider);
    tls_options.watch_identity_key_cert_pairs();
    if (client_certs) {
      tls_options.watch_root_certs();
      tls_options.set_cert_request_type(
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    } else {
      tls_options.set_cert_request_type(
          GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    }
    security.credentials = grpc::experimental::TlsServerCredentials(tls_options);
    parts.push_back(client_certs ? "mTLS (client certificates required)"
                                 : "TLS");
  } else if (tokens) {
    security.credentials =
        grpc::experimental::LocalServerCredentials(LOCAL_TCP);
    parts.push_back("plain TCP, loopback peers only");
  } else {
    security.credentials = grpc::InsecureServerCredentials();
    parts.push_back("plain TCP");
  }
  if (security.credentials == nullptr) {
    return absl::InvalidArgumentError("gRPC refused the TLS settings");
  }
  if (tokens) {
    TokenAuthProcessor::Options processor_options;
    processor_options.tokens_path = options.auth_tokens;
    processor_options.watch_interval = options.tokens_watch;
    processor_options.on_denied = options.on_denied;
    processor_options.log = options.log;
    auto processor = TokenAuthProcessor::Create(std::move(processor_options));
    if (!processor.ok()) return processor.status();
    security.processor = *std::move(processor);
    security.credentials->SetAuthMetadataProcessor(security.processor);
    parts.push_back(absl::StrCat("tokens from ", options.auth_tokens));
  }
  security.summary = absl::StrJoin(parts, ", ");
  return security;
}

}  // namespace auth
}  // namespace taskd
