// A structured fuzzer for the engine: the input is a program of client,
// worker, clock and crash operations run against an Engine with a FakeClock
// over a journal and an in-memory store that survives "crashes". After every
// step it checks the invariants DESIGN.md promises:
//   - no illegal transition; every task is in exactly one state;
//   - a terminal task never changes (state and result);
//   - credits never go negative (busy and free worker slots >= 0);
//   - nothing acknowledged is lost, across crash-and-recover included.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "scheduler/clock.h"
#include "scheduler/engine.h"
#include "scheduler/engine_test_util.h"
#include "scheduler/journal.h"
#include "scheduler/storage/memory_storage.h"
#include "scheduler/task_state.h"
#include "scheduler/validation.h"

namespace taskd {
namespace {

constexpr int kWorkers = 3;

class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ == end_; }
  uint8_t Byte() { return p_ == end_ ? 0 : *p_++; }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

struct Seen {
  v1::TaskState state;
  std::string result;
};

class Harness {
 public:
  Harness() : storage_(NewMemoryStorage()) { Boot(); }
  ~Harness() { Crash(); }

  void Boot() {
    journal_ = std::make_unique<Journal>(storage_.get(), nullptr);
    EngineOptions options;
    // The same seed at every boot, under the same fake clock: recovery must
    // still keep new ids above the stored ones (it once did not).
    options.id_seed = 7;
    ++boots_;
    options.journal = journal_.get();
    options.default_result_ttl = absl::Hours(24 * 365);  // nothing retires
    options.default_initial_backoff = absl::Seconds(1);
    engine_ = std::make_unique<Engine>(options, &clock_);
    if (!engine_->Recover(*storage_).ok()) std::abort();
    for (auto& w : workers_) w.reset();
  }

  // The process dies: what the journal made durable is all that is left.
  void Crash() {
    if (journal_) journal_->Stop();
    engine_.reset();
    journal_.reset();
  }

  void Step(Input& in) {
    const uint8_t op = in.Byte() % 10;
    const int k = in.Byte() % kWorkers;
    switch (op) {
      case 0: {
        v1::TaskSpec spec;
        spec.set_type(in.Byte() % 2 ? "a" : "b");
        spec.set_priority(in.Byte() % 10);
        if (uint8_t d = in.Byte() % 4; d == 1) {
          spec.mutable_delay()->set_seconds(in.Byte() % 30);
        }
        if (in.Byte() % 3 == 0) spec.mutable_timeout()->set_seconds(5);
        spec.mutable_retry()->set_max_attempts(1 + in.Byte() % 3);
        spec.mutable_retry()->mutable_initial_backoff()->set_seconds(1);
        if (!acked_.empty() && in.Byte() % 3 == 0) {
          spec.add_depends_on(acked_[in.Byte() % acked_.size()]);
        }
        if (in.Byte() % 4 == 0) spec.set_idempotency_key("k");
        auto r = engine_->Submit(spec);
        if (!r.ok()) std::abort();  // a valid spec is always accepted
        if (!r->deduplicated) acked_.push_back(r->task.id());
        break;
      }
      case 1:
        if (!workers_[k]) {
          v1::Hello hello;
          hello.set_worker_id("w" + std::to_string(k));
          hello.set_concurrency(1 + in.Byte() % 3);
          sinks_[k] = std::make_unique<testing::RecordingSink>();
          auto s = engine_->ConnectWorker(hello, sinks_[k].get());
          if (!s.ok()) std::abort();
          workers_[k] = *s;
          answered_[k] = 0;
        }
        break;
      case 2:
        if (workers_[k]) {
          engine_->DisconnectWorker(workers_[k]);
          workers_[k].reset();
        }
        break;
      case 3:
      case 4:
      case 5: {
        if (!workers_[k]) break;
        auto assignments = sinks_[k]->Assignments();
        if (assignments.empty()) break;
        const v1::Assignment& a = assignments[in.Byte() % assignments.size()];
        if (op == 3) {
          v1::Complete c;
          c.set_task_id(a.task().id());
          c.set_lease_id(a.lease_id());
          c.set_result("r" + std::to_string(in.Byte()));
          if (!engine_->Complete(*workers_[k], c).ok()) std::abort();
        } else if (op == 4) {
          v1::Fail f;
          f.set_task_id(a.task().id());
          f.set_lease_id(a.lease_id());
          f.mutable_error()->set_code("e");
          f.mutable_error()->set_retryable(in.Byte() % 2);
          if (!engine_->Fail(*workers_[k], f).ok()) std::abort();
        } else {
          v1::ProgressUpdate p;
          p.set_task_id(a.task().id());
          p.set_lease_id(a.lease_id());
          p.set_percent(in.Byte() % 101);
          if (!engine_->Progress(*workers_[k], p).ok()) std::abort();
        }
        break;
      }
      case 6:
        if (workers_[k]) engine_->Heartbeat(*workers_[k]).IgnoreError();
        break;
      case 7:
        if (!acked_.empty()) {
          if (!engine_->Cancel(acked_[in.Byte() % acked_.size()], "").ok()) {
            std::abort();
          }
        }
        break;
      case 8:
        clock_.Advance(absl::Seconds(in.Byte() % 64));
        engine_->ProcessTimers();
        break;
      case 9:
        Crash();
        Boot();
        break;
    }
    Check();
  }

  void Check() {
    if (engine_->illegal_transitions() != 0) std::abort();
    WorkerSlots slots = engine_->worker_slots();
    if (slots.busy < 0 || slots.free < 0) std::abort();
    for (const std::string& id : acked_) {
      auto t = engine_->Get(id);
      if (!t.ok()) std::abort();  // an acknowledged task was lost
      const v1::TaskState s = t->state();
      if (s < v1::TASK_STATE_PENDING || s > v1::TASK_STATE_CANCELLED) {
        std::abort();
      }
      auto it = terminal_.find(id);
      if (it != terminal_.end()) {
        // A terminal task never changes.
        if (s != it->second.state || t->result() != it->second.result) {
          std::fprintf(stderr, "task %s changed: %s/%s -> %s/%s (attempt %d)\n",
                       id.c_str(), v1::TaskState_Name(it->second.state).c_str(),
                       it->second.result.c_str(), v1::TaskState_Name(s).c_str(),
                       t->result().c_str(), t->attempt());
          std::abort();
        }
      } else if (IsTerminal(s)) {
        terminal_.emplace(id, Seen{s, t->result()});
      }
    }
  }

 private:
  FakeClock clock_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<testing::RecordingSink> sinks_[kWorkers];
  std::shared_ptr<WorkerSession> workers_[kWorkers];
  size_t answered_[kWorkers] = {};
  uint64_t boots_ = 0;
  std::vector<std::string> acked_;
  std::map<std::string, Seen> terminal_;
};

}  // namespace
}  // namespace taskd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;  // keep each program short
  taskd::Input in(data, size);
  taskd::Harness harness;
  for (int steps = 0; !in.done() && steps < 400; ++steps) harness.Step(in);
  return 0;
}
