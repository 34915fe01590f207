// TokenTable: who may call taskd, as read from the --auth-tokens file.
//
// One entry per line; `#` starts a comment, blank lines are ignored:
//
//   sha256:<64 hex digits>  NAME  ROLES  [queues=PATTERN,...]
//   cn:<client certificate common name>  NAME  ROLES  [queues=PATTERN,...]
//
// `sha256:` entries hold the SHA-256 of a bearer token (never the token);
// `cn:` entries map an mTLS client certificate's subject common name to an
// identity. ROLES is a comma list of submit, read, work, admin. A queue
// pattern is a queue name in which `*` matches any run of characters and `?`
// one character (`build-*`); without `queues=` the entry may use every queue.
//
//   absl::StatusOr<TokenTable> table = TokenTable::Parse(text);
//   const Identity* who = table->FindToken(HashToken(bearer));
//
// FindToken compares the hash with every entry in constant time (no early
// exit), so response timing does not reveal how much of a hash matched.
//
// Immutable after Parse: safe for concurrent use.
#ifndef TASKD_SERVICES_AUTH_TOKEN_TABLE_H_
#define TASKD_SERVICES_AUTH_TOKEN_TABLE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/auth/token_hash.h"

namespace taskd {
namespace auth {

// Bit set of roles. kAdmin implies every other role.
enum Role : uint32_t {
  kSubmit = 1,  // SubmitTask, SubmitTasks, Cancel
  kRead = 2,    // GetTask, ListTasks, Await, Stream
  kWork = 4,    // WorkerService.Work
  kAdmin = 8,   // QueueService, ScheduleService, and everything above
};

// "submit,read" -> kSubmit|kRead. INVALID_ARGUMENT naming an unknown role.
absl::StatusOr<uint32_t> ParseRoles(absl::string_view text);
// kSubmit|kRead -> "submit,read".
std::string FormatRoles(uint32_t roles);

// Glob match of a queue pattern (`*`, `?`) against a queue name.
bool QueueMatches(absl::string_view pattern, absl::string_view queue);

// A queue pattern as a queue name may spell it, plus `*` and `?`.
bool ValidQueuePattern(absl::string_view pattern);

struct Identity {
  std::string name;
  uint32_t roles = 0;
  // Empty: every queue.
  std::vector<std::string> queues;

  bool Has(uint32_t role) const { return (roles & (role | kAdmin)) != 0; }
};

class TokenTable {
 public:
  using Hash = TokenHash;

  // An empty table: nobody is known.
  TokenTable() = default;

  // INVALID_ARGUMENT naming the line (1-based) and what is wrong with it.
  static absl::StatusOr<TokenTable> Parse(absl::string_view text);
  // Reads and parses `path`; NOT_FOUND / PERMISSION_DENIED when it cannot be
  // read.
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The identity whose token hashes to `hash`, or nullptr.
  const Identity* FindToken(const Hash& hash) const;
  // The identity mapped to a client certificate common name, or nullptr.
  const Identity* FindCommonName(absl::string_view common_name) const;

  size_t size() const { return tokens_.size() + names_.size(); }

 private:
  struct TokenEntry {
    Hash hash;
    Identity identity;
  };
  struct NameEntry {
    std::string common_name;
    Identity identity;
  };
  std::vector<TokenEntry> tokens_;
  std::vector<NameEntry> names_;
};

}  // namespace auth
}  // namespace taskd

#endif  // TASKD_SERVICES_AUTH_TOKEN_TABLE_H_
