#include "services/auth/server_security.h"

#include "gtest/gtest.h"

namespace taskd {
namespace auth {
namespace {

TEST(ServerSecurityTest, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackListen("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackListen("127.0.0.2:0"));
  EXPECT_TRUE(IsLoopbackListen("localhost:50051"));
  EXPECT_TRUE(IsLoopbackListen("[::1]:50051"));
  EXPECT_FALSE(IsLoopbackListen("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackListen("[::]:50051"));
  EXPECT_FALSE(IsLoopbackListen("10.0.0.7:50051"));
  EXPECT_FALSE(IsLoopbackListen("taskd.example.com:50051"));
  EXPECT_FALSE(IsLoopbackListen("127.example.com:1"));  // a name, not an IP
}

TEST(ServerSecurityTest, PlainOnLoopbackIsTheDefault) {
  auto security = MakeServerSecurity("127.0.0.1:50051", SecurityOptions{});
  ASSERT_TRUE(security.ok()) << security.status();
  EXPECT_EQ(security->summary, "plain TCP");
  EXPECT_TRUE(security->warnings.empty());
  EXPECT_EQ(security->processor, nullptr);
}

TEST(ServerSecurityTest, RefusesAnOpenNetworkAddressUnlessInsecure) {
  auto refused = MakeServerSecurity("0.0.0.0:50051", SecurityOptions{});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("--insecure"), std::string::npos);
  SecurityOptions insecure;
  insecure.insecure = true;
  auto allowed = MakeServerSecurity("0.0.0.0:50051", insecure);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  ASSERT_EQ(allowed->warnings.size(), 1u);
}

TEST(ServerSecurityTest, HalfGivenSettingsAreUsageErrors) {
  SecurityOptions cert_only;
  cert_only.tls_cert = "/nonexistent/cert.pem";
  EXPECT_EQ(MakeServerSecurity("127.0.0.1:1", cert_only).status().code(),
            absl::StatusCode::kInvalidArgument);
  SecurityOptions ca_only;
  ca_only.tls_client_ca = "/nonexistent/ca.pem";
  EXPECT_EQ(MakeServerSecurity("127.0.0.1:1", ca_only).status().code(),
            absl::StatusCode::kInvalidArgument);
  SecurityOptions missing_files;
  missing_files.tls_cert = "/nonexistent/cert.pem";
  missing_files.tls_key = "/nonexistent/key.pem";
  auto s = MakeServerSecurity("127.0.0.1:1", missing_files).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("/nonexistent/cert.pem"), std::string::npos);
}

TEST(ServerSecurityTest, TokensInClearTextOnlyOnLoopback) {
  SecurityOptions tokens;
  tokens.auth_tokens = "/nonexistent/tokens";
  tokens.insecure = true;  // does not make clear-text tokens acceptable
  EXPECT_EQ(MakeServerSecurity("0.0.0.0:1", tokens).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // On loopback the file is read (and here missing).
  EXPECT_EQ(MakeServerSecurity("127.0.0.1:1", tokens).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace auth
}  // namespace taskd
