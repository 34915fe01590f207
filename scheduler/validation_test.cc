#include "scheduler/validation.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "api/strings/utf8.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace taskd {
namespace {

using google::protobuf::Duration;
using google::protobuf::Timestamp;

v1::TaskSpec ValidSpec() {
  v1::TaskSpec spec;
  spec.set_type("send_email");
  return spec;
}

Duration Dur(int64_t seconds, int32_t nanos = 0) {
  Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

constexpr char kValidId[] = "01HZX3M8Q9R7T6V5W4X3Y2Z1AB";

struct BadCase {
  std::string name;
  std::function<void(v1::TaskSpec&)> mutate;
  std::string field;  // expected path the message starts with
};

std::vector<BadCase> BadCases() {
  const Duration neg = Dur(-1);
  const Duration neg_nanos = Dur(0, -5);
  const Duration huge = Dur(315'576'000'001);
  const Duration bad_nanos = Dur(1, 1'000'000'000);
  std::vector<BadCase> cases = {
      // queue
      {"queue_slash", [](auto& s) { s.set_queue("a/b"); }, "task.queue"},
      {"queue_space", [](auto& s) { s.set_queue("my queue"); }, "task.queue"},
      {"queue_unicode", [](auto& s) { s.set_queue("q\xc3\xa4"); },
       "task.queue"},
      {"queue_nul", [](auto& s) { s.set_queue(std::string("a\0b", 3)); },
       "task.queue"},
      {"queue_65", [](auto& s) { s.set_queue(std::string(65, 'q')); },
       "task.queue"},
      // type
      {"type_missing", [](auto& s) { s.clear_type(); }, "task.type"},
      {"type_space", [](auto& s) { s.set_type("send email"); }, "task.type"},
      {"type_semicolon", [](auto& s) { s.set_type("rm;ls"); }, "task.type"},
      {"type_129", [](auto& s) { s.set_type(std::string(129, 't')); },
       "task.type"},
      // payload (limit 1 MiB by default)
      {"payload_over",
       [](auto& s) { s.set_payload(std::string((1 << 20) + 1, 'x')); },
       "task.payload"},
      // priority
      {"priority_-1", [](auto& s) { s.set_priority(-1); }, "task.priority"},
      {"priority_10", [](auto& s) { s.set_priority(10); }, "task.priority"},
      {"priority_min",
       [](auto& s) { s.set_priority(std::numeric_limits<int32_t>::min()); },
       "task.priority"},
      // run_at / delay
      {"run_at_and_delay",
       [](auto& s) {
         s.mutable_run_at()->set_seconds(1'700'000'000);
         *s.mutable_delay() = Dur(5);
       },
       "task.run_at"},
      {"run_at_year_10000",
       [](auto& s) { s.mutable_run_at()->set_seconds(253'402'300'800); },
       "task.run_at"},
      {"run_at_bad_nanos",
       [](auto& s) { s.mutable_run_at()->set_nanos(-1); }, "task.run_at"},
      // durations: negative and out of range
      {"delay_negative", [=](auto& s) { *s.mutable_delay() = neg; },
       "task.delay"},
      {"delay_negative_nanos", [=](auto& s) { *s.mutable_delay() = neg_nanos; },
       "task.delay"},
      {"delay_huge", [=](auto& s) { *s.mutable_delay() = huge; }, "task.delay"},
      // Valid Durations, but now + span would pass year 9999.
      {"delay_10000_years",
       [](auto& s) { *s.mutable_delay() = Dur(315'576'000'000); },
       "task.delay"},
      {"timeout_1000_years",
       [](auto& s) { *s.mutable_timeout() = Dur(1000LL * 365 * 86400); },
       "task.timeout"},
      {"max_backoff_5000_years",
       [](auto& s) {
         *s.mutable_retry()->mutable_max_backoff() =
             Dur(5000LL * 365 * 86400);
       },
       "task.retry.max_backoff"},
      {"result_ttl_9000_years",
       [](auto& s) { *s.mutable_result_ttl() = Dur(9000LL * 365 * 86400); },
       "task.result_ttl"},
      {"delay_bad_nanos", [=](auto& s) { *s.mutable_delay() = bad_nanos; },
       "task.delay"},
      {"timeout_negative", [=](auto& s) { *s.mutable_timeout() = neg; },
       "task.timeout"},
      {"timeout_huge", [=](auto& s) { *s.mutable_timeout() = huge; },
       "task.timeout"},
      {"heartbeat_negative",
       [=](auto& s) { *s.mutable_heartbeat_timeout() = neg; },
       "task.heartbeat_timeout"},
      {"heartbeat_bad_nanos",
       [=](auto& s) { *s.mutable_heartbeat_timeout() = bad_nanos; },
       "task.heartbeat_timeout"},
      {"result_ttl_negative", [=](auto& s) { *s.mutable_result_ttl() = neg; },
       "task.result_ttl"},
      {"result_ttl_huge", [=](auto& s) { *s.mutable_result_ttl() = huge; },
       "task.result_ttl"},
      {"initial_backoff_negative",
       [=](auto& s) { *s.mutable_retry()->mutable_initial_backoff() = neg; },
       "task.retry.initial_backoff"},
      {"initial_backoff_huge",
       [=](auto& s) { *s.mutable_retry()->mutable_initial_backoff() = huge; },
       "task.retry.initial_backoff"},
      {"max_backoff_negative",
       [=](auto& s) {
         *s.mutable_retry()->mutable_max_backoff() = neg_nanos;
       },
       "task.retry.max_backoff"},
      {"max_backoff_bad_nanos",
       [=](auto& s) {
         *s.mutable_retry()->mutable_max_backoff() = bad_nanos;
       },
       "task.retry.max_backoff"},
      // retry policy
      {"max_attempts_-1", [](auto& s) { s.mutable_retry()->set_max_attempts(-1); },
       "task.retry.max_attempts"},
      {"max_attempts_101",
       [](auto& s) { s.mutable_retry()->set_max_attempts(101); },
       "task.retry.max_attempts"},
      {"multiplier_half",
       [](auto& s) { s.mutable_retry()->set_multiplier(0.5); },
       "task.retry.multiplier"},
      {"multiplier_negative",
       [](auto& s) { s.mutable_retry()->set_multiplier(-2); },
       "task.retry.multiplier"},
      {"multiplier_101",
       [](auto& s) { s.mutable_retry()->set_multiplier(101); },
       "task.retry.multiplier"},
      {"multiplier_nan",
       [](auto& s) { s.mutable_retry()->set_multiplier(std::nan("")); },
       "task.retry.multiplier"},
      {"multiplier_inf",
       [](auto& s) {
         s.mutable_retry()->set_multiplier(
             std::numeric_limits<double>::infinity());
       },
       "task.retry.multiplier"},
      {"max_backoff_below_initial",
       [](auto& s) {
         *s.mutable_retry()->mutable_initial_backoff() = Dur(10);
         *s.mutable_retry()->mutable_max_backoff() = Dur(9, 999'999'999);
       },
       "task.retry.max_backoff"},
      // idempotency key
      {"idempotency_key_257",
       [](auto& s) { s.set_idempotency_key(std::string(257, 'k')); },
       "task.idempotency_key"},
      // depends_on
      {"depends_on_empty_id", [](auto& s) { s.add_depends_on(""); },
       "task.depends_on[0]"},
      {"depends_on_short_id", [](auto& s) { s.add_depends_on("abc"); },
       "task.depends_on[0]"},
      {"depends_on_27_chars",
       [](auto& s) { s.add_depends_on(std::string(kValidId) + "0"); },
       "task.depends_on[0]"},
      {"depends_on_bad_char_second",
       [](auto& s) {
         s.add_depends_on(kValidId);
         s.add_depends_on("01HZX3M8Q9R7T6V5W4X3Y2Z1A!");
       },
       "task.depends_on[1]"},
      {"depends_on_101",
       [](auto& s) {
         for (int i = 0; i < 101; ++i) s.add_depends_on(kValidId);
       },
       "task.depends_on"},
      // labels
      {"labels_65",
       [](auto& s) {
         for (int i = 0; i < 65; ++i) (*s.mutable_labels())[absl::StrCat("k", i)] = "v";
       },
       "task.labels"},
      {"label_key_empty", [](auto& s) { (*s.mutable_labels())[""] = "v"; },
       "task.labels"},
      {"label_key_129",
       [](auto& s) { (*s.mutable_labels())[std::string(129, 'k')] = "v"; },
       "task.labels"},
      {"label_value_1025",
       [](auto& s) { (*s.mutable_labels())["team"] = std::string(1025, 'v'); },
       "task.labels[team]"},
  };
  return cases;
}

TEST(ValidateTaskSpecTest, MalformedSpecsNameTheField) {
  const ValidationLimits limits;
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    v1::TaskSpec spec = ValidSpec();
    c.mutate(spec);
    absl::Status s = ValidateTaskSpec(spec, limits, "task");
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StartsWith(s.message(), c.field))
        << "message \"" << s.message() << "\" should start with " << c.field;
    // A path followed by a separator, not a longer field name that merely
    // shares the prefix (e.g. "task.retry.max_backoff" vs ".max_backoffs").
    ASSERT_GT(s.message().size(), c.field.size());
    const char next = s.message()[c.field.size()];
    EXPECT_TRUE(next == ':' || next == '.' || next == '[')
        << s.message();
  }
}

TEST(ValidateTaskSpecTest, PathPrefixIsTheCallersPath) {
  // SubmitTasks addresses specs as tasks[i].
  v1::TaskSpec spec = ValidSpec();
  spec.set_priority(10);
  absl::Status s = ValidateTaskSpec(spec, ValidationLimits{}, "tasks[3]");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "tasks[3].priority:")) << s;

  spec = ValidSpec();
  spec.add_depends_on("nope");
  s = ValidateTaskSpec(spec, ValidationLimits{}, "tasks[0]");
  EXPECT_TRUE(absl::StartsWith(s.message(), "tasks[0].depends_on[0]:")) << s;
}

TEST(ValidateTaskSpecTest, LimitsAreHonoured) {
  ValidationLimits limits;
  limits.max_payload_bytes = 10;
  limits.max_labels = 2;
  limits.max_idempotency_key_bytes = 4;
  limits.max_depends_on = 1;
  limits.max_attempts = 5;

  v1::TaskSpec spec = ValidSpec();
  spec.set_payload(std::string(10, 'p'));
  EXPECT_TRUE(ValidateTaskSpec(spec, limits, "task").ok());
  spec.set_payload(std::string(11, 'p'));
  EXPECT_TRUE(absl::StartsWith(ValidateTaskSpec(spec, limits, "task").message(),
                               "task.payload"));

  spec = ValidSpec();
  spec.set_idempotency_key("abcd");
  EXPECT_TRUE(ValidateTaskSpec(spec, limits, "task").ok());
  spec.set_idempotency_key("abcde");
  EXPECT_TRUE(absl::StartsWith(ValidateTaskSpec(spec, limits, "task").message(),
                               "task.idempotency_key"));

  spec = ValidSpec();
  (*spec.mutable_labels())["a"] = "1";
  (*spec.mutable_labels())["b"] = "2";
  EXPECT_TRUE(ValidateTaskSpec(spec, limits, "task").ok());
  (*spec.mutable_labels())["c"] = "3";
  EXPECT_TRUE(absl::StartsWith(ValidateTaskSpec(spec, limits, "task").message(),
                               "task.labels"));

  spec = ValidSpec();
  spec.add_depends_on(kValidId);
  EXPECT_TRUE(ValidateTaskSpec(spec, limits, "task").ok());
  spec.add_depends_on(kValidId);
  EXPECT_TRUE(absl::StartsWith(ValidateTaskSpec(spec, limits, "task").message(),
                               "task.depends_on"));

  spec = ValidSpec();
  spec.mutable_retry()->set_max_attempts(5);
  EXPECT_TRUE(ValidateTaskSpec(spec, limits, "task").ok());
  spec.mutable_retry()->set_max_attempts(6);
  EXPECT_TRUE(absl::StartsWith(ValidateTaskSpec(spec, limits, "task").message(),
                               "task.retry.max_attempts"));
}

TEST(ValidateTaskSpecTest, ValidSpecsPass) {
  const ValidationLimits limits;
  std::vector<v1::TaskSpec> specs;
  specs.push_back(ValidSpec());  // minimal: type only, queue defaulted

  v1::TaskSpec full;
  full.set_queue(std::string(64, 'q'));
  full.set_type(std::string(128, 't'));
  full.set_payload(std::string(1 << 20, '\0'));
  full.set_priority(9);
  *full.mutable_delay() = Dur(0, 999'999'999);
  *full.mutable_timeout() = Dur(1000LL * 365 * 86400 - 1);  // just < 1000 y
  *full.mutable_heartbeat_timeout() = Dur(30);
  *full.mutable_result_ttl() = Dur(86400);
  full.mutable_retry()->set_max_attempts(100);
  *full.mutable_retry()->mutable_initial_backoff() = Dur(1);
  *full.mutable_retry()->mutable_max_backoff() = Dur(1);  // == initial is fine
  full.mutable_retry()->set_multiplier(100);
  full.set_idempotency_key(std::string(256, 'k'));
  for (int i = 0; i < 100; ++i) full.add_depends_on(kValidId);
  for (int i = 0; i < 63; ++i) (*full.mutable_labels())[absl::StrCat("k", i)] = "";
  (*full.mutable_labels())[std::string(128, 'k')] = std::string(1024, 'v');
  specs.push_back(full);

  v1::TaskSpec chars = ValidSpec();
  chars.set_queue("Az09_.:-");
  chars.set_type("pkg.mod:Func/v2-x_y");
  chars.set_priority(0);
  chars.mutable_run_at()->set_seconds(253'402'300'799);
  chars.mutable_run_at()->set_nanos(999'999'999);
  chars.mutable_retry()->set_multiplier(1.0);
  // max_backoff 0 means "default", so a smaller value than initial is fine.
  *chars.mutable_retry()->mutable_initial_backoff() = Dur(5);
  *chars.mutable_retry()->mutable_max_backoff() = Dur(0);
  specs.push_back(chars);

  v1::TaskSpec zeroes = ValidSpec();
  *zeroes.mutable_delay() = Dur(0);
  *zeroes.mutable_timeout() = Dur(0);
  zeroes.mutable_retry()->set_max_attempts(0);
  zeroes.mutable_retry()->set_multiplier(0);
  zeroes.mutable_run_at();  // epoch: in the past, allowed
  zeroes.clear_delay();
  specs.push_back(zeroes);

  for (size_t i = 0; i < specs.size(); ++i) {
    EXPECT_TRUE(ValidateTaskSpec(specs[i], limits, "task").ok())
        << i << ": " << ValidateTaskSpec(specs[i], limits, "task");
  }
}

TEST(ValidationTest, QueueAndTypeNames) {
  EXPECT_TRUE(ValidateQueueName("default", "q").ok());
  EXPECT_FALSE(ValidateQueueName("", "q").ok());  // callers map empty first
  EXPECT_TRUE(absl::StartsWith(ValidateQueueName("a b", "hello.queues[2]").message(),
                               "hello.queues[2]:"));
  EXPECT_TRUE(ValidateTypeName("a/b", "t").ok());
  EXPECT_EQ(ValidateTypeName("", "t").code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidationTest, TaskIds) {
  EXPECT_TRUE(ValidateTaskId(kValidId, "id").ok());
  for (std::string bad : {std::string(""), std::string(25, 'A'),
                          std::string(27, 'A'), std::string(25, 'A') + "-",
                          std::string(25, 'A') + " ",
                          std::string(25, 'A') + "a",   // lower case
                          std::string(25, 'A') + "U"}) {  // not Crockford
    absl::Status s = ValidateTaskId(bad, "ids[4]");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StartsWith(s.message(), "ids[4]:")) << s;
  }
}

TEST(ValidationTest, QueueOfDefaults) {
  v1::TaskSpec spec;
  EXPECT_EQ(QueueOf(spec), "default");
  spec.set_queue("emails");
  EXPECT_EQ(QueueOf(spec), "emails");
}

TEST(ValidationTest, TimeRoundTrips) {
  const absl::Time times[] = {
      absl::UnixEpoch(),
      absl::FromUnixSeconds(1'700'000'000),
      absl::FromUnixSeconds(1'700'000'000) + absl::Nanoseconds(1),
      absl::FromUnixSeconds(1'700'000'000) + absl::Nanoseconds(999'999'999),
      absl::FromUnixSeconds(-1) + absl::Milliseconds(250),  // before the epoch
      absl::FromUnixSeconds(-62'135'596'800),
      absl::FromUnixSeconds(253'402'300'799) + absl::Nanoseconds(999'999'999),
  };
  for (absl::Time t : times) {
    Timestamp ts = FromTime(t);
    EXPECT_GE(ts.nanos(), 0) << t;
    EXPECT_LE(ts.nanos(), 999'999'999) << t;
    EXPECT_TRUE(ValidateTimestamp(ts, "t").ok()) << t;
    EXPECT_EQ(ToTime(ts), t);
  }
  Timestamp pre = FromTime(absl::FromUnixSeconds(-1) + absl::Milliseconds(250));
  EXPECT_EQ(pre.seconds(), -1);
  EXPECT_EQ(pre.nanos(), 250'000'000);

  Timestamp ts;
  ts.set_seconds(1234);
  ts.set_nanos(5678);
  EXPECT_EQ(FromTime(ToTime(ts)).seconds(), 1234);
  EXPECT_EQ(FromTime(ToTime(ts)).nanos(), 5678);
}

TEST(ValidationTest, DurationRoundTrips) {
  const absl::Duration durations[] = {
      absl::ZeroDuration(), absl::Nanoseconds(1), absl::Milliseconds(1500),
      absl::Seconds(30),    absl::Hours(24 * 365),
      absl::Seconds(315'576'000'000) + absl::Nanoseconds(999'999'999),
  };
  for (absl::Duration d : durations) {
    Duration pd = FromDuration(d);
    EXPECT_TRUE(ValidateDuration(pd, "d").ok()) << d;
    EXPECT_EQ(ToDuration(pd), d);
  }
  Duration pd = FromDuration(absl::Milliseconds(1500));
  EXPECT_EQ(pd.seconds(), 1);
  EXPECT_EQ(pd.nanos(), 500'000'000);
  // Negative spans keep seconds and nanos of the same sign (protobuf rule).
  pd = FromDuration(-absl::Milliseconds(1500));
  EXPECT_EQ(pd.seconds(), -1);
  EXPECT_EQ(pd.nanos(), -500'000'000);
  EXPECT_EQ(ToDuration(pd), -absl::Milliseconds(1500));
}

}  // namespace
}  // namespace taskd

namespace taskd {
namespace {

// Found by the validation fuzzer: an error message quoted a name cut inside
// a character (or raw bytes), so the message itself was not valid UTF-8.
TEST(ValidationTest, ErrorMessagesQuoteInputAsValidUtf8) {
  std::string long_name;
  for (int i = 0; i < 60; ++i) long_name += "\xC3\xA9";  // 120 bytes of "é"
  for (const std::string& input :
       {long_name, std::string("\xC4" "default"), std::string(200, '\xFF')}) {
    EXPECT_TRUE(IsValidUtf8(ValidateQueueName(input, "queue").message()));
    EXPECT_TRUE(IsValidUtf8(ValidateTypeName(input, "type").message()));
    EXPECT_TRUE(IsValidUtf8(ValidateTaskId(input, "id").message()));
  }
}

}  // namespace
}  // namespace taskd
