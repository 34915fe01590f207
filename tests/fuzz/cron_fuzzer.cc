// Fuzzes the cron parser and the next-firing calculation: any expression
// parses or is refused with INVALID_ARGUMENT; an accepted one computes a
// firing strictly later than its input (or never), in bounded time.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "scheduler/cronlib/cron.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first 4 bytes choose the start time; the rest is the expression.
  uint32_t seed = 0;
  for (size_t i = 0; i < size && i < 4; ++i) seed = seed << 8 | data[i];
  const absl::string_view expr(
      reinterpret_cast<const char*>(data) + (size < 4 ? size : 4),
      size < 4 ? 0 : size - 4);
  auto schedule = taskd::CronSchedule::Parse(expr);
  if (!schedule.ok()) {
    if (!absl::IsInvalidArgument(schedule.status())) std::abort();
    return 0;
  }
  absl::Time t = absl::FromUnixSeconds(seed) + absl::Hours(24 * 365 * 30);
  for (int i = 0; i < 3; ++i) {
    absl::Time next = schedule->Next(t);
    if (next == absl::InfiniteFuture()) break;
    if (next <= t) std::abort();
    t = next;
  }
  return 0;
}
