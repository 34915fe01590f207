// ScheduleTable: firing times (cron and interval), pause/resume/delete,
// validation, and durability across a simulated restart (MemoryStorage +
// Journal, as in engine_durability_test.cc). Time is a FakeClock; timers run
// through Engine::ProcessTimers; nothing sleeps.
#include "scheduler/schedule_table.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/civil_time.h"
#include "gtest/gtest.h"
#include "scheduler/engine.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/journal.h"
#include "scheduler/storage/memory_storage.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

using ::taskd::testing::ProtoDuration;
using ::taskd::testing::TestOptions;

constexpr absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

v1::Schedule Interval(const std::string& id, absl::Duration every,
                      const std::string& type = "tick") {
  v1::Schedule s;
  s.set_id(id);
  *s.mutable_interval() = ProtoDuration(every);
  s.mutable_template_()->set_type(type);
  s.mutable_template_()->set_queue("beat");
  s.mutable_template_()->set_payload("p");
  return s;
}

v1::Schedule Cron(const std::string& id, const std::string& expr) {
  v1::Schedule s;
  s.set_id(id);
  s.set_cron(expr);
  s.mutable_template_()->set_type("report");
  return s;
}

// Tasks in the engine, oldest first.
std::vector<v1::Task> Tasks(const Engine& engine) {
  v1::ListTasksRequest request;
  request.set_page_size(1000);
  request.set_include_payloads(true);
  auto page = engine.List(request);
  EXPECT_TRUE(page.ok()) << page.status();
  if (!page.ok()) return {};
  return {page->tasks().begin(), page->tasks().end()};
}

absl::Time NextFire(const ScheduleTable& table, const std::string& id) {
  auto s = table.Get(id);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok() || !s->has_next_fire_time()) return absl::InfinitePast();
  return ToTime(s->next_fire_time());
}

// An engine and table in memory mode.
struct MemoryRun {
  explicit MemoryRun(FakeClock* clock)
      : clock(clock), engine(TestOptions(), clock) {
    ScheduleTableOptions options;
    options.id_seed = 7;
    table = std::make_unique<ScheduleTable>(options, &engine);
    table->Start();
  }
  void Advance(absl::Duration d) {
    clock->Advance(d);
    engine.ProcessTimers();
    table->WaitForFirings();
  }
  FakeClock* clock;
  Engine engine;
  std::unique_ptr<ScheduleTable> table;
};

TEST(ScheduleTableTest, IntervalFiresEveryPeriod) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  auto created = run.table->Create(Interval("every-minute", absl::Minutes(1)));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(ToTime(created->next_fire_time()), kStart + absl::Minutes(1));
  EXPECT_EQ(ToTime(created->create_time()), kStart);
  EXPECT_FALSE(created->has_last_fire_time());

  run.Advance(absl::Seconds(59));
  EXPECT_EQ(Tasks(run.engine).size(), 0u);
  run.Advance(absl::Seconds(1));
  auto tasks = Tasks(run.engine);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].spec().type(), "tick");
  EXPECT_EQ(tasks[0].spec().queue(), "beat");
  EXPECT_EQ(tasks[0].spec().payload(), "p");
  EXPECT_EQ(tasks[0].spec().idempotency_key(),
            absl::StrCat("schedule:every-minute:",
                         absl::ToUnixSeconds(kStart + absl::Minutes(1))));
  auto got = run.table->Get("every-minute");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->last_task_id(), tasks[0].id());
  EXPECT_EQ(ToTime(got->last_fire_time()), kStart + absl::Minutes(1));
  EXPECT_EQ(ToTime(got->next_fire_time()), kStart + absl::Minutes(2));

  run.Advance(absl::Minutes(1));
  run.Advance(absl::Minutes(1));
  EXPECT_EQ(Tasks(run.engine).size(), 3u);
  EXPECT_EQ(run.engine.illegal_transitions(), 0u);
}

TEST(ScheduleTableTest, CronFiresAtMatchingMinutes) {
  // 2024-01-01 00:00:30 UTC, a Monday.
  const absl::Time start = absl::FromCivil(
      absl::CivilSecond(2024, 1, 1, 0, 0, 30), absl::UTCTimeZone());
  FakeClock clock(start);
  MemoryRun run(&clock);
  auto created = run.table->Create(Cron("quarterly", "*/15 * * * *"));
  ASSERT_TRUE(created.ok()) << created.status();
  const absl::Time first = start + absl::Minutes(15) - absl::Seconds(30);
  EXPECT_EQ(ToTime(created->next_fire_time()), first);

  run.Advance(first - start - absl::Seconds(1));
  EXPECT_EQ(Tasks(run.engine).size(), 0u);
  run.Advance(absl::Seconds(1));
  ASSERT_EQ(Tasks(run.engine).size(), 1u);
  EXPECT_EQ(NextFire(*run.table, "quarterly"), first + absl::Minutes(15));
  run.Advance(absl::Minutes(15));
  EXPECT_EQ(Tasks(run.engine).size(), 2u);
  EXPECT_EQ(NextFire(*run.table, "quarterly"), first + absl::Minutes(30));
}

TEST(ScheduleTableTest, PauseStopsAndResumeRestartsFromNow) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  ASSERT_TRUE(run.table->Create(Interval("s", absl::Minutes(1))).ok());
  auto paused = run.table->Pause("s");
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_TRUE(paused->paused());
  EXPECT_FALSE(paused->has_next_fire_time());
  EXPECT_TRUE(run.table->Pause("s").ok());  // idempotent

  run.Advance(absl::Minutes(5));
  EXPECT_EQ(Tasks(run.engine).size(), 0u);

  auto resumed = run.table->Resume("s");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_FALSE(resumed->paused());
  EXPECT_EQ(ToTime(resumed->next_fire_time()), clock.Now() + absl::Minutes(1));
  run.Advance(absl::Seconds(59));
  EXPECT_EQ(Tasks(run.engine).size(), 0u);
  run.Advance(absl::Seconds(1));
  EXPECT_EQ(Tasks(run.engine).size(), 1u);
}

TEST(ScheduleTableTest, PauseAndResumeBeforeTheSlotFireOnce) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  ASSERT_TRUE(run.table->Create(Interval("s", absl::Minutes(1))).ok());
  // Two timers are now armed for the same slot; only one may fire.
  ASSERT_TRUE(run.table->Pause("s").ok());
  ASSERT_TRUE(run.table->Resume("s").ok());
  run.Advance(absl::Minutes(1));
  EXPECT_EQ(Tasks(run.engine).size(), 1u);
}

TEST(ScheduleTableTest, CreatedPausedDoesNotFire) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  v1::Schedule s = Interval("s", absl::Seconds(1));
  s.set_paused(true);
  auto created = run.table->Create(s);
  ASSERT_TRUE(created.ok());
  EXPECT_FALSE(created->has_next_fire_time());
  run.Advance(absl::Seconds(10));
  EXPECT_EQ(Tasks(run.engine).size(), 0u);
}

TEST(ScheduleTableTest, DeleteStopsFiring) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  ASSERT_TRUE(run.table->Create(Interval("s", absl::Minutes(1))).ok());
  run.Advance(absl::Minutes(1));
  ASSERT_EQ(Tasks(run.engine).size(), 1u);
  ASSERT_TRUE(run.table->Delete("s").ok());
  EXPECT_TRUE(absl::IsNotFound(run.table->Get("s").status()));
  EXPECT_TRUE(absl::IsNotFound(run.table->Delete("s")));
  run.Advance(absl::Minutes(5));
  EXPECT_EQ(Tasks(run.engine).size(), 1u);
  EXPECT_EQ(run.table->size(), 0u);
}

TEST(ScheduleTableTest, StopEndsFiring) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  ASSERT_TRUE(run.table->Create(Interval("s", absl::Minutes(1))).ok());
  run.table->Stop();
  run.Advance(absl::Minutes(3));
  EXPECT_EQ(Tasks(run.engine).size(), 0u);
}

TEST(ScheduleTableTest, AlreadyExistsGeneratedIdsAndNotFound) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  ASSERT_TRUE(run.table->Create(Interval("dup", absl::Minutes(1))).ok());
  auto again = run.table->Create(Interval("dup", absl::Minutes(2)));
  EXPECT_TRUE(absl::IsAlreadyExists(again.status())) << again.status();

  auto generated = run.table->Create(Interval("", absl::Minutes(1)));
  ASSERT_TRUE(generated.ok()) << generated.status();
  EXPECT_FALSE(generated->id().empty());
  EXPECT_TRUE(run.table->Get(generated->id()).ok());

  EXPECT_TRUE(absl::IsNotFound(run.table->Get("nope").status()));
  EXPECT_TRUE(absl::IsNotFound(run.table->Pause("nope").status()));
  EXPECT_TRUE(absl::IsNotFound(run.table->Resume("nope").status()));
  EXPECT_TRUE(absl::IsNotFound(run.table->Delete("nope")));
}

TEST(ScheduleTableTest, LimitIsResourceExhausted) {
  FakeClock clock(kStart);
  Engine engine(TestOptions(), &clock);
  ScheduleTableOptions options;
  options.max_schedules = 2;
  ScheduleTable table(options, &engine);
  ASSERT_TRUE(table.Create(Interval("a", absl::Minutes(1))).ok());
  ASSERT_TRUE(table.Create(Interval("b", absl::Minutes(1))).ok());
  auto third = table.Create(Interval("c", absl::Minutes(1)));
  EXPECT_TRUE(absl::IsResourceExhausted(third.status())) << third.status();
  ASSERT_TRUE(table.Delete("a").ok());
  EXPECT_TRUE(table.Create(Interval("c", absl::Minutes(1))).ok());
}

TEST(ScheduleTableTest, ListPagesInIdOrder) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  for (const char* id : {"c", "a", "e", "b", "d"}) {
    ASSERT_TRUE(run.table->Create(Interval(id, absl::Minutes(1))).ok());
  }
  v1::ListSchedulesRequest request;
  request.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = run.table->List(request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& s : page->schedules()) seen.push_back(s.id());
    request.set_page_token(page->next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(pages, 3);
  request.set_page_size(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(run.table->List(request).status()));
}

TEST(ScheduleTableTest, ValidationNamesTheField) {
  FakeClock clock(kStart);
  MemoryRun run(&clock);
  struct Case {
    const char* name;
    std::function<void(v1::Schedule&)> edit;
    const char* field;
  };
  const Case cases[] = {
      {"bad id", [](v1::Schedule& s) { s.set_id("has space"); }, "schedule.id"},
      {"long id", [](v1::Schedule& s) { s.set_id(std::string(129, 'x')); },
       "schedule.id"},
      {"no trigger", [](v1::Schedule& s) { s.clear_interval(); },
       "schedule.cron"},
      {"bad cron", [](v1::Schedule& s) { s.set_cron("61 * * * *"); },
       "schedule.cron: minute"},
      {"empty cron", [](v1::Schedule& s) { s.set_cron(""); }, "schedule.cron"},
      {"never", [](v1::Schedule& s) { s.set_cron("0 0 30 2 *"); },
       "schedule.cron"},
      {"short interval",
       [](v1::Schedule& s) {
         *s.mutable_interval() = ProtoDuration(absl::Milliseconds(999));
       },
       "schedule.interval"},
      {"negative interval",
       [](v1::Schedule& s) { s.mutable_interval()->set_seconds(-5); },
       "schedule.interval"},
      {"huge interval",
       [](v1::Schedule& s) {
         *s.mutable_interval() = ProtoDuration(absl::Hours(24 * 366 * 101));
       },
       "schedule.interval"},
      {"no type", [](v1::Schedule& s) { s.mutable_template_()->clear_type(); },
       "schedule.template.type"},
      {"priority",
       [](v1::Schedule& s) { s.mutable_template_()->set_priority(10); },
       "schedule.template.priority"},
      {"queue",
       [](v1::Schedule& s) { s.mutable_template_()->set_queue("bad queue"); },
       "schedule.template.queue"},
      {"depends_on",
       [](v1::Schedule& s) {
         s.mutable_template_()->add_depends_on("01HZZZZZZZZZZZZZZZZZZZZZZZ");
       },
       "schedule.template.depends_on"},
      {"idempotency_key",
       [](v1::Schedule& s) { s.mutable_template_()->set_idempotency_key("k"); },
       "schedule.template.idempotency_key"},
      {"run_at",
       [](v1::Schedule& s) {
         s.mutable_template_()->mutable_run_at()->set_seconds(1);
       },
       "schedule.template.run_at"},
      {"delay",
       [](v1::Schedule& s) {
         s.mutable_template_()->mutable_delay()->set_seconds(1);
       },
       "schedule.template.delay"},
  };
  for (const Case& c : cases) {
    v1::Schedule s = Interval("valid-id", absl::Minutes(1));
    c.edit(s);
    auto r = run.table->Create(s);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << c.name << ": "
                                                     << r.status();
    EXPECT_EQ(r.status().message().rfind(c.field, 0), 0u)
        << c.name << ": " << r.status();
  }
  EXPECT_EQ(run.table->size(), 0u);
  // Output-only fields are ignored, not rejected.
  v1::Schedule s = Interval("ok", absl::Minutes(1));
  s.set_last_task_id("x");
  s.mutable_next_fire_time()->set_seconds(5);
  auto ok = run.table->Create(s);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->last_task_id().empty());
  EXPECT_EQ(ToTime(ok->next_fire_time()), kStart + absl::Minutes(1));
}

// ---------------------------------------------------------------- durability

// One run of the server over a store that outlives it.
struct DurableRun {
  DurableRun(Storage* storage, FakeClock* clock)
      : clock(clock), journal(storage, nullptr) {
    EngineOptions options = TestOptions();
    options.id_seed = 0;
    options.journal = &journal;
    engine = std::make_unique<Engine>(options, clock);
    EXPECT_TRUE(engine->Recover(*storage).ok());
    table = std::make_unique<ScheduleTable>(ScheduleTableOptions{},
                                            engine.get());
    EXPECT_TRUE(table->Recover(*storage).ok());
    table->Start();
  }
  ~DurableRun() {
    // The journal first: its last callbacks still call into the engine and
    // the table, so they must run while both exist.
    journal.Stop();
    table.reset();
    engine.reset();
  }
  void Advance(absl::Duration d) {
    clock->Advance(d);
    engine->ProcessTimers();
    table->WaitForFirings();
  }
  // Waits until everything written so far is durable (then "crash").
  void Sync() {
    absl::Notification durable;
    journal.WhenDurable(journal.last_ticket(),
                        [&](absl::Status) { durable.Notify(); });
    durable.WaitForNotification();
  }
  FakeClock* clock;
  Journal journal;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ScheduleTable> table;
};

TEST(ScheduleTableDurabilityTest, SchedulesSurviveARestart) {
  auto storage = NewMemoryStorage();
  FakeClock clock(kStart);
  {
    DurableRun first(storage.get(), &clock);
    ASSERT_TRUE(first.table->Create(Interval("kept", absl::Minutes(1))).ok());
    ASSERT_TRUE(first.table->Create(Interval("paused", absl::Minutes(1))).ok());
    ASSERT_TRUE(first.table->Create(Cron("gone", "@hourly")).ok());
    ASSERT_TRUE(first.table->Pause("paused").ok());
    ASSERT_TRUE(first.table->Delete("gone").ok());
  }
  DurableRun second(storage.get(), &clock);
  EXPECT_EQ(second.table->size(), 2u);
  auto kept = second.table->Get("kept");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(ToTime(kept->next_fire_time()), kStart + absl::Minutes(1));
  EXPECT_TRUE(second.table->Get("paused")->paused());
  EXPECT_TRUE(absl::IsNotFound(second.table->Get("gone").status()));
  second.Advance(absl::Minutes(1));
  EXPECT_EQ(Tasks(*second.engine).size(), 1u);
}

TEST(ScheduleTableDurabilityTest, OneTaskPerSlotAcrossRestart) {
  auto storage = NewMemoryStorage();
  FakeClock clock(kStart);
  std::string task_id;
  v1::Schedule before_firing;
  {
    DurableRun first(storage.get(), &clock);
    auto created = first.table->Create(Interval("s", absl::Minutes(1)));
    ASSERT_TRUE(created.ok());
    before_firing = *created;
    first.Advance(absl::Minutes(1));
    auto tasks = Tasks(*first.engine);
    ASSERT_EQ(tasks.size(), 1u);
    task_id = tasks[0].id();
    first.Sync();
  }
  // The crash came after the task was stored but before the schedule's new
  // state was: the stored schedule still names the fired slot as next.
  ASSERT_TRUE(storage
                  ->Append({Mutation::PutMeta(
                      "schedule/s", before_firing.SerializeAsString())})
                  .ok());

  DurableRun second(storage.get(), &clock);
  second.Advance(absl::ZeroDuration());  // the recovered slot fires
  auto tasks = Tasks(*second.engine);
  ASSERT_EQ(tasks.size(), 1u) << "the slot fired twice";
  auto s = second.table->Get("s");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->last_task_id(), task_id);
  EXPECT_EQ(ToTime(s->next_fire_time()), kStart + absl::Minutes(2));
  second.Advance(absl::Minutes(1));
  EXPECT_EQ(Tasks(*second.engine).size(), 2u);
}

TEST(ScheduleTableDurabilityTest, SlotsMissedWhileDownRunOnce) {
  auto storage = NewMemoryStorage();
  FakeClock clock(kStart);
  {
    DurableRun first(storage.get(), &clock);
    ASSERT_TRUE(first.table->Create(Interval("s", absl::Minutes(1))).ok());
    first.Sync();
  }
  clock.Advance(absl::Minutes(10) + absl::Seconds(30));  // down: 10 slots

  DurableRun second(storage.get(), &clock);
  second.Advance(absl::ZeroDuration());
  auto tasks = Tasks(*second.engine);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].spec().idempotency_key(),
            absl::StrCat("schedule:s:",
                         absl::ToUnixSeconds(kStart + absl::Minutes(1))));
  // Then on the original grid, from now on.
  EXPECT_EQ(NextFire(*second.table, "s"), kStart + absl::Minutes(11));
  second.Advance(absl::Seconds(29));
  EXPECT_EQ(Tasks(*second.engine).size(), 1u);
  second.Advance(absl::Seconds(1));
  EXPECT_EQ(Tasks(*second.engine).size(), 2u);

  // A cron schedule behaves the same way.
  ASSERT_TRUE(second.table->Create(Cron("c", "* * * * *")).ok());
  second.Sync();
  const absl::Time cron_first = NextFire(*second.table, "c");
  const size_t before = Tasks(*second.engine).size();
  second.Advance(absl::Minutes(30));
  size_t cron_tasks = 0;
  for (const auto& t : Tasks(*second.engine)) {
    cron_tasks += t.spec().type() == "report";
  }
  EXPECT_EQ(cron_tasks, 1u);
  EXPECT_GT(Tasks(*second.engine).size(), before);
  auto c = second.table->Get("c");
  ASSERT_TRUE(c.ok());
  EXPECT_GT(ToTime(c->next_fire_time()), clock.Now());
  EXPECT_EQ(ToTime(c->next_fire_time()) - cron_first,
            absl::Minutes(30));  // the missed minutes collapsed into one
}

}  // namespace
}  // namespace taskd
