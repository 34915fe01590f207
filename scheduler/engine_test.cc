#include "scheduler/engine.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "scheduler/clock.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

using ::taskd::testing::AwaitRecorder;
using ::taskd::testing::CompleteMsg;
using ::taskd::testing::EventsFor;
using ::taskd::testing::EventTypesFor;
using ::taskd::testing::FailMsg;
using ::taskd::testing::MakeSpec;
using ::taskd::testing::ProtoDuration;
using ::taskd::testing::RecordingSink;
using ::taskd::testing::TestOptions;

constexpr char kUnknownId[] = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() { Reset(TestOptions()); }

  void TearDown() override {
    EXPECT_EQ(engine_->illegal_transitions(), 0u);
  }

  void Reset(const EngineOptions& options) {
    engine_ = std::make_unique<Engine>(options, &clock_);
  }

  Engine& engine() { return *engine_; }

  v1::Task Submit(const v1::TaskSpec& spec) {
    auto r = engine_->Submit(spec);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return v1::Task();
    EXPECT_FALSE(r->deduplicated);
    return r->task;
  }

  v1::Task Get(const std::string& id) {
    auto t = engine_->Get(id);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : v1::Task();
  }

  std::shared_ptr<WorkerSession> Connect(RecordingSink* sink,
                                         const std::string& id = "w1",
                                         int concurrency = 10) {
    auto w = testing::ConnectWorker(*engine_, sink, id, {}, {}, concurrency);
    EXPECT_NE(w, nullptr);
    return w;
  }

  // Submits `spec`, has `sink_`'s worker take it, and returns the assignment.
  v1::Assignment SubmitAndStart(const v1::TaskSpec& spec) {
    if (worker_ == nullptr) worker_ = Connect(&sink_);
    v1::Task t = Submit(spec);
    auto a = sink_.AssignmentFor(t.id());
    EXPECT_TRUE(a.has_value()) << "task " << t.id() << " was not assigned";
    return a.value_or(v1::Assignment());
  }

  void Advance(absl::Duration d) {
    clock_.Advance(d);
    engine_->ProcessTimers();
  }

  v1::TaskSpec SpecWith(absl::FunctionRef<void(v1::TaskSpec&)> f,
                        const std::string& type = "work") {
    v1::TaskSpec spec = MakeSpec(type);
    f(spec);
    return spec;
  }

  // Declared before engine_ so that they outlive it.
  FakeClock clock_;
  RecordingSink sink_;
  RecordingSink sink2_;
  std::shared_ptr<WorkerSession> worker_;
  std::unique_ptr<Engine> engine_;
};

// ---------------------------------------------------------------- submit

TEST_F(EngineTest, SubmitIsPendingWithSubmittedEvent) {
  const absl::Time now = clock_.Now();
  auto r = engine().Submit(MakeSpec("resize"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->deduplicated);
  const v1::Task& t = r->task;
  EXPECT_EQ(t.id().size(), 26u);
  EXPECT_EQ(t.state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(t.spec().queue(), "default");
  EXPECT_EQ(t.spec().type(), "resize");
  EXPECT_EQ(t.spec().payload(), "payload:resize");
  EXPECT_EQ(t.attempt(), 0);
  EXPECT_FALSE(t.cancel_requested());
  EXPECT_EQ(ToTime(t.create_time()), now);
  EXPECT_EQ(ToTime(t.schedule_time()), now);
  EXPECT_EQ(engine().task_count(), 1u);

  v1::Task got = Get(t.id());
  EXPECT_EQ(got.SerializeAsString(), t.SerializeAsString());

  auto events = EventsFor(engine(), t.id());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type(), v1::EVENT_TYPE_SUBMITTED);
  EXPECT_EQ(events[0].task().state(), v1::TASK_STATE_PENDING);
  EXPECT_TRUE(events[0].task().spec().payload().empty());
  EXPECT_EQ(ToTime(events[0].time()), now);
}

TEST_F(EngineTest, IdsIncreaseWithSubmissionOrder) {
  std::string prev;
  for (int i = 0; i < 50; ++i) {
    if (i % 10 == 0) clock_.Advance(absl::Milliseconds(3));
    v1::Task t = Submit(MakeSpec());
    EXPECT_LT(prev, t.id());
    prev = t.id();
  }
}

TEST_F(EngineTest, InvalidSubmitCreatesNothing) {
  v1::TaskSpec spec = MakeSpec();
  spec.set_priority(10);
  auto r = engine().Submit(spec);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "task.priority"))
      << r.status();
  spec = MakeSpec("");
  r = engine().Submit(spec);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "task.type")) << r.status();
  EXPECT_EQ(engine().task_count(), 0u);
  EXPECT_EQ(engine().events().next_sequence(), 1u);
}

TEST_F(EngineTest, GetUnknownAndMalformedIds) {
  EXPECT_EQ(engine().Get(kUnknownId).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine().Get("nope").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EngineTest, DelayIsScheduledUntilTheClockAdvances) {
  const absl::Time t0 = clock_.Now();
  v1::Task t = Submit(SpecWith(
      [](v1::TaskSpec& s) { *s.mutable_delay() = ProtoDuration(absl::Seconds(5)); }));
  EXPECT_EQ(t.state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(ToTime(t.schedule_time()), t0 + absl::Seconds(5));

  engine().ProcessTimers();
  EXPECT_EQ(Get(t.id()).state(), v1::TASK_STATE_SCHEDULED);
  Advance(absl::Seconds(5) - absl::Nanoseconds(1));
  EXPECT_EQ(Get(t.id()).state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(EventTypesFor(engine(), t.id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED}));

  Advance(absl::Nanoseconds(1));
  EXPECT_EQ(Get(t.id()).state(), v1::TASK_STATE_PENDING);
  auto events = EventsFor(engine(), t.id());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].task().state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(events[1].type(), v1::EVENT_TYPE_SCHEDULED);
  EXPECT_EQ(events[1].task().state(), v1::TASK_STATE_PENDING);

  // Now it is ready: a worker gets it.
  Connect(&sink_);
  auto a = sink_.AssignmentFor(t.id());
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->task().state(), v1::TASK_STATE_RUNNING);
}

TEST_F(EngineTest, ScheduledTaskIsNotDispatchedEarly) {
  auto w = Connect(&sink_);
  v1::Task t = Submit(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_delay() = ProtoDuration(absl::Minutes(1));
  }));
  EXPECT_EQ(sink_.size(), 0u);
  Advance(absl::Seconds(59));
  EXPECT_EQ(sink_.size(), 0u);
  Advance(absl::Seconds(1));
  ASSERT_TRUE(sink_.AssignmentFor(t.id()).has_value());
  EXPECT_EQ(EventTypesFor(engine(), t.id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_SCHEDULED,
                                        v1::EVENT_TYPE_STARTED}));
}

TEST_F(EngineTest, RunAtFutureAndPast) {
  const absl::Time t0 = clock_.Now();
  v1::Task future = Submit(SpecWith([&](v1::TaskSpec& s) {
    *s.mutable_run_at() = FromTime(t0 + absl::Seconds(30));
  }));
  v1::Task past = Submit(SpecWith([&](v1::TaskSpec& s) {
    *s.mutable_run_at() = FromTime(t0 - absl::Hours(1));
  }));
  EXPECT_EQ(future.state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(ToTime(future.schedule_time()), t0 + absl::Seconds(30));
  EXPECT_EQ(past.state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(ToTime(past.schedule_time()), t0);
  Advance(absl::Seconds(30));
  EXPECT_EQ(Get(future.id()).state(), v1::TASK_STATE_PENDING);
}

// ---------------------------------------------------------------- dispatch

TEST_F(EngineTest, DispatchToAConnectedWorker) {
  v1::Task t = Submit(MakeSpec());
  EXPECT_EQ(sink_.size(), 0u);
  clock_.Advance(absl::Seconds(2));
  const absl::Time start = clock_.Now();
  auto w = Connect(&sink_, "worker-a");
  ASSERT_EQ(sink_.AssignmentCount(), 1u);
  v1::Assignment a = *sink_.LastAssignment();
  EXPECT_EQ(a.task().id(), t.id());
  EXPECT_EQ(a.task().state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(a.task().attempt(), 1);
  EXPECT_EQ(a.task().worker_id(), "worker-a");
  EXPECT_EQ(a.task().spec().payload(), "payload:work");  // workers need it
  EXPECT_EQ(ToTime(a.task().start_time()), start);
  EXPECT_NE(a.lease_id(), 0u);
  EXPECT_FALSE(a.has_deadline());  // no timeout set

  v1::Task got = Get(t.id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(got.attempt(), 1);
  EXPECT_EQ(got.worker_id(), "worker-a");
  EXPECT_EQ(EventTypesFor(engine(), t.id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_STARTED}));

  // A task submitted while the worker is connected goes out at once, with
  // its own lease.
  v1::Task t2 = Submit(MakeSpec());
  auto a2 = sink_.AssignmentFor(t2.id());
  ASSERT_TRUE(a2.has_value());
  EXPECT_NE(a2->lease_id(), a.lease_id());
}

TEST_F(EngineTest, WorkerConcurrencyAndPriority) {
  v1::Task low = Submit(SpecWith([](v1::TaskSpec& s) { s.set_priority(1); }));
  v1::Task high = Submit(SpecWith([](v1::TaskSpec& s) { s.set_priority(9); }));
  v1::Task mid = Submit(SpecWith([](v1::TaskSpec& s) { s.set_priority(5); }));
  auto w = Connect(&sink_, "w1", /*concurrency=*/1);
  ASSERT_EQ(sink_.AssignmentCount(), 1u);
  v1::Assignment a = *sink_.LastAssignment();
  EXPECT_EQ(a.task().id(), high.id());
  ASSERT_TRUE(engine().Complete(*w, CompleteMsg(a, "")).ok());
  ASSERT_EQ(sink_.AssignmentCount(), 2u);
  a = *sink_.LastAssignment();
  EXPECT_EQ(a.task().id(), mid.id());
  ASSERT_TRUE(engine().Fail(*w, FailMsg(a, "x", "", false)).ok());
  ASSERT_EQ(sink_.AssignmentCount(), 3u);
  EXPECT_EQ(sink_.LastAssignment()->task().id(), low.id());
}

TEST_F(EngineTest, WorkersGetOnlyTheirQueuesAndTypes) {
  auto images = testing::ConnectWorker(engine(), &sink_, "img", {"media"},
                                       {"resize"}, 10);
  ASSERT_NE(images, nullptr);
  v1::Task other_type = Submit(MakeSpec("encode", "media"));
  v1::Task other_queue = Submit(MakeSpec("resize", "mail"));
  v1::Task mine = Submit(MakeSpec("resize", "media"));
  auto got = sink_.Assignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task().id(), mine.id());
  // No queues in hello: the default queue; no types: every type.
  auto any = Connect(&sink2_, "any");
  EXPECT_EQ(sink2_.AssignmentCount(), 0u);
  v1::Task dflt = Submit(MakeSpec("whatever"));
  ASSERT_TRUE(sink2_.AssignmentFor(dflt.id()).has_value());
  EXPECT_EQ(Get(other_type.id()).state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(Get(other_queue.id()).state(), v1::TASK_STATE_PENDING);
}

TEST_F(EngineTest, ConnectWorkerValidatesHello) {
  v1::Hello hello;
  hello.set_concurrency(-1);
  auto r = engine().ConnectWorker(hello, &sink_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "hello.concurrency"));
  hello.set_concurrency(1);
  hello.add_queues("ok");
  hello.add_queues("not ok");
  r = engine().ConnectWorker(hello, &sink_);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "hello.queues[1]"))
      << r.status();
  hello.clear_queues();
  hello.add_types("bad type");
  r = engine().ConnectWorker(hello, &sink_);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "hello.types[0]"))
      << r.status();
}

// ---------------------------------------------------------------- complete / await

TEST_F(EngineTest, CompleteSucceedsAndAwaitFiresInRequestOrder) {
  v1::Task a = Submit(MakeSpec("a"));
  v1::Task b = Submit(MakeSpec("b"));
  AwaitRecorder rec;
  auto handle = engine().Await({b.id(), a.id()}, /*any=*/false,
                               absl::InfiniteFuture(), rec.Callback());
  ASSERT_TRUE(handle.ok()) << handle.status();
  EXPECT_EQ(rec.calls(), 0);

  auto w = Connect(&sink_);
  auto la = sink_.AssignmentFor(a.id());
  auto lb = sink_.AssignmentFor(b.id());
  ASSERT_TRUE(la.has_value() && lb.has_value());
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(engine().Complete(*w, CompleteMsg(*la, "result-a")).ok());
  EXPECT_EQ(rec.calls(), 0);  // ALL: b is still running
  ASSERT_TRUE(engine().Complete(*w, CompleteMsg(*lb, "result-b")).ok());
  ASSERT_EQ(rec.calls(), 1);
  auto resp = rec.last();
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_TRUE(resp->done());
  ASSERT_EQ(resp->tasks_size(), 2);
  EXPECT_EQ(resp->tasks(0).id(), b.id());
  EXPECT_EQ(resp->tasks(1).id(), a.id());
  EXPECT_EQ(resp->tasks(0).state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(resp->tasks(0).result(), "result-b");
  EXPECT_EQ(resp->tasks(1).result(), "result-a");

  v1::Task got = Get(a.id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(got.result(), "result-a");
  EXPECT_FALSE(got.has_error());
  EXPECT_EQ(ToTime(got.finish_time()), clock_.Now());
  EXPECT_EQ(EventTypesFor(engine(), a.id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_STARTED,
                                        v1::EVENT_TYPE_SUCCEEDED}));
  // Events never carry the result.
  EXPECT_TRUE(EventsFor(engine(), a.id()).back().task().result().empty());
  // Fired once only, whatever happens next.
  EXPECT_FALSE(engine().CancelAwait(*handle));
  Advance(absl::Hours(1));
  EXPECT_EQ(rec.calls(), 1);
}

TEST_F(EngineTest, AwaitAllVersusAny) {
  auto w = Connect(&sink_);
  v1::Task a = Submit(MakeSpec());
  v1::Task b = Submit(MakeSpec());
  AwaitRecorder all, any;
  ASSERT_TRUE(engine()
                  .Await({a.id(), b.id()}, false, absl::InfiniteFuture(),
                         all.Callback())
                  .ok());
  ASSERT_TRUE(engine()
                  .Await({a.id(), b.id()}, true, absl::InfiniteFuture(),
                         any.Callback())
                  .ok());
  ASSERT_TRUE(
      engine().Complete(*w, CompleteMsg(*sink_.AssignmentFor(b.id()), "B")).ok());
  EXPECT_EQ(all.calls(), 0);
  ASSERT_EQ(any.calls(), 1);
  auto r = any.last();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->done());
  ASSERT_EQ(r->tasks_size(), 2);
  EXPECT_EQ(r->tasks(0).state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(r->tasks(1).state(), v1::TASK_STATE_SUCCEEDED);

  ASSERT_TRUE(engine().Cancel(a.id(), "").ok());  // running: requested only
  EXPECT_EQ(all.calls(), 0);
  ASSERT_TRUE(
      engine().Fail(*w, FailMsg(*sink_.AssignmentFor(a.id()), "x", "", true)).ok());
  ASSERT_EQ(all.calls(), 1);
  EXPECT_EQ(any.calls(), 1);
  r = all.last();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->done());
  EXPECT_EQ(r->tasks(0).state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(r->tasks(1).state(), v1::TASK_STATE_SUCCEEDED);
}

TEST_F(EngineTest, AwaitOnFinishedTasksFiresAtOnce) {
  v1::Task t = Submit(MakeSpec());
  ASSERT_TRUE(engine().Cancel(t.id(), "").ok());
  AwaitRecorder rec;
  auto h = engine().Await({t.id()}, false, absl::InfiniteFuture(),
                          rec.Callback());
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(rec.calls(), 1);  // before Await returned
  ASSERT_TRUE(rec.last().ok());
  EXPECT_TRUE(rec.last()->done());
  EXPECT_EQ(rec.last()->tasks_size(), 1);
  EXPECT_FALSE(engine().CancelAwait(*h));
}

TEST_F(EngineTest, AwaitTimeout) {
  v1::Task t = Submit(MakeSpec());
  AwaitRecorder rec;
  ASSERT_TRUE(engine()
                  .Await({t.id()}, false, clock_.Now() + absl::Seconds(10),
                         rec.Callback())
                  .ok());
  Advance(absl::Seconds(9));
  EXPECT_EQ(rec.calls(), 0);
  Advance(absl::Seconds(1));
  ASSERT_EQ(rec.calls(), 1);
  auto r = rec.last();
  ASSERT_TRUE(r.ok()) << r.status();  // a timeout is OK with done = false
  EXPECT_FALSE(r->done());
  ASSERT_EQ(r->tasks_size(), 1);
  EXPECT_EQ(r->tasks(0).id(), t.id());
  EXPECT_EQ(r->tasks(0).state(), v1::TASK_STATE_PENDING);
  // Finishing later does not answer again.
  ASSERT_TRUE(engine().Cancel(t.id(), "").ok());
  EXPECT_EQ(rec.calls(), 1);
}

TEST_F(EngineTest, AwaitUnknownIdIsNotFoundAndNeverCalls) {
  v1::Task t = Submit(MakeSpec());
  AwaitRecorder rec;
  auto h = engine().Await({t.id(), kUnknownId}, true,
                          clock_.Now() + absl::Seconds(1), rec.Callback());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StartsWith(h.status().message(), "ids[1]")) << h.status();
  h = engine().Await({t.id(), "bad"}, false, absl::InfiniteFuture(),
                     rec.Callback());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  h = engine().Await({}, false, absl::InfiniteFuture(), rec.Callback());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<std::string> too_many(1001, t.id());
  h = engine().Await(too_many, false, absl::InfiniteFuture(), rec.Callback());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(engine().Cancel(t.id(), "").ok());
  Advance(absl::Seconds(5));
  EXPECT_EQ(rec.calls(), 0);
}

TEST_F(EngineTest, CancelAwaitPreventsTheCallback) {
  v1::Task t = Submit(MakeSpec());
  AwaitRecorder cancelled, kept;
  auto h = engine().Await({t.id()}, false, clock_.Now() + absl::Seconds(5),
                          cancelled.Callback());
  ASSERT_TRUE(h.ok());
  auto h2 = engine().Await({t.id()}, false, absl::InfiniteFuture(),
                           kept.Callback());
  ASSERT_TRUE(h2.ok());
  EXPECT_TRUE(engine().CancelAwait(*h));
  EXPECT_FALSE(engine().CancelAwait(*h));  // only once
  ASSERT_TRUE(engine().Cancel(t.id(), "").ok());
  Advance(absl::Seconds(10));  // past the withdrawn Await's deadline
  EXPECT_EQ(cancelled.calls(), 0);
  EXPECT_EQ(kept.calls(), 1);
  EXPECT_FALSE(engine().CancelAwait(nullptr));
}

// ---------------------------------------------------------------- cancel

TEST_F(EngineTest, CancelPending) {
  v1::Task t = Submit(MakeSpec());
  auto r = engine().Cancel(t.id(), "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(r->error().code(), "cancelled");
  EXPECT_FALSE(r->error().retryable());
  EXPECT_EQ(ToTime(r->finish_time()), clock_.Now());
  EXPECT_EQ(Get(t.id()).state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(EventTypesFor(engine(), t.id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_CANCELLED}));
  // It left the ready queue: a worker never sees it.
  auto w = Connect(&sink_);
  EXPECT_EQ(sink_.size(), 0u);
  // A task submitted after it is dispatched normally.
  v1::Task next = Submit(MakeSpec());
  EXPECT_TRUE(sink_.AssignmentFor(next.id()).has_value());
  EXPECT_EQ(sink_.AssignmentCount(), 1u);
}

TEST_F(EngineTest, CancelScheduledWithReason) {
  v1::Task t = Submit(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_delay() = ProtoDuration(absl::Seconds(5));
  }));
  auto r = engine().Cancel(t.id(), "changed my mind");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(r->error().code(), "cancelled");
  EXPECT_EQ(r->error().message(), "changed my mind");
  auto w = Connect(&sink_);
  Advance(absl::Seconds(10));
  EXPECT_EQ(Get(t.id()).state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(sink_.size(), 0u);
  EXPECT_EQ(EventTypesFor(engine(), t.id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_CANCELLED}));
}

TEST_F(EngineTest, CancelRunningWaitsForTheWorker) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  const std::string id = a.task().id();
  auto r = engine().Cancel(id, "stop it");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state(), v1::TASK_STATE_RUNNING);
  EXPECT_TRUE(r->cancel_requested());
  auto cancels = sink_.Cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].task_id(), id);
  EXPECT_EQ(cancels[0].lease_id(), a.lease_id());
  EXPECT_EQ(cancels[0].reason(), "stop it");
  // Asking again does not tell the worker twice.
  ASSERT_TRUE(engine().Cancel(id, "again").ok());
  EXPECT_EQ(sink_.Cancels().size(), 1u);
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_RUNNING);

  // The worker stops with a retryable failure: no retry, CANCELLED.
  ASSERT_TRUE(engine().Fail(*worker_, FailMsg(a, "interrupted", "", true)).ok());
  v1::Task got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(got.error().code(), "cancelled");
  EXPECT_EQ(got.error().message(), "stop it");
  EXPECT_EQ(EventTypesFor(engine(), id),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_STARTED,
                                        v1::EVENT_TYPE_CANCELLED}));
  Advance(absl::Minutes(5));
  EXPECT_EQ(sink_.AssignmentCount(), 1u);  // never re-delivered
}

TEST_F(EngineTest, CancelRunningThenCompleteDiscardsTheResult) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  ASSERT_TRUE(engine().Cancel(a.task().id(), "").ok());
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "late result")).ok());
  v1::Task got = Get(a.task().id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(got.error().code(), "cancelled");
  EXPECT_TRUE(got.result().empty());
}

TEST_F(EngineTest, CancelRunningEndsWhenTheLeaseEnds) {
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_heartbeat_timeout() = ProtoDuration(absl::Seconds(10));
  }));
  ASSERT_TRUE(engine().Cancel(a.task().id(), "").ok());
  Advance(absl::Seconds(10));
  v1::Task got = Get(a.task().id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(got.error().code(), "cancelled");
  EXPECT_EQ(sink_.AssignmentCount(), 1u);
}

TEST_F(EngineTest, CancelTerminalIsUnchanged) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "done")).ok());
  const uint64_t seq = engine().events().next_sequence();
  v1::Task before = Get(a.task().id());
  auto r = engine().Cancel(a.task().id(), "too late");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(r->state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_FALSE(r->cancel_requested());
  EXPECT_EQ(r->result(), "done");
  EXPECT_EQ(engine().events().next_sequence(), seq);  // no event
  EXPECT_EQ(sink_.Cancels().size(), 0u);

  EXPECT_EQ(engine().Cancel(kUnknownId, "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(engine().Cancel("x", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- idempotency

TEST_F(EngineTest, IdempotencyKeyDeduplicatesWithinAQueue) {
  v1::TaskSpec spec = MakeSpec("charge");
  spec.set_idempotency_key("order-17");
  v1::Task first = Submit(spec);

  v1::TaskSpec again = spec;
  again.set_payload("different payload");
  auto r = engine().Submit(again);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->deduplicated);
  EXPECT_EQ(r->task.id(), first.id());
  EXPECT_EQ(r->task.spec().payload(), spec.payload());  // the first one's
  EXPECT_EQ(engine().task_count(), 1u);

  // Explicit "default" is the same queue as empty.
  v1::TaskSpec named = spec;
  named.set_queue("default");
  r = engine().Submit(named);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->deduplicated);
  EXPECT_EQ(r->task.id(), first.id());

  // Another queue: a different task.
  v1::TaskSpec elsewhere = spec;
  elsewhere.set_queue("billing");
  v1::Task other = Submit(elsewhere);
  EXPECT_NE(other.id(), first.id());
  EXPECT_EQ(engine().task_count(), 2u);

  // Still deduplicated after the first one finished (while retained).
  ASSERT_TRUE(engine().Cancel(first.id(), "").ok());
  r = engine().Submit(spec);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->deduplicated);
  EXPECT_EQ(r->task.id(), first.id());
  EXPECT_EQ(r->task.state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(EventTypesFor(engine(), first.id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_CANCELLED}));
}

TEST_F(EngineTest, IdempotencyKeyInsideSubmitBatch) {
  google::protobuf::RepeatedPtrField<v1::TaskSpec> batch;
  v1::TaskSpec keyed = MakeSpec();
  keyed.set_idempotency_key("k");
  *batch.Add() = keyed;
  *batch.Add() = MakeSpec();
  *batch.Add() = keyed;  // same queue, same key: the first task
  v1::TaskSpec keyed_other = keyed;
  keyed_other.set_queue("other");
  *batch.Add() = keyed_other;
  auto r = engine().SubmitBatch(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].id(), (*r)[2].id());
  std::set<std::string> distinct = {(*r)[0].id(), (*r)[1].id(), (*r)[3].id()};
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_EQ(engine().task_count(), 3u);
  EXPECT_EQ(EventTypesFor(engine(), (*r)[0].id()).size(), 1u);

  // A later single submit and a later batch both find it.
  auto single = engine().Submit(keyed);
  ASSERT_TRUE(single.ok());
  EXPECT_TRUE(single->deduplicated);
  EXPECT_EQ(single->task.id(), (*r)[0].id());
  google::protobuf::RepeatedPtrField<v1::TaskSpec> batch2;
  *batch2.Add() = keyed_other;
  auto r2 = engine().SubmitBatch(batch2);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ((*r2)[0].id(), (*r)[3].id());
  EXPECT_EQ(engine().task_count(), 3u);
}

// ---------------------------------------------------------------- batches

TEST_F(EngineTest, SubmitBatchIsAllOrNothing) {
  google::protobuf::RepeatedPtrField<v1::TaskSpec> batch;
  *batch.Add() = MakeSpec("a");
  *batch.Add() = MakeSpec("b");
  v1::TaskSpec bad = MakeSpec("c");
  bad.set_priority(10);
  *batch.Add() = bad;
  auto r = engine().SubmitBatch(batch);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "tasks[2].priority"))
      << r.status();
  EXPECT_EQ(engine().task_count(), 0u);
  EXPECT_EQ(engine().events().next_sequence(), 1u);

  batch[1].clear_type();
  r = engine().SubmitBatch(batch);
  EXPECT_TRUE(absl::StartsWith(r.status().message(), "tasks[1].type"))
      << r.status();
  EXPECT_EQ(engine().task_count(), 0u);

  google::protobuf::RepeatedPtrField<v1::TaskSpec> empty;
  EXPECT_EQ(engine().SubmitBatch(empty).status().code(),
            absl::StatusCode::kInvalidArgument);
  google::protobuf::RepeatedPtrField<v1::TaskSpec> huge;
  for (int i = 0; i < 1001; ++i) *huge.Add() = MakeSpec();
  EXPECT_EQ(engine().SubmitBatch(huge).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine().task_count(), 0u);

  batch[1].set_type("b");
  batch[2].set_priority(9);
  r = engine().SubmitBatch(batch);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].spec().type(), "a");
  EXPECT_EQ((*r)[1].spec().type(), "b");
  EXPECT_EQ((*r)[2].spec().type(), "c");
  EXPECT_LT((*r)[0].id(), (*r)[1].id());
  EXPECT_LT((*r)[1].id(), (*r)[2].id());
  for (const auto& t : *r) {
    EXPECT_EQ(t.state(), v1::TASK_STATE_PENDING);
    EXPECT_EQ(Get(t.id()).spec().type(), t.spec().type());
  }
  EXPECT_EQ(engine().task_count(), 3u);
}

// ---------------------------------------------------------------- list

std::vector<std::string> ListAll(Engine& engine, v1::ListTasksRequest request,
                                 int* pages) {
  std::vector<std::string> ids;
  *pages = 0;
  while (true) {
    auto r = engine.List(request);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    ++*pages;
    EXPECT_LE(r->tasks_size(), std::max(request.page_size(), 1));
    for (const auto& t : r->tasks()) ids.push_back(t.id());
    if (r->next_page_token().empty()) break;
    EXPECT_EQ(r->next_page_token(), r->tasks(r->tasks_size() - 1).id());
    request.set_page_token(r->next_page_token());
    if (*pages > 10'000) break;
  }
  return ids;
}

TEST_F(EngineTest, ListTasksPagesOverEverythingInIdOrder) {
  std::vector<std::string> all, in_a, cancelled, pending_b;
  for (int i = 0; i < 230; ++i) {
    if (i % 7 == 0) clock_.Advance(absl::Milliseconds(1));
    const std::string queue = i % 3 == 0 ? "a" : "b";
    v1::Task t = Submit(MakeSpec("work", queue));
    all.push_back(t.id());
    if (queue == "a") in_a.push_back(t.id());
    if (i % 5 == 0) {
      ASSERT_TRUE(engine().Cancel(t.id(), "").ok());
      cancelled.push_back(t.id());
    } else if (queue == "b") {
      pending_b.push_back(t.id());
    }
  }
  // Submission order is id order.
  ASSERT_TRUE(std::is_sorted(all.begin(), all.end()));

  int pages = 0;
  v1::ListTasksRequest req;
  req.set_page_size(17);
  EXPECT_EQ(ListAll(engine(), req, &pages), all);
  EXPECT_EQ(pages, (230 + 16) / 17);

  req.set_page_size(1);
  EXPECT_EQ(ListAll(engine(), req, &pages), all);

  req.set_page_size(17);
  req.set_queue("a");
  EXPECT_EQ(ListAll(engine(), req, &pages), in_a);

  req.clear_queue();
  req.add_states(v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(ListAll(engine(), req, &pages), cancelled);

  req.set_queue("b");
  req.clear_states();
  req.add_states(v1::TASK_STATE_PENDING);
  req.add_states(v1::TASK_STATE_RUNNING);
  EXPECT_EQ(ListAll(engine(), req, &pages), pending_b);

  req.set_queue("nobody");
  auto r = engine().List(req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tasks_size(), 0);
  EXPECT_TRUE(r->next_page_token().empty());

  // page_size 0: a default page of 100.
  v1::ListTasksRequest dflt;
  r = engine().List(dflt);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->tasks_size(), 100);
  EXPECT_EQ(r->tasks(0).id(), all[0]);
  EXPECT_EQ(r->next_page_token(), all[99]);
}

TEST_F(EngineTest, ListTasksRejectsBadRequests) {
  v1::ListTasksRequest req;
  req.set_page_size(-1);
  EXPECT_EQ(engine().List(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = v1::ListTasksRequest();
  req.set_page_token("not a token");
  EXPECT_EQ(engine().List(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = v1::ListTasksRequest();
  req.add_states(static_cast<v1::TaskState>(99));
  EXPECT_EQ(engine().List(req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req = v1::ListTasksRequest();
  req.set_queue("bad queue");
  EXPECT_EQ(engine().List(req).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- fencing

TEST_F(EngineTest, StaleLeasesAreFencedOff) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  const std::string id = a.task().id();
  const uint64_t seq = engine().events().next_sequence();

  v1::Assignment wrong = a;
  wrong.set_lease_id(a.lease_id() + 1000);
  EXPECT_TRUE(engine().Complete(*worker_, CompleteMsg(wrong, "forged")).ok());
  EXPECT_TRUE(engine().Fail(*worker_, FailMsg(wrong, "x", "", false)).ok());
  v1::ProgressUpdate p;
  p.set_task_id(id);
  p.set_lease_id(wrong.lease_id());
  p.set_percent(50);
  EXPECT_TRUE(engine().Progress(*worker_, p).ok());
  // The right lease from another worker is not the holder either.
  auto intruder = Connect(&sink2_, "intruder");
  EXPECT_TRUE(engine().Complete(*intruder, CompleteMsg(a, "stolen")).ok());
  // Unknown task ids are ignored the same way.
  v1::Assignment unknown = a;
  unknown.mutable_task()->set_id(kUnknownId);
  EXPECT_TRUE(engine().Complete(*worker_, CompleteMsg(unknown, "?")).ok());

  v1::Task got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_RUNNING);
  EXPECT_FALSE(got.has_progress());
  EXPECT_EQ(engine().events().next_sequence(), seq);

  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "real")).ok());
  EXPECT_EQ(Get(id).result(), "real");
  // The lease ended with the task: a repeat is ignored.
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "again")).ok());
  ASSERT_TRUE(engine().Fail(*worker_, FailMsg(a, "x", "", false)).ok());
  got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(got.result(), "real");
}

// ---------------------------------------------------------------- lost workers

TEST_F(EngineTest, DisconnectRetriesOnAnotherWorker) {
  v1::Assignment first = SubmitAndStart(MakeSpec());
  const std::string id = first.task().id();
  const absl::Time t_disc = clock_.Now();
  engine().DisconnectWorker(worker_);

  v1::Task got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(got.attempt(), 1);
  EXPECT_EQ(got.error().code(), "lease_expired");
  EXPECT_TRUE(got.error().retryable());
  // Default back-off: 1 s with jitter in [0.5, 1].
  const absl::Time due = ToTime(got.schedule_time());
  EXPECT_GE(due, t_disc + absl::Milliseconds(500));
  EXPECT_LE(due, t_disc + absl::Seconds(1));
  auto events = EventsFor(engine(), id);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].type(), v1::EVENT_TYPE_RETRYING);
  EXPECT_EQ(events[2].task().state(), v1::TASK_STATE_SCHEDULED);

  auto w2 = Connect(&sink2_, "w2");
  EXPECT_EQ(sink2_.size(), 0u);  // still backing off
  Advance(absl::Seconds(1));
  auto second = sink2_.AssignmentFor(id);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->task().attempt(), 2);
  EXPECT_EQ(second->task().worker_id(), "w2");
  EXPECT_NE(second->lease_id(), first.lease_id());
  EXPECT_EQ(EventTypesFor(engine(), id),
            (std::vector<v1::EventType>{
                v1::EVENT_TYPE_SUBMITTED, v1::EVENT_TYPE_STARTED,
                v1::EVENT_TYPE_RETRYING, v1::EVENT_TYPE_SCHEDULED,
                v1::EVENT_TYPE_STARTED}));

  // The vanished worker's lease is dead.
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(first, "old")).ok());
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_RUNNING);
  ASSERT_TRUE(engine().Complete(*w2, CompleteMsg(*second, "new")).ok());
  got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(got.result(), "new");
  EXPECT_EQ(sink_.AssignmentCount(), 1u);  // nothing sent after disconnect
}

TEST_F(EngineTest, DisconnectOnLastAttemptFails) {
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    s.mutable_retry()->set_max_attempts(1);
  }));
  engine().DisconnectWorker(worker_);
  v1::Task got = Get(a.task().id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(got.error().code(), "lease_expired");
}

TEST_F(EngineTest, HeartbeatExpiry) {
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_heartbeat_timeout() = ProtoDuration(absl::Seconds(10));
  }));
  const std::string id = a.task().id();
  Advance(absl::Seconds(10) - absl::Nanoseconds(1));
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(sink_.Cancels().size(), 0u);
  Advance(absl::Nanoseconds(1));
  v1::Task got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(got.error().code(), "lease_expired");
  auto cancels = sink_.Cancels();
  ASSERT_EQ(cancels.size(), 1u);  // the worker is told to stop
  EXPECT_EQ(cancels[0].task_id(), id);
  EXPECT_EQ(cancels[0].lease_id(), a.lease_id());
  EXPECT_EQ(EventTypesFor(engine(), id).back(), v1::EVENT_TYPE_RETRYING);
  // Its late result is ignored.
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "late")).ok());
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_SCHEDULED);
}

TEST_F(EngineTest, HeartbeatsKeepTheLease) {
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_heartbeat_timeout() = ProtoDuration(absl::Seconds(10));
  }));
  const std::string id = a.task().id();
  for (int i = 0; i < 20; ++i) {
    Advance(absl::Seconds(6));
    ASSERT_TRUE(engine().Heartbeat(*worker_).ok());
    Advance(absl::Seconds(3));
    ASSERT_EQ(Get(id).state(), v1::TASK_STATE_RUNNING) << "round " << i;
  }
  // Progress counts as a sign of life too.
  v1::ProgressUpdate p;
  p.set_task_id(id);
  p.set_lease_id(a.lease_id());
  p.set_percent(10);
  Advance(absl::Seconds(1));
  ASSERT_TRUE(engine().Progress(*worker_, p).ok());
  Advance(absl::Seconds(9));
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(sink_.Cancels().size(), 0u);
  // Silence for the full timeout ends it.
  Advance(absl::Seconds(1));
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(Get(id).error().code(), "lease_expired");
}

TEST_F(EngineTest, AttemptTimeoutCancelsAndRetries) {
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_timeout() = ProtoDuration(absl::Seconds(5));
  }));
  const std::string id = a.task().id();
  ASSERT_TRUE(a.has_deadline());
  EXPECT_EQ(ToTime(a.deadline()), ToTime(a.task().start_time()) + absl::Seconds(5));
  Advance(absl::Seconds(4));
  ASSERT_TRUE(engine().Heartbeat(*worker_).ok());
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_RUNNING);
  Advance(absl::Seconds(1));
  auto cancels = sink_.Cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].task_id(), id);
  EXPECT_EQ(cancels[0].lease_id(), a.lease_id());
  EXPECT_EQ(cancels[0].reason(), "timeout");
  v1::Task got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(got.error().code(), "timeout");
  EXPECT_TRUE(got.error().retryable());
  EXPECT_EQ(EventTypesFor(engine(), id).back(), v1::EVENT_TYPE_RETRYING);

  Advance(absl::Seconds(1));  // back-off over: attempt 2 with its own deadline
  auto second = sink_.AssignmentFor(id);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->task().attempt(), 2);
  EXPECT_NE(second->lease_id(), a.lease_id());
  EXPECT_EQ(ToTime(second->deadline()), clock_.Now() + absl::Seconds(5));
}

// ---------------------------------------------------------------- failures

TEST_F(EngineTest, NonRetryableFailIsFinal) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  AwaitRecorder rec;
  ASSERT_TRUE(engine()
                  .Await({a.task().id()}, false, absl::InfiniteFuture(),
                         rec.Callback())
                  .ok());
  v1::Fail f = FailMsg(a, "bad_input", "cannot parse", false);
  f.mutable_error()->set_details("line 3");
  ASSERT_TRUE(engine().Fail(*worker_, f).ok());
  v1::Task got = Get(a.task().id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(got.attempt(), 1);
  EXPECT_EQ(got.error().code(), "bad_input");
  EXPECT_EQ(got.error().message(), "cannot parse");
  EXPECT_EQ(got.error().details(), "line 3");
  EXPECT_FALSE(got.error().retryable());
  EXPECT_EQ(EventTypesFor(engine(), a.task().id()),
            (std::vector<v1::EventType>{v1::EVENT_TYPE_SUBMITTED,
                                        v1::EVENT_TYPE_STARTED,
                                        v1::EVENT_TYPE_FAILED}));
  ASSERT_EQ(rec.calls(), 1);
  EXPECT_EQ(rec.last()->tasks(0).state(), v1::TASK_STATE_FAILED);
  Advance(absl::Minutes(10));
  EXPECT_EQ(sink_.AssignmentCount(), 1u);
}

TEST_F(EngineTest, RetriesUntilMaxAttemptsThenFailsWithTheLastError) {
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    s.mutable_retry()->set_max_attempts(3);
    *s.mutable_retry()->mutable_initial_backoff() = ProtoDuration(absl::Seconds(2));
    *s.mutable_retry()->mutable_max_backoff() = ProtoDuration(absl::Seconds(5));
    s.mutable_retry()->set_multiplier(3);
  }));
  const std::string id = a.task().id();

  ASSERT_TRUE(engine().Fail(*worker_, FailMsg(a, "e", "first", true)).ok());
  v1::Task got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_SCHEDULED);
  absl::Duration wait = ToTime(got.schedule_time()) - clock_.Now();
  EXPECT_GE(wait, absl::Seconds(1));  // 2 s, jitter [0.5, 1]
  EXPECT_LE(wait, absl::Seconds(2));
  Advance(absl::Seconds(2));
  auto a2 = sink_.AssignmentFor(id);
  ASSERT_TRUE(a2.has_value());
  ASSERT_EQ(a2->task().attempt(), 2);

  ASSERT_TRUE(engine().Fail(*worker_, FailMsg(*a2, "e", "second", true)).ok());
  got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_SCHEDULED);
  wait = ToTime(got.schedule_time()) - clock_.Now();
  EXPECT_GE(wait, absl::Milliseconds(2500));  // min(2*3, 5) = 5 s, jittered
  EXPECT_LE(wait, absl::Seconds(5));
  Advance(absl::Seconds(5));
  auto a3 = sink_.AssignmentFor(id);
  ASSERT_TRUE(a3.has_value());
  ASSERT_EQ(a3->task().attempt(), 3);

  ASSERT_TRUE(engine().Fail(*worker_, FailMsg(*a3, "e3", "third", true)).ok());
  got = Get(id);
  EXPECT_EQ(got.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(got.attempt(), 3);
  EXPECT_EQ(got.error().code(), "e3");
  EXPECT_EQ(got.error().message(), "third");
  auto types = EventTypesFor(engine(), id);
  EXPECT_EQ(std::count(types.begin(), types.end(), v1::EVENT_TYPE_STARTED), 3);
  EXPECT_EQ(std::count(types.begin(), types.end(), v1::EVENT_TYPE_RETRYING), 2);
  EXPECT_EQ(types.back(), v1::EVENT_TYPE_FAILED);
  Advance(absl::Minutes(10));
  EXPECT_EQ(sink_.AssignmentCount(), 3u);
}

TEST_F(EngineTest, RetryWithoutBackoffIsPendingAtOnce) {
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_retry()->mutable_initial_backoff() = ProtoDuration(absl::ZeroDuration());
  }));
  ASSERT_TRUE(engine().Fail(*worker_, FailMsg(a, "flaky", "", true)).ok());
  // RUNNING -> PENDING and straight back out to the (free) worker.
  auto a2 = sink_.AssignmentFor(a.task().id());
  ASSERT_TRUE(a2.has_value());
  EXPECT_EQ(a2->task().attempt(), 2);
  auto events = EventsFor(engine(), a.task().id());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].type(), v1::EVENT_TYPE_RETRYING);
  EXPECT_EQ(events[2].task().state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(events[3].type(), v1::EVENT_TYPE_STARTED);
}

TEST_F(EngineTest, OversizedResultFailsTheAttempt) {
  EngineOptions options = TestOptions();
  options.limits.max_payload_bytes = 8;
  Reset(options);
  v1::Assignment a = SubmitAndStart(SpecWith([](v1::TaskSpec& s) {
    s.clear_payload();
    s.mutable_retry()->set_max_attempts(1);
  }));
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "123456789")).ok());
  v1::Task got = Get(a.task().id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(got.error().code(), "result_too_large");
  EXPECT_TRUE(got.result().empty());
}

// ---------------------------------------------------------------- retention

TEST_F(EngineTest, RetentionForgetsTerminalTasksAndFreesTheKey) {
  v1::TaskSpec spec = MakeSpec();
  spec.set_idempotency_key("once");
  *spec.mutable_result_ttl() = ProtoDuration(absl::Seconds(60));
  v1::Assignment a = SubmitAndStart(spec);
  const std::string id = a.task().id();
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "r")).ok());

  Advance(absl::Seconds(59));
  EXPECT_EQ(Get(id).state(), v1::TASK_STATE_SUCCEEDED);
  auto dup = engine().Submit(spec);
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->deduplicated);
  EXPECT_EQ(engine().task_count(), 1u);

  Advance(absl::Seconds(1));
  EXPECT_EQ(engine().Get(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine().task_count(), 0u);
  AwaitRecorder rec;
  EXPECT_EQ(engine().Await({id}, false, absl::InfiniteFuture(), rec.Callback())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  auto fresh = engine().Submit(spec);
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(fresh->deduplicated);
  EXPECT_NE(fresh->task.id(), id);
  EXPECT_EQ(engine().task_count(), 1u);
}

TEST_F(EngineTest, DefaultRetention) {
  EngineOptions options = TestOptions();
  options.default_result_ttl = absl::Hours(1);
  Reset(options);
  v1::Task t = Submit(MakeSpec());
  v1::Task live = Submit(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_delay() = ProtoDuration(absl::Hours(3));
  }));
  ASSERT_TRUE(engine().Cancel(t.id(), "").ok());
  Advance(absl::Minutes(59));
  EXPECT_TRUE(engine().Get(t.id()).ok());
  Advance(absl::Minutes(1));
  EXPECT_EQ(engine().Get(t.id()).status().code(), absl::StatusCode::kNotFound);
  Advance(absl::Hours(1));
  EXPECT_EQ(Get(live.id()).state(), v1::TASK_STATE_SCHEDULED);  // not terminal
  EXPECT_EQ(engine().task_count(), 1u);
}

// ---------------------------------------------------------------- progress

TEST_F(EngineTest, ProgressUpdatesAndEvents) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  const std::string id = a.task().id();
  v1::ProgressUpdate p;
  p.set_task_id(id);
  p.set_lease_id(a.lease_id());
  p.set_percent(40);
  p.set_message("resizing");
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(engine().Progress(*worker_, p).ok());
  v1::Task got = Get(id);
  EXPECT_EQ(got.progress().percent(), 40);
  EXPECT_EQ(got.progress().message(), "resizing");
  EXPECT_EQ(ToTime(got.progress().update_time()), clock_.Now());
  p.set_percent(100);
  p.set_message("");
  ASSERT_TRUE(engine().Progress(*worker_, p).ok());
  auto events = EventsFor(engine(), id);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[2].type(), v1::EVENT_TYPE_PROGRESS);
  EXPECT_EQ(events[2].task().progress().percent(), 40);
  EXPECT_EQ(events[3].type(), v1::EVENT_TYPE_PROGRESS);
  EXPECT_EQ(events[3].task().progress().percent(), 100);
  EXPECT_EQ(events[3].task().state(), v1::TASK_STATE_RUNNING);

  for (int bad : {-1, 101}) {
    p.set_percent(bad);
    absl::Status s = engine().Progress(*worker_, p);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(s.message(), "progress.percent")) << s;
  }
  EXPECT_EQ(EventsFor(engine(), id).size(), 4u);
  EXPECT_EQ(Get(id).progress().percent(), 100);
  // A wordy message is shortened (on a character boundary), not refused:
  // refusing would end the worker's stream and all its leases.
  p.set_percent(1);
  p.set_message(std::string(1023, 'm') + "\xC3\xA9");
  EXPECT_TRUE(engine().Progress(*worker_, p).ok());
  EXPECT_EQ(EventsFor(engine(), id).size(), 5u);
  EXPECT_EQ(Get(id).progress().message(), std::string(1023, 'm'));
}

// ---------------------------------------------------------------- shutdown

TEST_F(EngineTest, ShutdownAnswersPendingAwaits) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  v1::Task waiting = Submit(SpecWith([](v1::TaskSpec& s) {
    *s.mutable_delay() = ProtoDuration(absl::Hours(1));
  }));
  AwaitRecorder r1, r2, done_before;
  ASSERT_TRUE(engine()
                  .Await({a.task().id()}, false, absl::InfiniteFuture(),
                         r1.Callback())
                  .ok());
  ASSERT_TRUE(engine()
                  .Await({waiting.id(), a.task().id()}, true,
                         clock_.Now() + absl::Minutes(1), r2.Callback())
                  .ok());
  int woken = 0;
  engine().events().Subscribe([&] { ++woken; });

  engine().Shutdown();
  EXPECT_TRUE(engine().shutting_down());
  ASSERT_EQ(r1.calls(), 1);
  ASSERT_EQ(r2.calls(), 1);
  EXPECT_EQ(r1.last().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r2.last().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(engine().events().closed());
  EXPECT_GE(woken, 1);

  EXPECT_EQ(engine().Submit(MakeSpec()).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(engine()
                .Await({waiting.id()}, false, absl::InfiniteFuture(),
                       done_before.Callback())
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  RecordingSink late;
  v1::Hello hello;
  EXPECT_EQ(engine().ConnectWorker(hello, &late).status().code(),
            absl::StatusCode::kUnavailable);

  // Finishing now answers no Await a second time.
  ASSERT_TRUE(engine().Complete(*worker_, CompleteMsg(a, "r")).ok());
  Advance(absl::Minutes(2));
  EXPECT_EQ(r1.calls(), 1);
  EXPECT_EQ(r2.calls(), 1);
  EXPECT_EQ(done_before.calls(), 0);
}

TEST_F(EngineTest, DisconnectDuringShutdownKeepsTasksRunning) {
  v1::Assignment a = SubmitAndStart(MakeSpec());
  engine().Shutdown();
  engine().DisconnectWorker(worker_);
  v1::Task got = Get(a.task().id());
  EXPECT_EQ(got.state(), v1::TASK_STATE_RUNNING);  // recovered on restart
  EXPECT_EQ(got.attempt(), 1);
}

}  // namespace
}  // namespace taskd
