// Cron expressions for periodic schedules: parses the classic 5-field
// (Vixie cron) syntax and computes the next firing time in UTC at minute
// resolution.
//
//   absl::StatusOr<CronSchedule> s = CronSchedule::Parse("*/15 9-17 * * MON-FRI");
//   if (!s.ok()) return s.status();
//   absl::Time next = s->Next(now);  // first firing strictly after `now`
//
// Syntax: "minute hour day-of-month month day-of-week", separated by spaces or
// tabs. Ranges: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or
// JAN-DEC, day-of-week 0-7 (0 and 7 are Sunday) or SUN-SAT; names are
// case-insensitive. Each field is a comma-separated list of items; an item is
// `*`, `a`, `a-b`, `*/n`, `a-b/n` or `a/n` (a to the field maximum, step n).
// Macros: @yearly @annually @monthly @weekly @daily @midnight @hourly.
//
// Day rule (as in Vixie cron): if both day-of-month and day-of-week are
// restricted, a day matches when EITHER matches; if either field starts with
// `*` (this includes `*/n`), both must match.
//
// CronSchedule is an immutable value type: safe to copy and to use from any
// number of threads concurrently.
#ifndef TASKD_SCHEDULER_CRONLIB_CRON_H_
#define TASKD_SCHEDULER_CRONLIB_CRON_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace taskd {

class CronSchedule {
 public:
  // Longest expression Parse accepts, in bytes.
  static constexpr size_t kMaxExpressionLength = 256;

  // Parses `expr`. Returns INVALID_ARGUMENT naming the offending field and the
  // problem, e.g. `cron: minute field "61": value 61 out of range 0-59`.
  static absl::StatusOr<CronSchedule> Parse(absl::string_view expr);

  // The first firing strictly after `after`, in UTC. The seconds of `after`
  // are ignored when looking for the minute, but a firing at exactly `after`
  // (or earlier within its minute) does not count. Returns
  // absl::InfiniteFuture() if the schedule never fires (e.g. "0 0 30 2 *")
  // or `after` is infinite. Skips whole months and days; a schedule that
  // never fires costs about 10^4 cheap steps (one 400-year calendar cycle).
  absl::Time Next(absl::Time after) const;

  // The expression exactly as passed to Parse.
  const std::string& ToString() const { return expr_; }

 private:
  CronSchedule() = default;

  bool DayMatches(absl::CivilDay day) const;

  // Constant after construction. Bit i set means value i matches.
  std::string expr_;
  uint64_t minutes_ = 0;  // bits 0-59
  uint32_t hours_ = 0;    // bits 0-23
  uint32_t days_ = 0;     // bits 1-31 (day of month)
  uint32_t months_ = 0;   // bits 1-12
  uint32_t weekdays_ = 0; // bits 0-6, 0 = Sunday
  // Vixie rule: true iff neither day field starts with `*`.
  bool day_or_weekday_ = false;
};

}  // namespace taskd

#endif  // TASKD_SCHEDULER_CRONLIB_CRON_H_
