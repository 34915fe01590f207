#include "api/strings/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace taskd {
namespace {

TEST(Utf8Test, Validity) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // cut 2-byte char
  EXPECT_FALSE(IsValidUtf8("\xE2\x82"));          // cut 3-byte char
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xFF"));
  EXPECT_FALSE(IsValidUtf8("\x80"));  // lone continuation
}

TEST(Utf8Test, TruncateNeverCutsACharacter) {
  // "é" is two bytes, "€" three, "😀" four: cut at every length.
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z";
  for (size_t n = 0; n <= text.size() + 1; ++n) {
    const std::string cut = TruncateUtf8(text, n);
    EXPECT_LE(cut.size(), n);
    EXPECT_TRUE(IsValidUtf8(cut)) << n;
    EXPECT_EQ(text.compare(0, cut.size(), cut), 0) << n;  // a prefix
  }
  EXPECT_EQ(TruncateUtf8(text, 2), "a");
  EXPECT_EQ(TruncateUtf8(text, 3), "a\xC3\xA9");
  EXPECT_EQ(TruncateUtf8(text, 100), text);
}

TEST(Utf8Test, ToValidReplacesBadBytesAndBoundsLength) {
  EXPECT_EQ(ToValidUtf8("ok"), "ok");
  EXPECT_EQ(ToValidUtf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(ToValidUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  const std::string fixed = ToValidUtf8(binary);
  EXPECT_TRUE(IsValidUtf8(fixed));
  for (size_t n = 0; n < 20; ++n) {
    const std::string cut = ToValidUtf8("\xC3\xA9\xFF\xC3\xA9", n);
    EXPECT_LE(cut.size(), n);
    EXPECT_TRUE(IsValidUtf8(cut));
  }
}

}  // namespace
}  // namespace taskd
