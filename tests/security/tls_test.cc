// TLS and mTLS end to end against an in-process taskd, with certificates
// made by make_certs.sh: what is accepted, what is refused, and a server
// certificate rotated on disk being served without a restart.
#include <grpcpp/generic/generic_stub.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "clients/cpp/client.h"
#include "clients/cpp/connection.h"
#include "gtest/gtest.h"
#include "tests/security/security_test_util.h"

namespace taskd::testing {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new std::string(MakeCerts("certs")); }
  static void TearDownTestSuite() { delete certs_; }

  static std::string Cert(const std::string& name) {
    return absl::StrCat(*certs_, "/", name);
  }

  auth::SecurityOptions ServerTls(const std::string& leaf = "server") {
    auth::SecurityOptions security;
    security.tls_cert = Cert(leaf + ".pem");
    security.tls_key = Cert(leaf + ".key");
    return security;
  }

  // One SubmitTask over a new channel; its status.
  absl::Status Submit(const TaskdServer& server,
                      const ChannelSecurity& security) {
    auto client = TaskClient::Connect(
        absl::StrCat("localhost:", server.port()), security);
    if (!client.ok()) return client.status();
    v1::TaskSpec spec;
    spec.set_type("probe");
    CallOptions options;
    options.timeout = absl::Seconds(10);
    return client->Submit(spec, options).status();
  }

  static ChannelSecurity Trusting(const std::string& ca) {
    ChannelSecurity security;
    security.tls_ca = Cert(ca);
    return security;
  }

  static std::string* certs_;
};

std::string* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, ClientTrustingTheCaIsServed) {
  auto server = StartSecureServer(ServerTls());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->security_summary(), "TLS");
  EXPECT_TRUE(Submit(*server, Trusting("ca.pem")).ok());
}

TEST_F(TlsTest, ClientThatDoesNotTrustTheCaIsRefused) {
  auto server = StartSecureServer(ServerTls());
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(Submit(*server, Trusting("other-ca.pem")).code(),
            absl::StatusCode::kUnavailable);
  // A plaintext client gets no service either.
  EXPECT_EQ(Submit(*server, ChannelSecurity{}).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, ExpiredServerCertificateIsRefusedByClients) {
  auto server = StartSecureServer(ServerTls("expired"));
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(server->security_warnings().size(), 1u);
  EXPECT_NE(server->security_warnings()[0].find("expired"), std::string::npos);
  EXPECT_EQ(Submit(*server, Trusting("ca.pem")).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, MutualTlsRequiresACertificateFromTheClientCa) {
  auth::SecurityOptions security = ServerTls();
  security.tls_client_ca = Cert("ca.pem");
  auto server = StartSecureServer(security);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->security_summary(), "mTLS (client certificates required)");

  ChannelSecurity no_cert = Trusting("ca.pem");
  EXPECT_EQ(Submit(*server, no_cert).code(), absl::StatusCode::kUnavailable);

  ChannelSecurity wrong_ca = Trusting("ca.pem");
  wrong_ca.tls_cert = Cert("client-other.pem");
  wrong_ca.tls_key = Cert("client-other.key");
  EXPECT_EQ(Submit(*server, wrong_ca).code(), absl::StatusCode::kUnavailable);

  ChannelSecurity good = Trusting("ca.pem");
  good.tls_cert = Cert("client.pem");
  good.tls_key = Cert("client.key");
  EXPECT_TRUE(Submit(*server, good).ok());
}

TEST_F(TlsTest, ServerWithTheWrongClientCaRefusesGoodClients) {
  auth::SecurityOptions security = ServerTls();
  security.tls_client_ca = Cert("other-ca.pem");
  auto server = StartSecureServer(security);
  ASSERT_NE(server, nullptr);
  ChannelSecurity client = Trusting("ca.pem");
  client.tls_cert = Cert("client.pem");
  client.tls_key = Cert("client.key");
  EXPECT_EQ(Submit(*server, client).code(), absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, RotatedCertificateIsServedWithoutRestart) {
  // A copy the test may overwrite.
  const std::string cert = Cert("rotating.pem");
  const std::string key = Cert("rotating.key");
  ReplaceFile(cert, ReadAll(Cert("server.pem")));
  ReplaceFile(key, ReadAll(Cert("server.key")));
  auth::SecurityOptions security;
  security.tls_cert = cert;
  security.tls_key = key;
  security.cert_refresh = absl::Seconds(1);
  auto server = StartSecureServer(security);
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(Submit(*server, Trusting("ca.pem")).ok());
  ASSERT_FALSE(Submit(*server, Trusting("other-ca.pem")).ok());

  // The new pair, signed by the other CA. Key first: until the certificate
  // follows, the pair does not match and gRPC keeps serving the old one.
  ReplaceFile(key, ReadAll(Cert("server-other.key")));
  ReplaceFile(cert, ReadAll(Cert("server-other.pem")));
  EXPECT_TRUE(Eventually(
      [&] { return Submit(*server, Trusting("other-ca.pem")).ok(); }))
      << "the rotated certificate was not served within 20 s";
  EXPECT_EQ(Submit(*server, Trusting("ca.pem")).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(TlsTest, HealthOnlyPortIsPlainForProbes) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.health_listen = "127.0.0.1:0";
  options.security = ServerTls();
  TaskdServer server(options);
  ASSERT_TRUE(server.Start().ok());
  ASSERT_NE(server.health_port(), 0);
  auto channel = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", server.health_port()),
      grpc::InsecureChannelCredentials());
  auto call = [&](const std::string& method) {
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    grpc::CompletionQueue cq;
    auto rpc = stub.PrepareUnaryCall(&context, method, request, &cq);
    rpc->StartCall();
    grpc::Status status;
    rpc->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    cq.Next(&tag, &ok);
    return status.error_code();
  };
  EXPECT_EQ(call("/grpc.health.v1.Health/Check"), grpc::StatusCode::OK);
  // Nothing else is served there.
  EXPECT_EQ(call("/taskd.v1.QueueService/ListQueues"),
            grpc::StatusCode::UNIMPLEMENTED);
  server.Shutdown();
}

TEST_F(TlsTest, ClientCertificateCommonNameMapsToRoles) {
  // cn:worker-images may submit to `images` only; no token needed.
  const std::string tokens = Cert("cn-tokens.txt");
  ReplaceFile(tokens, "cn:worker-images images-bot submit queues=images\n");
  auth::SecurityOptions security = ServerTls();
  security.tls_client_ca = Cert("ca.pem");
  security.auth_tokens = tokens;
  auto server = StartSecureServer(security);
  ASSERT_NE(server, nullptr);
  ChannelSecurity client = Trusting("ca.pem");
  client.tls_cert = Cert("client.pem");
  client.tls_key = Cert("client.key");
  auto connected = TaskClient::Connect(
      absl::StrCat("localhost:", server->port()), client);
  ASSERT_TRUE(connected.ok());
  v1::TaskSpec spec;
  spec.set_type("resize");
  spec.set_queue("images");
  EXPECT_TRUE(connected->Submit(spec).ok());
  spec.set_queue("billing");
  EXPECT_EQ(connected->Submit(spec).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(connected->Get("nope").status().code(),
            absl::StatusCode::kPermissionDenied);  // no read role
}

}  // namespace
}  // namespace taskd::testing
