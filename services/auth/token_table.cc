#include "services/auth/token_table.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace taskd {
namespace auth {
namespace {

constexpr struct {
  const char* name;
  Role role;
} kRoleNames[] = {
    {"submit", kSubmit}, {"read", kRead}, {"work", kWork}, {"admin", kAdmin}};

bool IsQueueChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == ':' || c == '-';
}

absl::Status LineError(int line, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("auth tokens line ", line, ": ", what));
}

}  // namespace

absl::StatusOr<uint32_t> ParseRoles(absl::string_view text) {
  uint32_t roles = 0;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    bool known = false;
    for (const auto& r : kRoleNames) {
      if (part == r.name) {
        roles |= r.role;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown role \"", part, "\" (roles: submit, read, work, admin)"));
    }
  }
  if (roles == 0) return absl::InvalidArgumentError("no roles given");
  return roles;
}

std::string FormatRoles(uint32_t roles) {
  std::vector<std::string> names;
  for (const auto& r : kRoleNames) {
    if (roles & r.role) names.push_back(r.name);
  }
  return absl::StrJoin(names, ",");
}

bool QueueMatches(absl::string_view pattern, absl::string_view queue) {
  // Iterative glob with one backtrack point: linear in practice, bounded by
  // |pattern| * |queue| (both at most 64 characters).
  size_t p = 0, q = 0, star = absl::string_view::npos, mark = 0;
  while (q < queue.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == queue[q])) {
      ++p;
      ++q;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = q;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      q = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool ValidQueuePattern(absl::string_view pattern) {
  if (pattern.empty() || pattern.size() > 64) return false;
  for (char c : pattern) {
    if (!IsQueueChar(c) && c != '*' && c != '?') return false;
  }
  return true;
}

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text) {
  TokenTable table;
  absl::flat_hash_set<std::string> seen;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    if (fields.size() < 3 || fields.size() > 4) {
      return LineError(line_number,
                       "want KEY NAME ROLES [queues=PATTERN,...] where KEY "
                       "is sha256:<hex> or cn:<common name>");
    }
    Identity identity;
    identity.name = std::string(fields[1]);
    auto roles = ParseRoles(fields[2]);
    if (!roles.ok()) return LineError(line_number, roles.status().message());
    identity.roles = *roles;
    if (fields.size() == 4) {
      if (!absl::ConsumePrefix(&fields[3], "queues=")) {
        return LineError(line_number, "the fourth field must be queues=...");
      }
      for (absl::string_view pattern :
           absl::StrSplit(fields[3], ',', absl::SkipEmpty())) {
        if (!ValidQueuePattern(pattern)) {
          return LineError(line_number,
                           absl::StrCat("invalid queue pattern \"",
                                        absl::CHexEscape(pattern), "\""));
        }
        identity.queues.emplace_back(pattern);
      }
      if (identity.queues.empty()) {
        return LineError(line_number, "queues= names no queue");
      }
    }
    absl::string_view key = fields[0];
    if (!seen.insert(std::string(key)).second) {
      return LineError(line_number, "the same key appears twice");
    }
    if (absl::ConsumePrefix(&key, "sha256:")) {
      std::string hex = absl::AsciiStrToLower(key);
      if (hex.size() != 64 ||
          hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return LineError(line_number,
                         "sha256: must be followed by 64 hex digits (the "
                         "hash of the token, see `taskctl token new`)");
      }
      std::string bytes = absl::HexStringToBytes(hex);
      TokenEntry entry;
      std::copy(bytes.begin(), bytes.end(), entry.hash.begin());
      entry.identity = std::move(identity);
      table.tokens_.push_back(std::move(entry));
    } else if (absl::ConsumePrefix(&key, "cn:")) {
      if (key.empty()) return LineError(line_number, "cn: names nobody");
      table.names_.push_back({std::string(key), std::move(identity)});
    } else {
      return LineError(line_number,
                       "the key must start with sha256: or cn: (a token "
                       "itself never goes in this file)");
    }
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read auth tokens file ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto table = Parse(text.str());
  if (!table.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", table.status().message()));
  }
  return table;
}

const Identity* TokenTable::FindToken(const Hash& hash) const {
  // Every entry is compared, match or not.
  const Identity* found = nullptr;
  for (const TokenEntry& entry : tokens_) {
    if (HashesEqual(entry.hash, hash)) found = &entry.identity;
  }
  return found;
}

const Identity* TokenTable::FindCommonName(
    absl::string_view common_name) const {
  for (const NameEntry& entry : names_) {
    if (entry.common_name == common_name) return &entry.identity;
  }
  return nullptr;
}

}  // namespace auth
}  // namespace taskd
