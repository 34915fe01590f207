// SoakLedger: everything the soak test's clients were told by taskd, and the
// end-of-run check against it (tests/soak/soak_test.cc).
//
//   SoakLedger ledger;
//   ledger.Ack(key, response.task(), response.deduplicated());  // submits
//   ledger.Observe(task, "await");          // every Task a client receives
//   ledger.ObserveTerminalEvent(event.task());  // the event observer
//   ...
//   SoakCounts counts = ledger.Check(final_tasks);
//
// What it holds a server to (API.md, DESIGN.md reliability invariants):
// - an acknowledged task is never lost: it exists at the end and is
//   terminal (`lost` counts the acknowledged ids that are not);
// - a terminal task never changes: the first terminal outcome any client
//   saw of a task (state, result, error code, attempt) is the one every
//   later observation and the final state show (`changed`);
// - a task is terminal exactly once: the event observer, which never
//   replays an event, sees at most one terminal event per task
//   (`double_terminal`);
// - an idempotency key is answered with one task id only (`duplicated`).
//
// Thread-safe.
#ifndef TASKD_TESTS_SOAK_SOAK_LEDGER_H_
#define TASKD_TESTS_SOAK_SOAK_LEDGER_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "api/taskd/v1/taskd.pb.h"

namespace taskd::soak {

// The parts of a terminal task that must never change once a client saw it.
struct Outcome {
  v1::TaskState state = v1::TASK_STATE_UNSPECIFIED;
  std::string result;
  std::string error_code;
  int attempt = 0;
  std::string source;  // who saw it first ("await", "stream", ...)

  static Outcome Of(const v1::Task& task, absl::string_view source);
  bool SameAs(const Outcome& other) const;
  std::string ToString() const;
};

// The figures of one run. The counts line is the first seven (and RSS).
struct SoakCounts {
  int acked = 0;      // idempotency keys acknowledged
  int completed = 0;  // acknowledged tasks SUCCEEDED at the end
  int cancelled = 0;
  int failed = 0;
  int retried = 0;  // acknowledged tasks that ran more than one attempt
  int lost = 0;     // acknowledged, and NOT_FOUND or not terminal at the end
  int changed = 0;  // tasks whose terminal outcome changed after being seen
  int duplicated = 0;       // keys answered with more than one task id
  int double_terminal = 0;  // tasks with more than one terminal event
  int not_terminal = 0;     // part of `lost`: exist but are not terminal
  int observed = 0;         // tasks some client saw terminal before the end
};

class SoakLedger {
 public:
  // An OK SubmitTask answer for `key`; also Observe()s the task.
  void Ack(const std::string& key, const v1::Task& task, bool deduplicated)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Any task a client received (Submit, Get, Await, Cancel, Stream with
  // payloads). Non-terminal tasks are ignored; a terminal one is compared
  // with the first terminal outcome seen of that id.
  void Observe(const v1::Task& task, absl::string_view source)
      ABSL_LOCKS_EXCLUDED(mu_);

  // A terminal event from the event observer, whose streams never deliver
  // an event twice (each resumes after the last sequence it saw). Also
  // Observe()s the task, which must carry its result (include_payloads).
  void ObserveTerminalEvent(const v1::Task& task) ABSL_LOCKS_EXCLUDED(mu_);

  // A failure that is not about one task's outcome (an unexpected error
  // code, a sequence gap): fails the run. The first few are kept verbatim.
  void Violation(const std::string& what) ABSL_LOCKS_EXCLUDED(mu_);

  // Acknowledged ids, picked at random: `n` distinct ones at most, from the
  // `window` most recent acknowledgements (0: from all of them).
  std::vector<std::string> PickAcked(std::mt19937_64& rng, int n, int window)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Every acknowledged id, in acknowledgement order.
  std::vector<std::string> AckedIds() ABSL_LOCKS_EXCLUDED(mu_);
  int acked() ABSL_LOCKS_EXCLUDED(mu_);

  // Compares `final_tasks` (id -> the last server's task, with results;
  // acknowledged ids missing from it are NOT_FOUND) with everything
  // recorded, Observe()ing each final task. Call once, after the run.
  SoakCounts Check(const absl::flat_hash_map<std::string, v1::Task>& final_tasks)
      ABSL_LOCKS_EXCLUDED(mu_);

  // What went wrong, one line each (at most a few per kind), for the log.
  std::vector<std::string> Problems() ABSL_LOCKS_EXCLUDED(mu_);
  int violations() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void ObserveLocked(const v1::Task& task, absl::string_view source)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteLocked(std::string problem) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> id_of_key_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> acked_ids_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> duplicated_keys_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Outcome> first_seen_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> changed_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> terminal_events_ ABSL_GUARDED_BY(mu_);
  int double_terminal_ ABSL_GUARDED_BY(mu_) = 0;
  int violations_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);
};

}  // namespace taskd::soak

#endif  // TASKD_TESTS_SOAK_SOAK_LEDGER_H_
