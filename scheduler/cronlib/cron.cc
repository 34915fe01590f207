#include "scheduler/cronlib/cron.h"

#include <array>
#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace taskd {
namespace {

constexpr std::array<absl::string_view, 12> kMonthNames = {
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
    "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<absl::string_view, 7> kWeekdayNames = {
    "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct FieldSpec {
  absl::string_view name;
  int min;
  int max;
  // Names for min, min+1, ...; empty if the field takes numbers only.
  const absl::string_view* names;
  int name_count;
};

constexpr FieldSpec kMinuteField = {"minute", 0, 59, nullptr, 0};
constexpr FieldSpec kHourField = {"hour", 0, 23, nullptr, 0};
constexpr FieldSpec kDayField = {"day-of-month", 1, 31, nullptr, 0};
constexpr FieldSpec kMonthField = {"month", 1, 12, kMonthNames.data(), 12};
// 7 is accepted as a second Sunday and folded onto 0 after parsing.
constexpr FieldSpec kWeekdayField = {"day-of-week", 0, 7, kWeekdayNames.data(),
                                     7};

struct Macro {
  absl::string_view name;
  absl::string_view expansion;
};

constexpr std::array<Macro, 7> kMacros = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

// A field that parsed: its matching values and whether it starts with `*`.
struct ParsedField {
  uint64_t bits = 0;
  bool star = false;
};

absl::Status FieldError(const FieldSpec& spec, absl::string_view text,
                        absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(
      "cron: ", spec.name, " field \"", absl::CHexEscape(text), "\": ",
      problem));
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// One value of a field: a number or (month, day-of-week) a name.
absl::StatusOr<int> ParseValue(const FieldSpec& spec, absl::string_view field,
                               absl::string_view token) {
  if (token.empty()) {
    return FieldError(spec, field, "missing value");
  }
  if (AllDigits(token)) {
    // Long digit strings are out of range anyway; avoid overflow.
    if (token.size() > 4) {
      return FieldError(spec, field,
                        absl::StrCat("value ", token, " out of range ",
                                     spec.min, "-", spec.max));
    }
    int value = 0;
    for (char c : token) value = value * 10 + (c - '0');
    if (value < spec.min || value > spec.max) {
      return FieldError(spec, field,
                        absl::StrCat("value ", value, " out of range ",
                                     spec.min, "-", spec.max));
    }
    return value;
  }
  for (int i = 0; i < spec.name_count; ++i) {
    if (absl::EqualsIgnoreCase(token, spec.names[i])) return spec.min + i;
  }
  if (spec.name_count > 0 && token.size() == 3 &&
      absl::ascii_isalpha(static_cast<unsigned char>(token[0]))) {
    return FieldError(spec, field,
                      absl::StrCat("unknown name \"", absl::CHexEscape(token),
                                   "\""));
  }
  return FieldError(spec, field,
                    absl::StrCat("invalid value \"", absl::CHexEscape(token),
                                 "\""));
}

absl::StatusOr<ParsedField> ParseField(const FieldSpec& spec,
                                       absl::string_view field) {
  ParsedField out;
  out.star = absl::StartsWith(field, "*");
  for (absl::string_view item : absl::StrSplit(field, ',')) {
    if (item.empty()) return FieldError(spec, field, "empty list item");
    std::vector<absl::string_view> range_step = absl::StrSplit(item, '/');
    if (range_step.size() > 2) {
      return FieldError(spec, field,
                        absl::StrCat("more than one '/' in \"",
                                     absl::CHexEscape(item), "\""));
    }
    absl::string_view range = range_step[0];
    int step = 1;
    if (range_step.size() == 2) {
      absl::string_view step_text = range_step[1];
      if (step_text.empty()) return FieldError(spec, field, "missing step");
      if (!AllDigits(step_text) || step_text.size() > 4) {
        return FieldError(spec, field,
                          absl::StrCat("invalid step \"",
                                       absl::CHexEscape(step_text), "\""));
      }
      step = 0;
      for (char c : step_text) step = step * 10 + (c - '0');
      if (step == 0) return FieldError(spec, field, "step must be at least 1");
    }
    int lo, hi;
    if (range == "*") {
      lo = spec.min;
      hi = spec.max;
    } else {
      std::vector<absl::string_view> bounds = absl::StrSplit(range, '-');
      if (bounds.size() > 2) {
        return FieldError(spec, field,
                          absl::StrCat("invalid range \"",
                                       absl::CHexEscape(range), "\""));
      }
      absl::StatusOr<int> first = ParseValue(spec, field, bounds[0]);
      if (!first.ok()) return first.status();
      lo = *first;
      if (bounds.size() == 2) {
        absl::StatusOr<int> last = ParseValue(spec, field, bounds[1]);
        if (!last.ok()) return last.status();
        hi = *last;
        if (lo > hi) {
          return FieldError(spec, field,
                            absl::StrCat("range ", lo, "-", hi,
                                         " is reversed (start > end)"));
        }
      } else {
        // "a/n" runs from a to the field maximum; a bare "a" is just a.
        hi = range_step.size() == 2 ? spec.max : lo;
      }
    }
    for (int v = lo; v <= hi; v += step) out.bits |= uint64_t{1} << v;
  }
  return out;
}

// Lowest set bit of `mask` at position >= from, or -1.
int NextBit(uint64_t mask, int from) {
  if (from >= 64) return -1;
  uint64_t rest = mask >> from;
  if (rest == 0) return -1;
  return from + std::countr_zero(rest);
}

int Weekday(absl::CivilDay day) {
  switch (absl::GetWeekday(day)) {
    case absl::Weekday::sunday: return 0;
    case absl::Weekday::monday: return 1;
    case absl::Weekday::tuesday: return 2;
    case absl::Weekday::wednesday: return 3;
    case absl::Weekday::thursday: return 4;
    case absl::Weekday::friday: return 5;
    case absl::Weekday::saturday: return 6;
  }
  return 0;
}

int DaysInMonth(absl::CivilMonth month) {
  return static_cast<int>(absl::CivilDay(month + 1) - absl::CivilDay(month));
}

// The Gregorian calendar, weekdays included, repeats every 400 years
// (146097 days, a multiple of 7): a schedule with no firing in that window
// never fires.
constexpr int kGregorianCycleDays = 146097;

}  // namespace

absl::StatusOr<CronSchedule> CronSchedule::Parse(absl::string_view expr) {
  if (expr.size() > kMaxExpressionLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron: expression too long (", expr.size(),
                     " bytes, max ", kMaxExpressionLength, ")"));
  }
  absl::string_view body = absl::StripAsciiWhitespace(expr);
  if (absl::StartsWith(body, "@")) {
    absl::string_view expansion;
    for (const Macro& macro : kMacros) {
      if (absl::EqualsIgnoreCase(body, macro.name)) expansion = macro.expansion;
    }
    if (expansion.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cron: unknown macro \"", absl::CHexEscape(body),
          "\" (want @yearly, @annually, @monthly, @weekly, @daily, "
          "@midnight or @hourly)"));
    }
    body = expansion;
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(body, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("cron: want 5 fields (minute hour day-of-month month "
                     "day-of-week), got ",
                     fields.size()));
  }
  const FieldSpec* specs[5] = {&kMinuteField, &kHourField, &kDayField,
                               &kMonthField, &kWeekdayField};
  ParsedField parsed[5];
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<ParsedField> field = ParseField(*specs[i], fields[i]);
    if (!field.ok()) return field.status();
    parsed[i] = *field;
  }

  CronSchedule schedule;
  schedule.expr_ = std::string(expr);
  schedule.minutes_ = parsed[0].bits;
  schedule.hours_ = static_cast<uint32_t>(parsed[1].bits);
  schedule.days_ = static_cast<uint32_t>(parsed[2].bits);
  schedule.months_ = static_cast<uint32_t>(parsed[3].bits);
  uint64_t weekdays = parsed[4].bits;
  if (weekdays & (uint64_t{1} << 7)) weekdays = (weekdays | 1) & 0x7f;
  schedule.weekdays_ = static_cast<uint32_t>(weekdays);
  schedule.day_or_weekday_ = !parsed[2].star && !parsed[4].star;
  return schedule;
}

bool CronSchedule::DayMatches(absl::CivilDay day) const {
  bool dom = (days_ >> day.day()) & 1;
  bool dow = (weekdays_ >> Weekday(day)) & 1;
  return day_or_weekday_ ? (dom || dow) : (dom && dow);
}

absl::Time CronSchedule::Next(absl::Time after) const {
  if (after == absl::InfiniteFuture() || after == absl::InfinitePast()) {
    return absl::InfiniteFuture();
  }
  const absl::TimeZone utc = absl::UTCTimeZone();
  // ToCivilMinute floors (also before the epoch), so +1 is the first minute
  // strictly after `after`.
  const absl::CivilMinute start = absl::ToCivilMinute(after, utc) + 1;
  const absl::CivilDay last_day = absl::CivilDay(start) + kGregorianCycleDays;

  absl::CivilDay day(start);
  int hour = start.hour();
  int minute = start.minute();
  while (day <= last_day) {
    absl::CivilMonth month(day);
    if (!((months_ >> month.month()) & 1)) {
      day = absl::CivilDay(month + 1);
      hour = minute = 0;
      continue;
    }
    if (!DayMatches(day)) {
      // When both day fields must match, jump straight to the next listed
      // day of the month, or to the next month. (With OR, a weekday match
      // is at most 6 days away.)
      if (!day_or_weekday_) {
        int next = NextBit(days_, day.day() + 1);
        day = (next < 0 || next > DaysInMonth(month))
                  ? absl::CivilDay(month + 1)
                  : absl::CivilDay(day.year(), day.month(), next);
      } else {
        day += 1;
      }
      hour = minute = 0;
      continue;
    }
    int h = NextBit(hours_, hour);
    if (h == hour) {
      int m = NextBit(minutes_, minute);
      if (m >= 0) {
        return absl::FromCivil(
            absl::CivilMinute(day.year(), day.month(), day.day(), h, m), utc);
      }
      h = NextBit(hours_, hour + 1);
    }
    if (h >= 0) {
      return absl::FromCivil(absl::CivilMinute(day.year(), day.month(),
                                               day.day(), h,
                                               NextBit(minutes_, 0)),
                             utc);
    }
    day += 1;
    hour = minute = 0;
  }
  return absl::InfiniteFuture();
}

}  // namespace taskd
