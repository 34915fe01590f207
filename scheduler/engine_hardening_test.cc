// Engine defects found by review (issue 10), each pinned by a test that
// failed before its fix.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "api/strings/utf8.h"
#include "gtest/gtest.h"
#include "scheduler/clock.h"
#include "scheduler/engine.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

using ::taskd::testing::FailMsg;
using ::taskd::testing::MakeSpec;
using ::taskd::testing::RecordingSink;
using ::taskd::testing::TestOptions;

class EngineHardeningTest : public ::testing::Test {
 protected:
  EngineHardeningTest() : engine_(TestOptions(), &clock_) {}

  void TearDown() override { EXPECT_EQ(engine_.illegal_transitions(), 0u); }

  v1::Task Submit(const v1::TaskSpec& spec) {
    auto r = engine_.Submit(spec);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->task : v1::Task();
  }

  FakeClock clock_;
  RecordingSink sink_;
  Engine engine_;
};

// A worker's long non-ASCII error used to be cut mid-character: the stored
// task then failed to parse (INTERNAL for clients, and recovery refused to
// start). Every cut must land on a character boundary.
TEST_F(EngineHardeningTest, LongNonAsciiErrorIsCutOnACharacterBoundary) {
  auto worker = testing::ConnectWorker(engine_, &sink_);
  ASSERT_NE(worker, nullptr);
  v1::Task t = Submit(MakeSpec());
  auto a = sink_.AssignmentFor(t.id());
  ASSERT_TRUE(a.has_value());

  // "é" is two bytes: 4095 ASCII bytes put the 4096-byte limit inside one.
  std::string message(4095, 'x');
  std::string details(16383, 'y');
  for (int i = 0; i < 100; ++i) {
    message += "\xC3\xA9";
    details += "\xE2\x82\xAC";
  }
  v1::Fail fail = FailMsg(*a, "boom", message, /*retryable=*/false);
  fail.mutable_error()->set_details(details);
  ASSERT_TRUE(engine_.Fail(*worker, fail).ok());

  auto got = engine_.Get(t.id());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->state(), v1::TASK_STATE_FAILED);
  EXPECT_TRUE(IsValidUtf8(got->error().message()));
  EXPECT_TRUE(IsValidUtf8(got->error().details()));
  EXPECT_LE(got->error().message().size(), 4096u);
  EXPECT_EQ(got->error().message().size(), 4095u);  // the split "é" dropped
  // What a client or recovery would do with the record: parse it back.
  v1::Task parsed;
  ASSERT_TRUE(parsed.ParseFromString(got->SerializeAsString()));
  EXPECT_EQ(parsed.error().message(), got->error().message());
}

// Cancelling the head of a long dependency chain cancels every task of it
// without recursing once per link (it overflowed the stack before).
TEST_F(EngineHardeningTest, CancellingTheHeadOfALongChainUsesAWorklist) {
  constexpr int kChain = 100'000;
  v1::Task head = Submit(MakeSpec("head"));
  std::string previous = head.id();
  std::string last;
  for (int i = 0; i < kChain; ++i) {
    v1::TaskSpec spec = MakeSpec("link");
    spec.add_depends_on(previous);
    v1::Task t = Submit(spec);
    ASSERT_EQ(t.state(), v1::TASK_STATE_SCHEDULED) << i;
    previous = t.id();
    last = t.id();
  }
  ASSERT_TRUE(engine_.Cancel(head.id(), "stop the chain").ok());

  auto tail = engine_.Get(last);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(tail->error().code(), "dependency_failed");
  auto list = engine_.List([] {
    v1::ListTasksRequest r;
    r.set_page_size(1000);
    r.add_states(v1::TASK_STATE_SCHEDULED);
    r.add_states(v1::TASK_STATE_PENDING);
    return r;
  }());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->tasks_size(), 0);  // nothing of the chain is left waiting
}

}  // namespace
}  // namespace taskd
