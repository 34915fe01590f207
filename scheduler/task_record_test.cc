#include "scheduler/task_record.h"

#include <map>
#include <string>

#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr char kId[] = "01HZX3Y4Q5R6S7T8V9W0XYZABC";

// Equal messages (with no map field set), the differences named.
::testing::AssertionResult Same(const google::protobuf::Message& a,
                                const google::protobuf::Message& b) {
  std::string diff;
  MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  if (!d.Compare(a, b)) return ::testing::AssertionFailure() << diff;
  return ::testing::AssertionSuccess();
}

// Equal specs. Labels are compared as a std::map, the rest with
// MessageDifferencer: reflection over a map field crashes under
// ThreadSanitizer (protobuf's MapFieldBase has extra members when compiled
// with it, Debian's libprotobuf has not; tests/tsan/README.md).
::testing::AssertionResult SameSpec(v1::TaskSpec a, v1::TaskSpec b) {
  const std::map<std::string, std::string> la(a.labels().begin(),
                                              a.labels().end());
  const std::map<std::string, std::string> lb(b.labels().begin(),
                                              b.labels().end());
  if (la != lb) return ::testing::AssertionFailure() << "labels differ";
  a.clear_labels();
  b.clear_labels();
  return Same(a, b);
}

::testing::AssertionResult SameTask(v1::Task a, v1::Task b) {
  ::testing::AssertionResult specs = SameSpec(a.spec(), b.spec());
  if (!specs) return specs << " (spec)";
  a.clear_spec();
  b.clear_spec();
  return Same(a, b);
}

// A stored task with every field of Task and TaskSpec set.
v1::Task EveryField() {
  v1::Task t;
  t.set_id(kId);
  v1::TaskSpec* s = t.mutable_spec();
  s->set_queue("images");
  s->set_type("resize");
  s->set_payload(std::string("\0payload\xff", 9));
  s->set_priority(7);
  *s->mutable_run_at() = FromTime(absl::FromUnixSeconds(1'800'000'000));
  *s->mutable_delay() = FromDuration(absl::Seconds(3));
  *s->mutable_timeout() = FromDuration(absl::Minutes(2));
  *s->mutable_heartbeat_timeout() = FromDuration(absl::Seconds(20));
  s->mutable_retry()->set_max_attempts(4);
  *s->mutable_retry()->mutable_initial_backoff() =
      FromDuration(absl::Milliseconds(250));
  s->set_idempotency_key("key-1");
  s->add_depends_on("01HZX3Y4Q5R6S7T8V9W0XYZABD");
  (*s->mutable_labels())["team"] = "media";
  *s->mutable_result_ttl() = FromDuration(absl::Hours(1));
  t.set_state(v1::TASK_STATE_RUNNING);
  t.set_attempt(2);
  *t.mutable_create_time() = FromTime(absl::FromUnixNanos(1'700'000'000'123'456'789));
  *t.mutable_schedule_time() = FromTime(absl::FromUnixSeconds(1'700'000'001));
  *t.mutable_start_time() = FromTime(absl::FromUnixSeconds(1'700'000'002));
  *t.mutable_finish_time() = FromTime(absl::FromUnixSeconds(1'700'000'003));
  t.set_result("result bytes");
  t.mutable_error()->set_code("timeout");
  t.mutable_error()->set_message("too slow");
  t.mutable_error()->set_details("details");
  t.mutable_error()->set_retryable(true);
  t.mutable_progress()->set_percent(40);
  t.mutable_progress()->set_message("halfway");
  *t.mutable_progress()->mutable_update_time() =
      FromTime(absl::FromUnixSeconds(1'700'000'002));
  t.set_worker_id("worker-7");
  t.set_cancel_requested(true);
  t.set_lease_id(42);
  return t;
}

// The record and SpecBlob copy fields one by one: a field added to the API
// must be added there too. This fails until it is.
TEST(TaskRecordTest, KnowsEveryFieldOfTheApi) {
  EXPECT_EQ(v1::TaskSpec::descriptor()->field_count(), 13)
      << "TaskSpec changed: update SpecBlob::Make and EveryField()";
  EXPECT_EQ(v1::Task::descriptor()->field_count(), 14)
      << "Task changed: update TaskRecord::FromTask/ToTask and EveryField()";
  // Every field is set in the fixture, so the round trip below covers it.
  const v1::Task t = EveryField();
  std::vector<const google::protobuf::FieldDescriptor*> set;
  t.GetReflection()->ListFields(t, &set);
  EXPECT_EQ(set.size(), 14u);
  set.clear();
  t.spec().GetReflection()->ListFields(t.spec(), &set);
  EXPECT_EQ(set.size(), 13u);
}

TEST(TaskRecordTest, StoredTaskRoundTripsWhole) {
  const v1::Task stored = EveryField();
  auto record = TaskRecord::FromTask(stored);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_TRUE(SameTask(stored, (*record)->ToTask()));
  EXPECT_EQ((*record)->id(), kId);
  EXPECT_EQ((*record)->spec.queue(), "images");
  EXPECT_EQ((*record)->spec.type(), "resize");
  EXPECT_EQ((*record)->spec.priority(), 7);
  EXPECT_EQ((*record)->lease_id(), 42u);
}

TEST(TaskRecordTest, LeavesOutPayloadAndResultWhenAsked) {
  const v1::Task stored = EveryField();
  auto record = TaskRecord::FromTask(stored);
  ASSERT_TRUE(record.ok()) << record.status();
  v1::Task expected = stored;
  expected.mutable_spec()->clear_payload();
  EXPECT_TRUE(SameTask(expected, (*record)->ToTask({.payload = false})));
  expected.clear_result();
  EXPECT_TRUE(SameTask(expected,
                       (*record)->ToTask({.payload = false, .result = false})));
}

TEST(TaskRecordTest, QueuedTaskHasNoRunPartAndNoSettings) {
  v1::TaskSpec spec;
  spec.set_type("noop");
  spec.set_payload("0123456789abcdef");
  auto record = TaskRecord::Make(TaskKey{1, 2}, spec, "default");
  ASSERT_TRUE(record.ok()) << record.status();
  TaskRecord& r = **record;
  r.InitState(v1::TASK_STATE_PENDING);
  r.create_time = r.schedule_time = absl::FromUnixSeconds(100);
  EXPECT_EQ(r.run, nullptr);
  EXPECT_FALSE(r.spec.has_settings());
  EXPECT_EQ(r.spec.payload(), "0123456789abcdef");
  const v1::Task t = r.ToTask();
  EXPECT_EQ(t.spec().queue(), "default");  // filled in, not the spec's ""
  EXPECT_EQ(t.spec().type(), "noop");
  EXPECT_FALSE(t.has_start_time());
  EXPECT_FALSE(t.has_finish_time());
  EXPECT_FALSE(t.has_error());
  EXPECT_FALSE(t.has_progress());
  EXPECT_EQ(t.lease_id(), 0u);
  EXPECT_EQ(TaskKeyOf(t.id())->lo, 2u);
}

TEST(TaskRecordTest, SettingsHoldEverythingButTheFourKeptApart) {
  v1::TaskSpec spec = EveryField().spec();
  auto blob = SpecBlob::Make(spec, "images");
  ASSERT_TRUE(blob.ok()) << blob.status();
  EXPECT_TRUE(blob->has_settings());
  v1::TaskSpec settings = blob->Settings();
  EXPECT_TRUE(settings.queue().empty());
  EXPECT_TRUE(settings.type().empty());
  EXPECT_TRUE(settings.payload().empty());
  EXPECT_EQ(settings.priority(), 0);
  spec.clear_queue();
  spec.clear_type();
  spec.clear_payload();
  spec.clear_priority();
  EXPECT_TRUE(SameSpec(spec, settings));
}

// An event's snapshot shows the task as it was, without payload or result,
// whatever happens to the record afterwards.
TEST(TaskRecordTest, SnapshotKeepsTheTaskAsItWas) {
  auto record = TaskRecord::FromTask(EveryField());
  ASSERT_TRUE(record.ok()) << record.status();
  const v1::Task expected = (*record)->ToTask({.payload = false, .result = false});
  TaskSnapshot snapshot(**record);
  (*record)->attempt = 9;
  (*record)->run->error->set_code("changed");
  (*record)->run.reset();
  v1::Task got;
  snapshot.Fill(&got);
  EXPECT_TRUE(SameTask(expected, got));
  EXPECT_TRUE(got.spec().payload().empty());
  EXPECT_TRUE(got.result().empty());
  EXPECT_GT(snapshot.bytes(), sizeof(TaskSnapshot));
}

TEST(TaskRecordTest, RefusesStoredTasksItCannotHold) {
  v1::Task t = EveryField();
  t.set_id("not-an-id");
  EXPECT_EQ(TaskRecord::FromTask(t).status().code(),
            absl::StatusCode::kDataLoss);
  t = EveryField();
  t.set_state(static_cast<v1::TaskState>(9));
  EXPECT_EQ(TaskRecord::FromTask(t).status().code(),
            absl::StatusCode::kDataLoss);
  t = EveryField();
  t.mutable_spec()->set_queue(std::string(70000, 'q'));
  EXPECT_EQ(TaskRecord::FromTask(t).status().code(),
            absl::StatusCode::kDataLoss);
}

// The point of the record: a queued task's fixed part fits one 128-byte
// allocation (glibc adds 8 bytes to a request and rounds to 16).
TEST(TaskRecordTest, RecordFitsItsAllocationClass) {
  EXPECT_LE(sizeof(TaskRecord), 120u);
  EXPECT_LE(sizeof(SpecBlob), 24u);
}

}  // namespace
}  // namespace taskd
