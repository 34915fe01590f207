// The engine over a Journal: acknowledgements wait for durability, and a new
// engine recovers every task state, idempotency keys, leases and sequences.
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "scheduler/engine.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/journal.h"
#include "scheduler/storage/rocksdb_storage.h"
#include "scheduler/storage/storage_test_util.h"
#include "scheduler/storage/memory_storage.h"

namespace taskd {
namespace {

using ::taskd::testing::CompleteMsg;
using ::taskd::testing::ConnectWorker;
using ::taskd::testing::MakeSpec;
using ::taskd::testing::ProtoDuration;
using ::taskd::testing::RecordingSink;
using ::taskd::testing::TestOptions;

// A store whose appends wait until the test opens the gate.
class GatedStorage final : public Storage {
 public:
  GatedStorage() : inner_(NewMemoryStorage()) {}
  absl::Status Append(std::vector<Mutation> batch) override {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&open_));
    }
    return inner_->Append(std::move(batch));
  }
  absl::Status Recover(
      const std::function<absl::Status(v1::Task&)>& on_task,
      const std::function<absl::Status(absl::string_view, absl::string_view)>&
          on_meta) override {
    return inner_->Recover(on_task, on_meta);
  }
  absl::Status Compact() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }
  StorageStats stats() const override { return inner_->stats(); }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  // Later appends wait again (one already past the gate is not stopped).
  void Shut() {
    absl::MutexLock lock(&mu_);
    open_ = false;
  }

 private:
  std::unique_ptr<Storage> inner_;
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

// One run of the server over a store that outlives it.
struct ServerRun {
  ServerRun(Storage* storage, Clock* clock) : journal(storage, nullptr) {
    EngineOptions options = TestOptions();
    options.id_seed = 0;  // a restarted server draws a new id start
    options.journal = &journal;
    engine = std::make_unique<Engine>(options, clock);
  }
  ~ServerRun() {
    // The journal first: its last callbacks still call into the engine.
    journal.Stop();
    engine.reset();
  }
  Journal journal;
  std::unique_ptr<Engine> engine;
};

TEST(EngineDurabilityTest, SubmitIsAcknowledgedOnlyOnceDurable) {
  GatedStorage storage;
  FakeClock clock;
  ServerRun run(&storage, &clock);
  absl::Notification acked;
  run.engine->SubmitAsync(MakeSpec(), [&](absl::StatusOr<SubmitResult> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    acked.Notify();
  });
  EXPECT_FALSE(acked.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  storage.Open();
  EXPECT_TRUE(acked.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

// Issue 10, defect 9: nothing a client can see shows a terminal state
// before it is durable (else a crash re-runs a task whose result a client
// already saw). Await on an already-terminal task, Get, Cancel and the event
// log behind Stream all wait for the journal.
TEST(EngineDurabilityTest, TerminalStatesAreShownOnlyOnceDurable) {
  GatedStorage storage;
  storage.Open();
  FakeClock clock;
  ServerRun run(&storage, &clock);
  Engine& engine = *run.engine;
  RecordingSink sink;
  auto worker = ConnectWorker(engine, &sink);
  ASSERT_NE(worker, nullptr);
  auto submitted = engine.Submit(MakeSpec());
  ASSERT_TRUE(submitted.ok());
  const std::string id = submitted->task.id();
  auto a = sink.AssignmentFor(id);
  ASSERT_TRUE(a.has_value());
  // The STARTED write may still be in flight: wait until it is durable.
  absl::Notification started;
  engine.GetAsync(id, [&](absl::StatusOr<v1::Task>) { started.Notify(); });
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const uint64_t readable_before = [&] {
    std::vector<v1::TaskEvent> events;
    EXPECT_TRUE(engine.events().Read(1, 1000, &events).ok());
    return events.size();
  }();

  storage.Shut();
  ASSERT_TRUE(engine.Complete(*worker, CompleteMsg(*a, "done")).ok());
  ASSERT_EQ(engine.Get(id)->state(), v1::TASK_STATE_SUCCEEDED);  // in memory

  absl::Notification awaited, got, cancelled;
  ASSERT_TRUE(engine
                  .Await({id}, false, absl::InfiniteFuture(),
                         [&](absl::StatusOr<v1::AwaitResponse> r) {
                           EXPECT_TRUE(r.ok());
                           EXPECT_EQ(r->tasks(0).state(),
                                     v1::TASK_STATE_SUCCEEDED);
                           awaited.Notify();
                         })
                  .ok());
  engine.GetAsync(id, [&](absl::StatusOr<v1::Task> t) {
    EXPECT_TRUE(t.ok());
    EXPECT_EQ(t->state(), v1::TASK_STATE_SUCCEEDED);
    got.Notify();
  });
  engine.CancelAsync(id, "", [&](absl::StatusOr<v1::Task> t) {
    EXPECT_TRUE(t.ok());
    EXPECT_EQ(t->state(), v1::TASK_STATE_SUCCEEDED);
    cancelled.Notify();
  });
  // The gate is shut, so none of them can have answered yet.
  EXPECT_FALSE(awaited.HasBeenNotified());
  EXPECT_FALSE(got.HasBeenNotified());
  EXPECT_FALSE(cancelled.HasBeenNotified());
  std::vector<v1::TaskEvent> events;
  ASSERT_TRUE(engine.events().Read(1, 1000, &events).ok());
  EXPECT_EQ(events.size(), readable_before);  // SUCCEEDED not readable yet
  for (const auto& e : events) {
    EXPECT_NE(e.type(), v1::EVENT_TYPE_SUCCEEDED);
  }

  storage.Open();
  ASSERT_TRUE(got.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(cancelled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(awaited.WaitForNotificationWithTimeout(absl::Seconds(10)));
  events.clear();
  ASSERT_TRUE(engine.events().Read(1, 1000, &events).ok());
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().type(), v1::EVENT_TYPE_SUCCEEDED);
}

TEST(EngineDurabilityTest, RecoveryRestoresStatesKeysLeasesAndSequences) {
  auto storage = NewMemoryStorage();
  FakeClock clock;
  std::string pending, scheduled, running, done, keyed;
  uint64_t old_lease = 0;
  uint64_t old_next_sequence = 0;
  RecordingSink old_sink;  // outlives the first run's worker session
  {
    ServerRun first(storage.get(), &clock);
    ASSERT_TRUE(first.engine->Recover(*storage).ok());
    auto worker =
        ConnectWorker(*first.engine, &old_sink, "w1", {"default"}, {"run"}, 2);
    auto d = first.engine->Submit(MakeSpec("run"));
    auto r = first.engine->Submit(MakeSpec("run"));
    ASSERT_TRUE(d.ok() && r.ok());
    done = d->task.id();
    running = r->task.id();
    auto a = old_sink.AssignmentFor(done);
    ASSERT_TRUE(a.has_value());
    ASSERT_TRUE(first.engine->Complete(*worker, CompleteMsg(*a, "out")).ok());
    old_lease = old_sink.AssignmentFor(running)->lease_id();

    auto p = first.engine->Submit(MakeSpec("idle"));  // no worker serves it
    v1::TaskSpec later = MakeSpec("idle");
    *later.mutable_delay() = ProtoDuration(absl::Hours(1));
    auto s = first.engine->Submit(later);
    v1::TaskSpec with_key = MakeSpec("idle");
    with_key.set_idempotency_key("order-42");
    auto k = first.engine->Submit(with_key);
    ASSERT_TRUE(p.ok() && s.ok() && k.ok());
    pending = p->task.id();
    scheduled = s->task.id();
    keyed = k->task.id();
    old_next_sequence = first.engine->events().next_sequence();
    // Await the completion's durability, then "crash": no disconnect, no
    // shutdown; only what the journal committed survives.
    absl::Notification durable;
    first.journal.WhenDurable(first.journal.last_ticket(),
                              [&](absl::Status) { durable.Notify(); });
    ASSERT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }

  ServerRun second(storage.get(), &clock);
  auto stats = second.engine->Recover(*storage);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->tasks, 5u);
  EXPECT_EQ(stats->pending, 2u);
  EXPECT_EQ(stats->scheduled, 1u);
  EXPECT_EQ(stats->running, 1u);
  EXPECT_EQ(stats->terminal, 1u);
  EXPECT_EQ(stats->epoch, 1u);

  Engine& engine = *second.engine;
  EXPECT_EQ(engine.Get(pending)->state(), v1::TASK_STATE_PENDING);
  EXPECT_EQ(engine.Get(scheduled)->state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(engine.Get(running)->state(), v1::TASK_STATE_RUNNING);
  EXPECT_EQ(engine.Get(running)->lease_id(), old_lease);
  EXPECT_EQ(engine.Get(done)->state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(engine.Get(done)->result(), "out");

  // The idempotency key still maps to the first task.
  v1::TaskSpec again = MakeSpec("idle");
  again.set_idempotency_key("order-42");
  auto dedup = engine.Submit(again);
  ASSERT_TRUE(dedup.ok());
  EXPECT_TRUE(dedup->deduplicated);
  EXPECT_EQ(dedup->task.id(), keyed);

  // Sequences and leases continue above the first run's.
  EXPECT_GT(engine.events().next_sequence(), old_next_sequence);
  RecordingSink sink;
  auto worker = ConnectWorker(engine, &sink, "w3", {"default"}, {"idle"}, 5);
  auto a = sink.AssignmentFor(pending);
  ASSERT_TRUE(a.has_value());
  EXPECT_GT(a->lease_id(), old_lease);

  // The recovered RUNNING task may be finished by its reconnected holder,
  // which names the old lease from a new session.
  RecordingSink holder_sink;
  auto holder =
      ConnectWorker(engine, &holder_sink, "w1", {"default"}, {"run"}, 1);
  v1::Complete c;
  c.set_task_id(running);
  c.set_lease_id(old_lease);
  c.set_result("late but fine");
  ASSERT_TRUE(engine.Complete(*holder, c).ok());
  EXPECT_EQ(engine.Get(running)->state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(engine.Get(running)->result(), "late but fine");
  EXPECT_EQ(engine.illegal_transitions(), 0u);
}

TEST(EngineDurabilityTest, UnclaimedRecoveredLeaseExpiresAndRetries) {
  auto storage = NewMemoryStorage();
  FakeClock clock;
  std::string id;
  RecordingSink old_sink;
  {
    ServerRun first(storage.get(), &clock);
    ASSERT_TRUE(first.engine->Recover(*storage).ok());
    auto worker = ConnectWorker(*first.engine, &old_sink, "w1");
    v1::TaskSpec spec = MakeSpec();
    *spec.mutable_heartbeat_timeout() = ProtoDuration(absl::Seconds(10));
    *spec.mutable_retry()->mutable_initial_backoff() =
        ProtoDuration(absl::Seconds(1));
    auto r = first.engine->Submit(spec);
    ASSERT_TRUE(r.ok());
    id = r->task.id();
    ASSERT_TRUE(old_sink.AssignmentFor(id).has_value());
    absl::Notification durable;
    first.journal.WhenDurable(first.journal.last_ticket(),
                              [&](absl::Status) { durable.Notify(); });
    ASSERT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  ServerRun second(storage.get(), &clock);
  ASSERT_TRUE(second.engine->Recover(*storage).ok());
  Engine& engine = *second.engine;

  clock.Advance(absl::Seconds(9));
  engine.ProcessTimers();
  EXPECT_EQ(engine.Get(id)->state(), v1::TASK_STATE_RUNNING);  // window open
  clock.Advance(absl::Seconds(2));
  engine.ProcessTimers();
  auto t = engine.Get(id);
  EXPECT_EQ(t->state(), v1::TASK_STATE_SCHEDULED);
  EXPECT_EQ(t->error().code(), "lease_expired");

  RecordingSink sink;
  auto worker = ConnectWorker(engine, &sink, "w2");
  clock.Advance(absl::Seconds(2));
  engine.ProcessTimers();
  auto a = sink.AssignmentFor(id);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->task().attempt(), 2);
  EXPECT_EQ(engine.illegal_transitions(), 0u);
}

TEST(EngineDurabilityTest, RetentionDeletesFromStorageAfterRecovery) {
  auto storage = NewMemoryStorage();
  FakeClock clock;
  std::string id;
  {
    ServerRun first(storage.get(), &clock);
    ASSERT_TRUE(first.engine->Recover(*storage).ok());
    v1::TaskSpec spec = MakeSpec();
    *spec.mutable_result_ttl() = ProtoDuration(absl::Seconds(5));
    auto r = first.engine->Submit(spec);
    ASSERT_TRUE(r.ok());
    id = r->task.id();
    ASSERT_TRUE(first.engine->Cancel(id, "done with it").ok());
  }
  {
    ServerRun second(storage.get(), &clock);
    ASSERT_TRUE(second.engine->Recover(*storage).ok());
    EXPECT_EQ(second.engine->Get(id)->state(), v1::TASK_STATE_CANCELLED);
    clock.Advance(absl::Seconds(6));
    second.engine->ProcessTimers();
    EXPECT_EQ(second.engine->Get(id).status().code(),
              absl::StatusCode::kNotFound);
  }
  size_t stored = 0;
  ASSERT_TRUE(storage
                  ->Recover(
                      [&](const v1::Task&) {
                        ++stored;
                        return absl::OkStatus();
                      },
                      nullptr)
                  .ok());
  EXPECT_EQ(stored, 0u);
}

}  // namespace
}  // namespace taskd

namespace taskd {
namespace {

// A large payload is journaled once (PutTaskApart) and every later change
// writes only the small record; across two crashes the task keeps its
// payload, in RocksDB as in production.
TEST(EngineDurabilityTest, LargePayloadSurvivesStateChangesAndRestarts) {
  RocksDbStorageOptions options;
  options.data_dir = NewTestDir("large_payload");
  options.sync = false;
  std::string payload(64 << 10, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = char(i * 31 + 7);
  FakeClock clock;
  std::string id;
  uint64_t lease = 0;
  RecordingSink sink1, sink2;
  const auto crash = [](ServerRun& run) {
    absl::Notification durable;
    run.journal.WhenDurable(run.journal.last_ticket(),
                            [&](absl::Status) { durable.Notify(); });
    ASSERT_TRUE(durable.WaitForNotificationWithTimeout(absl::Seconds(10)));
  };
  {
    auto storage = OpenRocksDbStorage(options);
    ASSERT_TRUE(storage.ok()) << storage.status();
    ServerRun run(storage->get(), &clock);
    ASSERT_TRUE(run.engine->Recover(**storage).ok());
    v1::TaskSpec spec = MakeSpec("big");
    spec.set_payload(payload);
    auto submitted = run.engine->Submit(spec);
    ASSERT_TRUE(submitted.ok()) << submitted.status();
    id = submitted->task.id();
    auto worker = ConnectWorker(*run.engine, &sink1, "w", {"default"}, {"big"}, 1);
    auto a = sink1.AssignmentFor(id);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->task().spec().payload(), payload);
    lease = a->lease_id();
    crash(run);
  }
  {
    auto storage = OpenRocksDbStorage(options);
    ASSERT_TRUE(storage.ok()) << storage.status();
    ServerRun run(storage->get(), &clock);
    ASSERT_TRUE(run.engine->Recover(**storage).ok());
    EXPECT_EQ(run.engine->Get(id)->spec().payload(), payload);
    auto worker = ConnectWorker(*run.engine, &sink2, "w", {"default"}, {"big"}, 1);
    v1::Complete c;
    c.set_task_id(id);
    c.set_lease_id(lease);
    c.set_result("done");
    ASSERT_TRUE(run.engine->Complete(*worker, c).ok());
    crash(run);
  }
  auto storage = OpenRocksDbStorage(options);
  ASSERT_TRUE(storage.ok()) << storage.status();
  ServerRun run(storage->get(), &clock);
  auto stats = run.engine->Recover(**storage);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->quarantined, 0u);
  auto task = run.engine->Get(id);
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->state(), v1::TASK_STATE_SUCCEEDED);
  EXPECT_EQ(task->result(), "done");
  EXPECT_EQ(task->spec().payload(), payload);
}

}  // namespace
}  // namespace taskd
