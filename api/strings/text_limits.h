// How much of a worker's free text the server keeps. Longer text is cut on
// a character boundary (TruncateUtf8), never refused: a wordy message must
// not end a worker's stream. Worker SDKs cut to the same sizes before
// sending, so what they send is what is stored.
#ifndef TASKD_API_STRINGS_TEXT_LIMITS_H_
#define TASKD_API_STRINGS_TEXT_LIMITS_H_

#include <cstddef>

namespace taskd {

inline constexpr size_t kMaxProgressMessageBytes = 1024;
inline constexpr size_t kMaxErrorCodeBytes = 128;
inline constexpr size_t kMaxErrorMessageBytes = 4096;
inline constexpr size_t kMaxErrorDetailsBytes = 16384;

}  // namespace taskd

#endif  // TASKD_API_STRINGS_TEXT_LIMITS_H_
