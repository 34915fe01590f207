#include "scheduler/storage/storage.h"

#include "gtest/gtest.h"
#include "scheduler/storage/open_storage.h"
#include "scheduler/storage/storage_test_util.h"

namespace taskd {
namespace {

TEST(ParseDurabilityTest, AcceptsTheThreeModes) {
  EXPECT_EQ(*ParseDurability("sync"), Durability::kSync);
  EXPECT_EQ(*ParseDurability("async"), Durability::kAsync);
  EXPECT_EQ(*ParseDurability("memory"), Durability::kMemory);
  for (Durability d :
       {Durability::kSync, Durability::kAsync, Durability::kMemory}) {
    EXPECT_EQ(*ParseDurability(DurabilityName(d)), d);
  }
}

TEST(ParseDurabilityTest, RejectsOthersNamingTheFlag) {
  for (const char* bad : {"", "SYNC", "fsync", "sync "}) {
    absl::StatusOr<Durability> d = ParseDurability(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(d.status().message().find("--durability"),
              absl::string_view::npos)
        << d.status();
    EXPECT_NE(d.status().message().find("sync, async or memory"),
              absl::string_view::npos)
        << d.status();
  }
}

TEST(OpenStorageTest, MemoryNeedsNoDirectory) {
  absl::StatusOr<std::unique_ptr<Storage>> s =
      OpenStorage(Durability::kMemory, "");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE((*s)->Append({Mutation::PutMeta("k", "v")}).ok());
}

TEST(OpenStorageTest, DurableModesNeedADirectory) {
  absl::StatusOr<std::unique_ptr<Storage>> s =
      OpenStorage(Durability::kSync, "");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("--data-dir"), absl::string_view::npos);
}

TEST(OpenStorageTest, DurableModesPersist) {
  const std::string dir = NewTestDir("open_storage");
  for (Durability d : {Durability::kSync, Durability::kAsync}) {
    absl::StatusOr<std::unique_ptr<Storage>> s = OpenStorage(d, dir);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_TRUE(
        (*s)->Append({Mutation::PutMeta(std::string(DurabilityName(d)), "1")})
            .ok());
  }
  absl::StatusOr<std::unique_ptr<Storage>> s =
      OpenStorage(Durability::kSync, dir);
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<StoredState> state = ReadAll(**s);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->meta.size(), 2u);
}

}  // namespace
}  // namespace taskd
