// depends_on: a task waits SCHEDULED until every dependency SUCCEEDED; a
// failed or cancelled dependency cancels it (dependency_failed),
// transitively; the links survive a restart.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "scheduler/engine.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/journal.h"
#include "scheduler/storage/memory_storage.h"

namespace taskd {
namespace {

using ::taskd::testing::CompleteMsg;
using ::taskd::testing::ConnectWorker;
using ::taskd::testing::FailMsg;
using ::taskd::testing::MakeSpec;
using ::taskd::testing::RecordingSink;
using ::taskd::testing::TestOptions;

v1::TaskSpec After(const std::string& type,
                   std::initializer_list<std::string> deps) {
  v1::TaskSpec spec = MakeSpec(type);
  for (const auto& d : deps) spec.add_depends_on(d);
  return spec;
}

class DependencyTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(engine_.illegal_transitions(), 0u); }

  std::string SubmitId(const v1::TaskSpec& spec) {
    auto r = engine_.Submit(spec);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->task.id() : "";
  }
  v1::TaskState State(const std::string& id) { return engine_.Get(id)->state(); }

  FakeClock clock_;
  Engine engine_{TestOptions(), &clock_};
};

TEST_F(DependencyTest, WaitsForEveryDependencyToSucceed) {
  std::string a = SubmitId(MakeSpec("a"));
  std::string b = SubmitId(MakeSpec("b"));
  std::string c = SubmitId(After("c", {a, b}));
  EXPECT_EQ(State(c), v1::TASK_STATE_SCHEDULED);

  RecordingSink sink;
  auto worker = ConnectWorker(engine_, &sink, "w", {}, {}, 10);
  ASSERT_TRUE(sink.AssignmentFor(a).has_value());
  ASSERT_TRUE(sink.AssignmentFor(b).has_value());
  EXPECT_FALSE(sink.AssignmentFor(c).has_value());

  ASSERT_TRUE(engine_.Complete(*worker, CompleteMsg(*sink.AssignmentFor(a), "")).ok());
  EXPECT_EQ(State(c), v1::TASK_STATE_SCHEDULED);  // b still running
  ASSERT_TRUE(engine_.Complete(*worker, CompleteMsg(*sink.AssignmentFor(b), "")).ok());
  EXPECT_NE(State(c), v1::TASK_STATE_SCHEDULED);
  EXPECT_TRUE(sink.AssignmentFor(c).has_value());  // released and dispatched
}

TEST_F(DependencyTest, FailureCancelsDependentsTransitively) {
  std::string a = SubmitId(MakeSpec("a"));
  std::string b = SubmitId(After("b", {a}));
  std::string c = SubmitId(After("c", {b}));
  RecordingSink sink;
  auto worker = ConnectWorker(engine_, &sink);
  ASSERT_TRUE(engine_
                  .Fail(*worker, FailMsg(*sink.AssignmentFor(a), "boom",
                                         "exploded", /*retryable=*/false))
                  .ok());
  EXPECT_EQ(State(a), v1::TASK_STATE_FAILED);
  for (const std::string& id : {b, c}) {
    auto t = engine_.Get(id);
    EXPECT_EQ(t->state(), v1::TASK_STATE_CANCELLED) << id;
    EXPECT_EQ(t->error().code(), "dependency_failed") << id;
  }
  EXPECT_NE(engine_.Get(c)->error().message().find(b), std::string::npos);
}

TEST_F(DependencyTest, CancelledDependencyCancelsDependent) {
  std::string a = SubmitId(MakeSpec("a"));
  std::string b = SubmitId(After("b", {a}));
  ASSERT_TRUE(engine_.Cancel(a, "no").ok());
  EXPECT_EQ(State(b), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(engine_.Get(b)->error().code(), "dependency_failed");
}

TEST_F(DependencyTest, AlreadyFinishedDependenciesCountAtOnce) {
  std::string ok = SubmitId(MakeSpec("ok"));
  std::string bad = SubmitId(MakeSpec("bad"));
  RecordingSink sink;
  auto worker = ConnectWorker(engine_, &sink);
  ASSERT_TRUE(engine_.Complete(*worker, CompleteMsg(*sink.AssignmentFor(ok), "")).ok());
  ASSERT_TRUE(engine_.Cancel(bad, "").ok());
  engine_.DisconnectWorker(worker);

  std::string ready = SubmitId(After("x", {ok}));
  EXPECT_EQ(State(ready), v1::TASK_STATE_PENDING);
  std::string doomed = SubmitId(After("y", {ok, bad}));
  EXPECT_EQ(State(doomed), v1::TASK_STATE_CANCELLED);
}

TEST_F(DependencyTest, DelayAndDependenciesBothApply) {
  std::string a = SubmitId(MakeSpec("a"));
  v1::TaskSpec spec = After("b", {a});
  *spec.mutable_delay() = FromDuration(absl::Minutes(5));
  std::string b = SubmitId(spec);
  RecordingSink sink;
  auto worker = ConnectWorker(engine_, &sink);
  ASSERT_TRUE(engine_.Complete(*worker, CompleteMsg(*sink.AssignmentFor(a), "")).ok());
  EXPECT_EQ(State(b), v1::TASK_STATE_SCHEDULED);  // its time has not come
  clock_.Advance(absl::Minutes(5));
  engine_.ProcessTimers();
  EXPECT_TRUE(sink.AssignmentFor(b).has_value());
}

TEST_F(DependencyTest, UnknownDependencyIsInvalidArgumentNamingIt) {
  auto r = engine_.Submit(After("b", {"00000000000000000000000000"}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("task.depends_on[0]"), std::string::npos)
      << r.status();
  std::string a = SubmitId(MakeSpec("a"));
  google::protobuf::RepeatedPtrField<v1::TaskSpec> batch;
  *batch.Add() = MakeSpec("ok");
  *batch.Add() = After("b", {a, "00000000000000000000000000"});
  auto rb = engine_.SubmitBatch(batch);
  EXPECT_EQ(rb.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(rb.status().message().find("tasks[1].depends_on[1]"),
            std::string::npos)
      << rb.status();
  EXPECT_EQ(engine_.task_count(), 1u);  // nothing of the batch was created
}

TEST(DependencyRecoveryTest, LinksSurviveARestart) {
  auto storage = NewMemoryStorage();
  FakeClock clock;
  std::string a, b;
  {
    Journal journal(storage.get(), nullptr);
    EngineOptions options = TestOptions();
    options.journal = &journal;
    Engine engine(options, &clock);
    ASSERT_TRUE(engine.Recover(*storage).ok());
    a = engine.Submit(MakeSpec("a"))->task.id();
    b = engine.Submit(After("b", {a}))->task.id();
    journal.Stop();  // before the engine goes: its callbacks use the engine
  }
  Journal journal(storage.get(), nullptr);
  EngineOptions options = TestOptions();
  options.id_seed = 7;
  options.journal = &journal;
  Engine engine(options, &clock);
  ASSERT_TRUE(engine.Recover(*storage).ok());
  EXPECT_EQ(engine.Get(b)->state(), v1::TASK_STATE_SCHEDULED);
  RecordingSink sink;
  auto worker = ConnectWorker(engine, &sink);
  ASSERT_FALSE(sink.AssignmentFor(b).has_value());
  ASSERT_TRUE(engine.Complete(*worker, CompleteMsg(*sink.AssignmentFor(a), "")).ok());
  EXPECT_TRUE(sink.AssignmentFor(b).has_value());  // released by a's success
  EXPECT_EQ(engine.illegal_transitions(), 0u);
  journal.Stop();
}

}  // namespace
}  // namespace taskd
