// UTF-8 helpers for strings that travel in the API.
//
// Every proto3 `string` field must hold valid UTF-8: protobuf refuses to
// parse a message that does not, so one bad string sent or stored ends a
// stream or makes a stored record unreadable. Whoever shortens or composes a
// string that goes into such a field uses these:
//
//   error.set_message(TruncateUtf8(worker_text, 4096));   // cut on a boundary
//   error.set_details(ToValidUtf8(raw_stderr_tail));       // bytes -> text
//
// Pure functions; thread-safe.
#ifndef TASKD_API_STRINGS_UTF8_H_
#define TASKD_API_STRINGS_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace taskd {

// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), the rule protobuf applies.
bool IsValidUtf8(absl::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not
// end inside a character. Valid input gives valid output.
std::string TruncateUtf8(absl::string_view text, size_t max_bytes);

// `text` with every byte that is not part of a well-formed character
// replaced by U+FFFD, then cut to at most `max_bytes` on a character
// boundary. Always valid UTF-8.
std::string ToValidUtf8(absl::string_view text,
                        size_t max_bytes = std::string::npos);

}  // namespace taskd

#endif  // TASKD_API_STRINGS_UTF8_H_
