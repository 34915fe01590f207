// Runs the C++ examples (examples/cpp) against a taskd child process and
// checks their output, and checks that every line of the README's
// "C++ (async)" code blocks is a line of one of the examples.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/memory_taskd.h"

namespace taskd {
namespace {

// Runs `command`, returns its stdout and sets `*exit_code`.
std::string RunCommand(const std::string& command, int* exit_code) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return out;
  }
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  *exit_code = pclose(pipe);
  return out;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

using CppExamplesTest = testing::MemoryTaskdTest;

TEST_F(CppExamplesTest, FanOut) {
  int code = 0;
  std::string out = RunCommand(
      absl::StrCat("examples/cpp/fan_out ", target()), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_TRUE(absl::StrContains(out, "sum of squares 1..10 = 385\n")) << out;
  EXPECT_TRUE(absl::StrContains(out, "first to finish: 121\n") ||
              absl::StrContains(out, "first to finish: 144\n"))
      << out;
}

TEST_F(CppExamplesTest, Pipeline) {
  int code = 0;
  std::string out = RunCommand(
      absl::StrCat("examples/cpp/pipeline ", target()), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "DKSAT\nCNYSA\n02++C\n");
}

TEST(CppExamplesReadmeTest, ReadmeQuotesTheExamples) {
  // The runfiles link to the sources; README.md sits two levels above them.
  std::error_code error;
  const std::filesystem::path source =
      std::filesystem::canonical("examples/cpp/fan_out.cc", error);
  ASSERT_FALSE(error) << error.message();
  const std::string readme =
      ReadFile(source.parent_path().parent_path().parent_path() / "README.md");
  ASSERT_FALSE(readme.empty());
  std::set<std::string> example_lines;
  for (const char* name : {"examples/cpp/fan_out.cc", "examples/cpp/pipeline.cc"}) {
    for (absl::string_view line : absl::StrSplit(ReadFile(name), '\n')) {
      example_lines.insert(std::string(absl::StripAsciiWhitespace(line)));
    }
  }
  const size_t start = readme.find("\n## C++ (async)\n");
  ASSERT_NE(start, std::string::npos) << "README has no C++ (async) section";
  const size_t end = readme.find("\n## ", start + 1);
  const std::string section = readme.substr(start, end - start);
  int quoted = 0;
  bool in_cpp = false;
  for (absl::string_view line : absl::StrSplit(section, '\n')) {
    if (absl::StartsWith(line, "```")) {
      in_cpp = !in_cpp && line == "```cpp";
      continue;
    }
    const std::string text(absl::StripAsciiWhitespace(line));
    if (!in_cpp || text.empty() || text == "...") continue;
    ++quoted;
    EXPECT_TRUE(example_lines.count(text)) << "README line not in the examples: " << text;
  }
  EXPECT_GE(quoted, 10);
}

}  // namespace
}  // namespace taskd
