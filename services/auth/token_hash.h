// Bearer tokens: making them and hashing them (SHA-256, OpenSSL's libcrypto).
// Shared by the server (which stores and compares hashes only) and
// `taskctl token new`.
//
//   std::string token = NewToken();             // "tdk_" + 43 base64url chars
//   std::string line = HashLine(token);         // "sha256:<64 hex>"
//
// Thread-safe.
#ifndef TASKD_SERVICES_AUTH_TOKEN_HASH_H_
#define TASKD_SERVICES_AUTH_TOKEN_HASH_H_

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace taskd {
namespace auth {

using TokenHash = std::array<unsigned char, 32>;

// SHA-256 of the token's bytes.
TokenHash HashToken(absl::string_view token);
// "sha256:" + lowercase hex of HashToken(token).
std::string HashLine(absl::string_view token);
// 256 random bits from the OS's CSPRNG, as "tdk_" + base64url. UNAVAILABLE
// if the generator fails.
absl::StatusOr<std::string> NewToken();
// Constant-time equality of two hashes.
bool HashesEqual(const TokenHash& a, const TokenHash& b);

}  // namespace auth
}  // namespace taskd

#endif  // TASKD_SERVICES_AUTH_TOKEN_HASH_H_
