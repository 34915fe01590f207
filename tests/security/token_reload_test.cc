// The token file is re-read when it changes (and on SIGHUP, which calls
// TaskdServer::ReloadTokens: see clients_e2e_test.sh for the signal itself);
// a file that does not parse keeps the tokens in force.
#include <string>

#include "absl/strings/str_cat.h"
#include "clients/cpp/client.h"
#include "clients/cpp/connection.h"
#include "gtest/gtest.h"
#include "services/auth/token_hash.h"
#include "tests/security/security_test_util.h"

namespace taskd::testing {
namespace {

class TokenReloadTest : public ::testing::Test {
 protected:
  void Start(absl::Duration watch) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    path_ = absl::StrCat(tmp ? tmp : "/tmp", "/reload-tokens.txt");
    ReplaceFile(path_, auth::HashLine("old-token") + " old read\n");
    auth::SecurityOptions security;
    security.auth_tokens = path_;
    security.tokens_watch = watch;
    server_ = StartSecureServer(security);
  }

  absl::StatusCode ListWith(const std::string& token) {
    ChannelSecurity security;
    security.token = token;
    auto client = TaskClient::Connect(
        absl::StrCat("127.0.0.1:", server_->port()), security);
    if (!client.ok()) return client.status().code();
    v1::ListTasksRequest request;
    CallOptions options;
    options.timeout = absl::Seconds(10);
    return client->List(request, options).status().code();
  }

  std::string path_;
  std::unique_ptr<TaskdServer> server_;
};

TEST_F(TokenReloadTest, ChangedFileIsPickedUp) {
  Start(absl::Milliseconds(100));
  ASSERT_NE(server_, nullptr);
  EXPECT_EQ(ListWith("old-token"), absl::StatusCode::kOk);
  EXPECT_EQ(ListWith("new-token"), absl::StatusCode::kUnauthenticated);
  ReplaceFile(path_, auth::HashLine("new-token") + " new read\n");
  EXPECT_TRUE(Eventually(
      [&] { return ListWith("new-token") == absl::StatusCode::kOk; }));
  EXPECT_EQ(ListWith("old-token"), absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenReloadTest, ExplicitReloadAndBrokenFileKeepsOldTokens) {
  Start(absl::ZeroDuration());  // no watcher: only ReloadTokens (SIGHUP)
  ASSERT_NE(server_, nullptr);
  ReplaceFile(path_, auth::HashLine("new-token") + " new read\n");
  // Not watched: the old table stays until the reload.
  EXPECT_EQ(ListWith("new-token"), absl::StatusCode::kUnauthenticated);
  ASSERT_TRUE(server_->ReloadTokens().ok());
  EXPECT_EQ(ListWith("new-token"), absl::StatusCode::kOk);
  EXPECT_EQ(ListWith("old-token"), absl::StatusCode::kUnauthenticated);

  ReplaceFile(path_, "tdk_a-token-pasted-by-mistake new read\n");
  absl::Status broken = server_->ReloadTokens();
  EXPECT_EQ(broken.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(broken.message().find("line 1"), std::string::npos) << broken;
  EXPECT_EQ(ListWith("new-token"), absl::StatusCode::kOk);  // still in force
}

}  // namespace
}  // namespace taskd::testing
