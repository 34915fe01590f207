#include "services/auth/token_table.h"

#include "gtest/gtest.h"
#include "services/auth/token_hash.h"

namespace taskd {
namespace auth {
namespace {

TEST(TokenTableTest, ParsesTokensNamesRolesAndScopes) {
  std::string ci = HashLine("ci-secret");
  auto table = TokenTable::Parse(
      "# comment\n\n" + ci +
      " ci-bot submit,read queues=build-*,deploy  # trailing\n"
      "cn:worker-images images work queues=images\n"
      "sha256:" + std::string(64, 'A') + " root admin\n");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->size(), 3u);
  const Identity* who = table->FindToken(HashToken("ci-secret"));
  ASSERT_NE(who, nullptr);
  EXPECT_EQ(who->name, "ci-bot");
  EXPECT_EQ(who->roles, kSubmit | kRead);
  EXPECT_TRUE(who->Has(kRead));
  EXPECT_FALSE(who->Has(kWork));
  EXPECT_EQ(who->queues, (std::vector<std::string>{"build-*", "deploy"}));
  EXPECT_EQ(table->FindToken(HashToken("ci-secreT")), nullptr);
  const Identity* images = table->FindCommonName("worker-images");
  ASSERT_NE(images, nullptr);
  EXPECT_EQ(images->name, "images");
  EXPECT_EQ(table->FindCommonName("worker"), nullptr);
}

TEST(TokenTableTest, AdminHasEveryRole) {
  Identity admin{"root", kAdmin, {}};
  for (uint32_t role : {kSubmit, kRead, kWork, kAdmin}) {
    EXPECT_TRUE(admin.Has(role));
  }
}

TEST(TokenTableTest, RejectsBadLinesNamingTheLine) {
  const std::string hash = HashLine("x");
  for (const std::string& bad : {
           std::string("tdk_plaintexttoken ci submit"),  // not a hash
           std::string("sha256:abcd ci submit"),        // short hash
           hash + " ci",                                  // no roles
           hash + " ci submit,fly",                       // unknown role
           hash + " ci submit queues=",                   // empty scope
           hash + " ci submit scopes=a",                  // not queues=
           hash + " ci submit queues=a/b",                // bad pattern
           hash + " a read\n" + hash + " b read",         // same key twice
       }) {
    auto table = TokenTable::Parse("# header\n" + bad);
    EXPECT_FALSE(table.ok()) << bad;
    // The duplicate is reported where it repeats.
    const char* line = bad.find('\n') == std::string::npos ? "line 2" : "line 3";
    EXPECT_NE(table.status().message().find(line), std::string::npos)
        << table.status();
  }
}

TEST(TokenTableTest, QueuePatterns) {
  EXPECT_TRUE(QueueMatches("build-*", "build-linux"));
  EXPECT_TRUE(QueueMatches("build-*", "build-"));
  EXPECT_FALSE(QueueMatches("build-*", "builds"));
  EXPECT_TRUE(QueueMatches("*", "anything"));
  EXPECT_TRUE(QueueMatches("img?", "img1"));
  EXPECT_FALSE(QueueMatches("img?", "img12"));
  EXPECT_TRUE(QueueMatches("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(QueueMatches("a*b*c", "aXXbYY"));
  EXPECT_TRUE(QueueMatches("images", "images"));
  EXPECT_FALSE(QueueMatches("images", "billing"));
}

TEST(TokenHashTest, NewTokensAreDistinctAndHashLinesStable) {
  auto a = NewToken();
  auto b = NewToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->rfind("tdk_", 0), 0u);
  EXPECT_GE(a->size(), 40u);
  // SHA-256("abc"), FIPS 180-2 test vector.
  EXPECT_EQ(HashLine("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61"
            "f20015ad");
  EXPECT_TRUE(HashesEqual(HashToken("x"), HashToken("x")));
  EXPECT_FALSE(HashesEqual(HashToken("x"), HashToken("y")));
}

TEST(RolesTest, ParseAndFormat) {
  EXPECT_EQ(*ParseRoles("read,submit"), kRead | kSubmit);
  EXPECT_EQ(FormatRoles(kSubmit | kRead), "submit,read");
  EXPECT_FALSE(ParseRoles("").ok());
  EXPECT_FALSE(ParseRoles("root").ok());
}

}  // namespace
}  // namespace auth
}  // namespace taskd
