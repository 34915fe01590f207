// Engine defects found by review (issue 10), each pinned by a test that
// failed before its fix.
#include <memory>
#include <string>

#include "absl/strings/match.h"
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

namespace taskd {
namespace {

class EngineLimitsTest : public EngineHardeningTest {};

TEST_F(EngineLimitsTest, AwaitRejectsARepeatedId) {
  v1::Task t = Submit(MakeSpec());
  testing::AwaitRecorder rec;
  auto h = engine_.Await({t.id(), t.id()}, false, absl::InfiniteFuture(),
                         rec.Callback());
  ASSERT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(h.status().message(), "ids[1]"))
      << h.status();
  EXPECT_EQ(rec.calls(), 0);
  EXPECT_EQ(engine_.pending_awaits(), 0u);
}

// Results always come back, payloads only when asked, and an answer that
// would not fit a client is refused before it is built in full.
TEST_F(EngineLimitsTest, AwaitAnswersWithinItsByteBudget) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    v1::TaskSpec spec = MakeSpec();
    spec.set_payload(std::string(300 << 10, 'p'));
    v1::Task t = Submit(spec);
    ASSERT_TRUE(engine_.Cancel(t.id(), "").ok());
    ids.push_back(t.id());
  }
  Engine::AwaitOptions options;
  options.include_payloads = false;
  options.max_response_bytes = 1 << 20;
  testing::AwaitRecorder lean;
  ASSERT_TRUE(engine_.Await(ids, options, lean.Callback()).ok());
  ASSERT_EQ(lean.calls(), 1);
  ASSERT_TRUE(lean.last().ok()) << lean.last().status();
  EXPECT_EQ(lean.last()->tasks_size(), 5);
  EXPECT_TRUE(lean.last()->tasks(0).spec().payload().empty());

  options.include_payloads = true;
  testing::AwaitRecorder heavy;
  ASSERT_TRUE(engine_.Await(ids, options, heavy.Callback()).ok());
  ASSERT_EQ(heavy.calls(), 1);
  EXPECT_EQ(heavy.last().status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(heavy.last().status().message(),
                                "await at most 3 ids"))
      << heavy.last().status();
}

TEST_F(EngineLimitsTest, ListPagesStopBeforeAClientsReceiveLimit) {
  for (int i = 0; i < 10; ++i) {
    v1::TaskSpec spec = MakeSpec();
    spec.set_payload(std::string(1 << 20, 'p'));
    Submit(spec);
  }
  v1::ListTasksRequest request;
  request.set_page_size(100);
  auto lean = engine_.List(request);
  ASSERT_TRUE(lean.ok());
  EXPECT_EQ(lean->tasks_size(), 10);
  EXPECT_TRUE(lean->tasks(0).spec().payload().empty());
  EXPECT_TRUE(lean->next_page_token().empty());

  request.set_include_payloads(true);
  int seen = 0;
  for (int page = 0; page < 10; ++page) {
    auto full = engine_.List(request);
    ASSERT_TRUE(full.ok());
    EXPECT_LT(full->ByteSizeLong(), 4u << 20);
    EXPECT_GT(full->tasks_size(), 0);
    EXPECT_EQ(full->tasks(0).spec().payload().size(), 1u << 20);
    seen += full->tasks_size();
    if (full->next_page_token().empty()) break;
    request.set_page_token(full->next_page_token());
  }
  EXPECT_EQ(seen, 10);  // every task, over several short pages
}

TEST_F(EngineLimitsTest, AWithdrawnAwaitFreesItsTimer) {
  v1::Task t = Submit(MakeSpec());
  const size_t timers = engine_.timer_count();
  for (int i = 0; i < 100; ++i) {
    auto h = engine_.Await({t.id()}, false,
                           clock_.Now() + absl::Hours(24 * 365 * 900),
                           [](absl::StatusOr<v1::AwaitResponse>) {});
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE(engine_.CancelAwait(*h));
  }
  EXPECT_EQ(engine_.timer_count(), timers);  // none left for 900 years
  EXPECT_EQ(engine_.pending_awaits(), 0u);
}

TEST(EventLogBudgetTest, ProgressSpamStaysWithinTheByteBudget) {
  FakeClock clock;
  EngineOptions options = TestOptions();
  options.event_log_bytes = 256 << 10;
  Engine engine(options, &clock);
  RecordingSink sink;
  auto worker = testing::ConnectWorker(engine, &sink);
  auto t = engine.Submit(MakeSpec());
  ASSERT_TRUE(t.ok());
  auto a = sink.AssignmentFor(t->task.id());
  ASSERT_TRUE(a.has_value());
  v1::ProgressUpdate p;
  p.set_task_id(t->task.id());
  p.set_lease_id(a->lease_id());
  p.set_message(std::string(1000, 'm'));
  for (int i = 0; i < 5000; ++i) {
    p.set_percent(i % 100);
    ASSERT_TRUE(engine.Progress(*worker, p).ok());
    ASSERT_LE(engine.events().bytes(), size_t{256 << 10});
  }
  // The oldest events went; the newest are readable.
  EXPECT_GT(engine.events().first_retained(), 1u);
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(engine.events()
                  .Read(engine.events().first_retained(), 1 << 20, &events)
                  .ok());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().sequence() + 1, engine.events().next_sequence());
}

}  // namespace
}  // namespace taskd
