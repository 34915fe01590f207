#include "scheduler/cronlib/cron.h"

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

// "YYYY-MM-DD HH:MM:SS" in UTC; "inf" for absl::InfiniteFuture().
absl::Time T(absl::string_view text) {
  if (text == "inf") return absl::InfiniteFuture();
  absl::Time t;
  std::string err;
  if (!absl::ParseTime("%Y-%m-%d %H:%M:%S", text, absl::UTCTimeZone(), &t,
                       &err)) {
    ADD_FAILURE() << "bad test time \"" << text << "\": " << err;
  }
  return t;
}

std::string Show(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %a", t, absl::UTCTimeZone());
}

struct NextCase {
  const char* expr;
  const char* after;
  const char* want;
};

// Weekdays for reference: 2025-01-01 Wed, 2025-01-03 Fri, 2025-01-05 Sun,
// 2025-01-06 Mon, 2028-02-29 Tue, 2104-02-29 Fri.
const NextCase kNextCases[] = {
    // Every minute; seconds of `after` are dropped, a firing at `after` is
    // skipped.
    {"* * * * *", "2025-01-01 10:00:00", "2025-01-01 10:01:00"},
    {"* * * * *", "2025-01-01 10:00:30", "2025-01-01 10:01:00"},
    {"* * * * *", "2025-01-01 10:00:59", "2025-01-01 10:01:00"},
    {"* * * * *", "2025-12-31 23:59:00", "2026-01-01 00:00:00"},
    {"* * * * *", "1969-12-31 23:59:30", "1970-01-01 00:00:00"},
    // Steps.
    {"*/15 * * * *", "2025-01-01 10:07:00", "2025-01-01 10:15:00"},
    {"*/15 * * * *", "2025-01-01 10:15:00", "2025-01-01 10:30:00"},
    {"*/15 * * * *", "2025-01-01 10:14:59", "2025-01-01 10:15:00"},
    {"*/15 * * * *", "2025-01-01 10:45:00", "2025-01-01 11:00:00"},
    {"*/15 * * * *", "2025-12-31 23:50:00", "2026-01-01 00:00:00"},
    {"10-30/7 * * * *", "2025-01-01 10:17:00", "2025-01-01 10:24:00"},
    {"10-30/7 * * * *", "2025-01-01 10:25:00", "2025-01-01 11:10:00"},
    {"5/20 * * * *", "2025-01-01 10:46:00", "2025-01-01 11:05:00"},
    {"5/20 * * * *", "2025-01-01 10:05:00", "2025-01-01 10:25:00"},
    {"0 9-17/4 * * *", "2025-01-01 13:00:00", "2025-01-01 17:00:00"},
    {"0 9-17/4 * * *", "2025-01-01 17:00:00", "2025-01-02 09:00:00"},
    {"30 */6 * * *", "2025-01-01 18:30:00", "2025-01-02 00:30:00"},
    // Ranges and lists.
    {"0-4 3 * * *", "2025-01-01 03:04:00", "2025-01-02 03:00:00"},
    {"0,30 8,20 * * *", "2025-01-01 08:30:00", "2025-01-01 20:00:00"},
    {"0,30 8,20 * * *", "2025-01-01 20:30:00", "2025-01-02 08:00:00"},
    {"1,2-3,50-59/5 * * * *", "2025-01-01 10:03:00", "2025-01-01 10:50:00"},
    {"1,2-3,50-59/5 * * * *", "2025-01-01 10:55:00", "2025-01-01 11:01:00"},
    // Month names, any case.
    {"0 0 1 JAN,jul *", "2025-02-10 00:00:00", "2025-07-01 00:00:00"},
    {"0 0 1 Jun-Aug *", "2025-09-01 00:00:00", "2026-06-01 00:00:00"},
    {"0 0 1 6-8 *", "2025-06-01 00:00:00", "2025-07-01 00:00:00"},
    // Weekday names, 0 and 7 both Sunday.
    {"0 12 * * MON-FRI", "2025-01-03 12:00:00", "2025-01-06 12:00:00"},
    {"0 12 * * mon-fri", "2025-01-03 11:59:00", "2025-01-03 12:00:00"},
    {"0 0 * * 7", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
    {"0 0 * * 0", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
    {"0 0 * * sun", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
    {"0 0 * * 6-7", "2025-01-04 00:00:00", "2025-01-05 00:00:00"},
    {"0 0 * * 6-7", "2025-01-05 00:00:00", "2025-01-11 00:00:00"},
    {"0 0 * * 0-7/7", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
    {"0 0 * jan sun", "2025-01-26 00:00:00", "2026-01-04 00:00:00"},
    // Day rule: both restricted -> OR; otherwise AND.
    {"0 0 13 * FRI", "2025-01-01 00:00:00", "2025-01-03 00:00:00"},
    {"0 0 13 * FRI", "2025-01-10 00:00:00", "2025-01-13 00:00:00"},
    {"0 0 13 * *", "2025-01-01 00:00:00", "2025-01-13 00:00:00"},
    {"0 0 * * FRI", "2025-01-01 00:00:00", "2025-01-03 00:00:00"},
    {"0 0 */2 * MON", "2025-01-01 00:00:00", "2025-01-13 00:00:00"},
    {"0 0 13 * */1", "2025-01-01 00:00:00", "2025-01-13 00:00:00"},
    {"0 0 1-7 * 1", "2025-01-01 00:00:00", "2025-01-02 00:00:00"},
    // Leap days.
    {"0 0 29 2 *", "2025-03-01 00:00:00", "2028-02-29 00:00:00"},
    {"0 0 29 2 *", "2028-02-28 23:59:59", "2028-02-29 00:00:00"},
    {"0 0 29 2 *", "2096-03-01 00:00:00", "2104-02-29 00:00:00"},
    {"0 0 29 2 5", "2025-01-01 00:00:00", "2025-02-07 00:00:00"},
    // End of month and end of year.
    {"0 0 31 * *", "2025-01-31 00:00:00", "2025-03-31 00:00:00"},
    {"0 0 31 * *", "2025-03-31 00:00:00", "2025-05-31 00:00:00"},
    {"59 23 30 * *", "2025-01-30 23:59:00", "2025-03-30 23:59:00"},
    {"59 23 31 12 *", "2025-12-31 23:59:00", "2026-12-31 23:59:00"},
    {"0 0 1 1 *", "2025-06-01 00:00:00", "2026-01-01 00:00:00"},
    // Macros.
    {"@yearly", "2025-12-31 23:59:59", "2026-01-01 00:00:00"},
    {"@annually", "2026-01-01 00:00:00", "2027-01-01 00:00:00"},
    {"@monthly", "2025-01-15 08:00:00", "2025-02-01 00:00:00"},
    {"@weekly", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
    {"@daily", "2025-01-01 00:00:00", "2025-01-02 00:00:00"},
    {"@midnight", "2025-02-28 12:00:00", "2025-03-01 00:00:00"},
    {"@hourly", "2025-01-01 10:00:00", "2025-01-01 11:00:00"},
    {" @HOURLY ", "2025-01-01 10:59:59", "2025-01-01 11:00:00"},
    // Whitespace between fields.
    {"  0\t0  *  * *  ", "2025-01-01 00:00:00", "2025-01-02 00:00:00"},
    {"0 0 * * *\n", "2025-01-01 00:00:00", "2025-01-02 00:00:00"},
    // Never fires.
    {"0 0 30 2 *", "2025-01-01 00:00:00", "inf"},
    {"0 0 31 4,6,9,11 *", "2025-01-01 00:00:00", "inf"},
    {"0 0 31 2 */2", "2025-01-01 00:00:00", "inf"},
};

TEST(CronScheduleTest, NextTable) {
  int checked = 0;
  for (const NextCase& c : kNextCases) {
    SCOPED_TRACE(absl::StrCat("expr \"", c.expr, "\" after ", c.after));
    absl::StatusOr<CronSchedule> s = CronSchedule::Parse(c.expr);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::Time got = s->Next(T(c.after));
    EXPECT_EQ(got, T(c.want)) << "got " << Show(got) << ", want " << c.want;
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST(CronScheduleTest, SubsecondAndInfiniteInputs) {
  absl::StatusOr<CronSchedule> s = CronSchedule::Parse("* * * * *");
  ASSERT_TRUE(s.ok());
  const absl::Time t = T("2025-01-01 10:00:00");
  EXPECT_EQ(s->Next(t + absl::Nanoseconds(1)), t + absl::Minutes(1));
  EXPECT_EQ(s->Next(t - absl::Nanoseconds(1)), t);
  EXPECT_EQ(s->Next(absl::InfiniteFuture()), absl::InfiniteFuture());
  EXPECT_EQ(s->Next(absl::InfinitePast()), absl::InfiniteFuture());
}

TEST(CronScheduleTest, ToStringReturnsOriginalAndCopiesAreEqual) {
  for (absl::string_view expr : {"*/5 * * * *", " @daily", "0 0 * * 7"}) {
    absl::StatusOr<CronSchedule> s = CronSchedule::Parse(expr);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->ToString(), expr);
    CronSchedule copy = *s;
    EXPECT_EQ(copy.ToString(), expr);
    const absl::Time t = T("2025-05-05 05:05:05");
    EXPECT_EQ(copy.Next(t), s->Next(t));
  }
}

TEST(CronScheduleTest, MaxLengthAccepted) {
  std::string expr = "0 0 * * *";
  expr.append(CronSchedule::kMaxExpressionLength - expr.size(), ' ');
  EXPECT_TRUE(CronSchedule::Parse(expr).ok());
  expr.push_back(' ');
  EXPECT_FALSE(CronSchedule::Parse(expr).ok());
}

struct InvalidCase {
  std::string expr;
  // Must appear in the message; the field name where one applies.
  std::string want;
};

TEST(CronScheduleTest, InvalidExpressions) {
  const InvalidCase cases[] = {
      {"61 * * * *", "cron: minute field \"61\": value 61 out of range 0-59"},
      {"* * * * * *",
       "cron: want 5 fields (minute hour day-of-month month day-of-week), "
       "got 6"},
      {"", "got 0"},
      {"   ", "got 0"},
      {"* * * *", "got 4"},
      {"* 24 * * *", "hour field \"24\": value 24 out of range 0-23"},
      {"* * 0 * *", "day-of-month field \"0\": value 0 out of range 1-31"},
      {"* * 32 * *", "day-of-month field \"32\": value 32 out of range 1-31"},
      {"* * * 13 *", "month field \"13\": value 13 out of range 1-12"},
      {"* * * 0 *", "month field \"0\": value 0 out of range 1-12"},
      {"* * * * 8", "day-of-week field \"8\": value 8 out of range 0-7"},
      {"99999 * * * *", "minute field \"99999\": value 99999 out of range"},
      {"*/0 * * * *", "minute field \"*/0\": step must be at least 1"},
      {"* 1-5/0 * * *", "hour field \"1-5/0\": step must be at least 1"},
      {"*/ * * * *", "minute field \"*/\": missing step"},
      {"*/x * * * *", "minute field \"*/x\": invalid step \"x\""},
      {"*/-1 * * * *", "minute field \"*/-1\": invalid step"},
      {"*/5/2 * * * *", "minute field \"*/5/2\": more than one '/'"},
      {"* 5-2 * * *", "hour field \"5-2\": range 5-2 is reversed"},
      {"* * * * FRI-SUN", "day-of-week field \"FRI-SUN\": range 5-0 is reversed"},
      {"* * * * 1,,2", "day-of-week field \"1,,2\": empty list item"},
      {",1 * * * *", "minute field \",1\": empty list item"},
      {"1, * * * *", "minute field \"1,\": empty list item"},
      {"1x * * * *", "minute field \"1x\": invalid value \"1x\""},
      {"MON * * * *", "minute field \"MON\": invalid value \"MON\""},
      {"* * * FOO *", "month field \"FOO\": unknown name \"FOO\""},
      {"* * * * MONDAY", "day-of-week field \"MONDAY\": invalid value"},
      {"* * * * SUN/x", "day-of-week field \"SUN/x\": invalid step"},
      {"-5 * * * *", "minute field \"-5\": missing value"},
      {"5- * * * *", "minute field \"5-\": missing value"},
      {"*-5 * * * *", "minute field \"*-5\": invalid value \"*\""},
      {"1-2-3 * * * *", "minute field \"1-2-3\": invalid range"},
      {"* * L * *", "day-of-month field \"L\": invalid value"},
      {"* * ? * *", "day-of-month field \"?\": invalid value"},
      {"0 0 L-1 * *", "day-of-month field \"L-1\": invalid value"},
      {"1.5 * * * *", "minute field \"1.5\": invalid value"},
      {std::string("0\x01 * * * *"), "minute field \"0\\x01\": invalid value"},
      {"0 0\n* * * *", "hour field \"0\\n*\": invalid value"},
      {"@reboot", "cron: unknown macro \"@reboot\""},
      {"@daily 0", "unknown macro"},
      {std::string(257, '*'), "cron: expression too long (257 bytes, max 256)"},
  };
  for (const InvalidCase& c : cases) {
    SCOPED_TRACE(absl::StrCat("expr \"", absl::CHexEscape(c.expr), "\""));
    absl::StatusOr<CronSchedule> s = CronSchedule::Parse(c.expr);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(c.want), absl::string_view::npos)
        << "message: " << s.status().message() << "\nwant substring: "
        << c.want;
  }
}

TEST(CronScheduleTest, ConcurrentNextOnSharedSchedule) {
  absl::StatusOr<CronSchedule> parsed =
      CronSchedule::Parse("*/7 3-20/3 1,15 * MON-FRI");
  ASSERT_TRUE(parsed.ok());
  const CronSchedule& s = *parsed;
  std::vector<absl::Time> want;
  absl::Time t = T("2025-01-01 00:00:00");
  for (int i = 0; i < 500; ++i) want.push_back(t = s.Next(t));
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&s, &want] {
      absl::Time t = T("2025-01-01 00:00:00");
      for (const absl::Time& w : want) {
        t = s.Next(t);
        EXPECT_EQ(t, w);
      }
    });
  }
  for (std::thread& th : threads) th.join();
}

// ---------------------------------------------------------------------------
// Property test: random expressions whose meaning the generator knows, checked
// against a brute-force matcher written independently of cron.cc.

struct FieldRange {
  int min;
  int max;
  std::vector<std::string> names;  // for min, min+1, ... (may be shorter)
};

struct GenField {
  std::string text;
  std::set<int> values;  // as written; 7 stays 7 for day-of-week
};

class ExprGenerator {
 public:
  explicit ExprGenerator(uint32_t seed) : rng_(seed) {}

  int Uniform(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }

  std::string Value(const FieldRange& f, int v) {
    int i = v - f.min;
    if (i < static_cast<int>(f.names.size()) && Uniform(0, 2) == 0) {
      std::string name = f.names[i];
      if (Uniform(0, 1)) name = absl::AsciiStrToLower(name);
      return name;
    }
    return absl::StrCat(v);
  }

  // One list item, not starting with '*'.
  void Item(const FieldRange& f, GenField& out, std::vector<std::string>& parts) {
    int a = Uniform(f.min, f.max);
    int b = Uniform(a, f.max);
    int step = Uniform(1, f.max - f.min + 1);
    switch (Uniform(0, 2)) {
      case 0:
        parts.push_back(Value(f, a));
        out.values.insert(a);
        break;
      case 1:
        if (Uniform(0, 1)) {
          parts.push_back(absl::StrCat(Value(f, a), "-", Value(f, b)));
          step = 1;
        } else {
          parts.push_back(
              absl::StrCat(Value(f, a), "-", Value(f, b), "/", step));
        }
        for (int v = a; v <= b; v += step) out.values.insert(v);
        break;
      case 2:
        parts.push_back(absl::StrCat(Value(f, a), "/", step));
        for (int v = a; v <= f.max; v += step) out.values.insert(v);
        break;
    }
  }

  GenField Field(const FieldRange& f) {
    GenField out;
    std::vector<std::string> parts;
    int kind = Uniform(0, 9);
    if (kind < 4) {
      parts.push_back("*");
      for (int v = f.min; v <= f.max; ++v) out.values.insert(v);
    } else if (kind < 6) {
      int step = Uniform(1, f.max - f.min + 1);
      parts.push_back(absl::StrCat("*/", step));
      for (int v = f.min; v <= f.max; v += step) out.values.insert(v);
    } else {
      int items = Uniform(1, 3);
      for (int i = 0; i < items; ++i) Item(f, out, parts);
    }
    out.text = absl::StrJoin(parts, ",");
    return out;
  }

 private:
  std::mt19937 rng_;
};

const FieldRange kMinutes = {0, 59, {}};
const FieldRange kHours = {0, 23, {}};
const FieldRange kDays = {1, 31, {}};
const FieldRange kMonths = {1, 12, {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                    "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}};
const FieldRange kWeekdays = {
    0, 7, {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}};

struct GenExpr {
  std::string text;
  GenField fields[5];

  bool Has(int i, int v) const { return fields[i].values.count(v) > 0; }

  bool DayMatches(absl::CivilDay d) const {
    if (!Has(3, d.month())) return false;
    int wd = 0;
    switch (absl::GetWeekday(d)) {
      case absl::Weekday::sunday: wd = 0; break;
      case absl::Weekday::monday: wd = 1; break;
      case absl::Weekday::tuesday: wd = 2; break;
      case absl::Weekday::wednesday: wd = 3; break;
      case absl::Weekday::thursday: wd = 4; break;
      case absl::Weekday::friday: wd = 5; break;
      case absl::Weekday::saturday: wd = 6; break;
    }
    bool dom = Has(2, d.day());
    bool dow = Has(4, wd) || (wd == 0 && Has(4, 7));
    bool dom_star = fields[2].text[0] == '*';
    bool dow_star = fields[4].text[0] == '*';
    return (!dom_star && !dow_star) ? (dom || dow) : (dom && dow);
  }

  bool Matches(absl::CivilMinute m) const {
    return Has(0, m.minute()) && Has(1, m.hour()) &&
           DayMatches(absl::CivilDay(m));
  }
};

GenExpr RandomExpr(ExprGenerator& gen) {
  GenExpr e;
  const FieldRange* ranges[5] = {&kMinutes, &kHours, &kDays, &kMonths,
                                 &kWeekdays};
  std::vector<std::string> texts;
  for (int i = 0; i < 5; ++i) {
    e.fields[i] = gen.Field(*ranges[i]);
    texts.push_back(e.fields[i].text);
  }
  e.text = absl::StrJoin(texts, " ");
  return e;
}

// Asserts that no minute in (after, until) matches, checking minutes one by
// one near the ends and whole days (every day has a matching minute iff the
// day matches) in between. `until` may be InfiniteFuture: then a full
// 400-year Gregorian cycle is checked.
void ExpectNoMatchBetween(const GenExpr& e, absl::Time after,
                          absl::Time until) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilMinute first = absl::ToCivilMinute(after, utc) + 1;
  const bool infinite = until == absl::InfiniteFuture();
  const absl::CivilMinute end =
      infinite ? absl::CivilMinute(absl::CivilDay(first) + 146098)
               : absl::ToCivilMinute(until, utc);
  const absl::CivilDay first_day(first);
  absl::CivilMinute m = first;
  for (; m < end && absl::CivilDay(m) == first_day; ++m) {
    ASSERT_FALSE(e.Matches(m)) << "missed firing " << m;
  }
  const absl::CivilDay end_day(end);
  for (absl::CivilDay d(m); d < end_day; ++d) {
    ASSERT_FALSE(e.DayMatches(d)) << "missed firing on day " << d;
  }
  for (m = std::max(m, absl::CivilMinute(end_day)); m < end; ++m) {
    ASSERT_FALSE(e.Matches(m)) << "missed firing " << m;
  }
}

GenExpr HandBuilt(const std::vector<std::string>& texts,
                  const std::vector<std::set<int>>& values) {
  GenExpr e;
  for (int i = 0; i < 5; ++i) e.fields[i] = {texts[i], values[i]};
  e.text = absl::StrJoin(texts, " ");
  return e;
}

std::set<int> All(int lo, int hi) {
  std::set<int> s;
  for (int v = lo; v <= hi; ++v) s.insert(v);
  return s;
}

// Schedules that never fire: confirmed over a full 400-year cycle.
TEST(CronSchedulePropertyTest, NeverFiringConfirmedByBruteForce) {
  const GenExpr cases[] = {
      HandBuilt({"0", "0", "30", "2", "*"},
                {{0}, {0}, {30}, {2}, All(0, 6)}),
      HandBuilt({"0", "0", "31", "4,6,9,11", "*"},
                {{0}, {0}, {31}, {4, 6, 9, 11}, All(0, 6)}),
      HandBuilt({"0", "0", "31", "2", "*/2"},
                {{0}, {0}, {31}, {2}, {0, 2, 4, 6}}),
  };
  const absl::Time after = T("2025-06-01 12:34:56");
  for (const GenExpr& e : cases) {
    SCOPED_TRACE(e.text);
    absl::StatusOr<CronSchedule> s = CronSchedule::Parse(e.text);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->Next(after), absl::InfiniteFuture());
    ExpectNoMatchBetween(e, after, absl::InfiniteFuture());
  }
}

TEST(CronSchedulePropertyTest, NextIsFirstMatchingMinuteAfter) {
  ExprGenerator gen(20250101);
  const absl::TimeZone utc = absl::UTCTimeZone();
  const int64_t lo = absl::ToUnixSeconds(T("1990-01-01 00:00:00"));
  const int64_t hi = absl::ToUnixSeconds(T("2060-01-01 00:00:00"));
  std::mt19937_64 rng(42);
  constexpr int kExprs = 2000;
  int never = 0;
  int checked = 0;
  for (int i = 0; i < kExprs; ++i) {
    GenExpr e = RandomExpr(gen);
    SCOPED_TRACE(absl::StrCat("expr \"", e.text, "\""));
    absl::StatusOr<CronSchedule> s = CronSchedule::Parse(e.text);
    ASSERT_TRUE(s.ok()) << s.status();
    absl::Time t = absl::FromUnixSeconds(
        std::uniform_int_distribution<int64_t>(lo, hi)(rng));
    if (rng() % 2) t += absl::Milliseconds(rng() % 60000);
    // Chain a few calls so that some start exactly on a firing.
    for (int k = 0; k < 3; ++k) {
      SCOPED_TRACE(absl::StrCat("after ", Show(t)));
      absl::Time next = s->Next(t);
      if (next == absl::InfiniteFuture()) {
        ++never;
        ExpectNoMatchBetween(e, t, next);
        break;
      }
      ASSERT_GT(next, t);
      ASSERT_EQ(absl::ToUnixSeconds(next) % 60, 0) << Show(next);
      ASSERT_EQ(next, absl::FromUnixSeconds(absl::ToUnixSeconds(next)));
      ASSERT_TRUE(e.Matches(absl::ToCivilMinute(next, utc)))
          << "Next returned non-matching " << Show(next);
      ExpectNoMatchBetween(e, t, next);
      ++checked;
      t = next;
    }
  }
  // The generator produces some impossible dates (e.g. 31 in short months).
  EXPECT_LT(never, kExprs / 10);
  EXPECT_GT(checked, 2 * kExprs);
  std::cout << "checked " << checked << " firings, " << never
            << " schedules that never fire\n";
}

}  // namespace
}  // namespace taskd
