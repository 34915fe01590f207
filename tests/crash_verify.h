// The verification phase of crash_test.cc: what it checks against the last
// server once the submit-and-kill phase is over (lost, duplicated and
// completed tasks), and the workload definitions both phases share.
// Part of the crash_test target only.
#ifndef TASKD_TESTS_CRASH_VERIFY_H_
#define TASKD_TESTS_CRASH_VERIFY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api/taskd/v1/taskd.pb.h"
#include "clients/cpp/client.h"

namespace taskd::crash_test {

// The workload: task n has idempotency key "key-<n>" on kQueue, of kType.
inline constexpr char kQueue[] = "crash";
inline constexpr char kType[] = "crash";
inline constexpr int kClientThreads = 8;
inline constexpr absl::Duration kCallTimeout = absl::Seconds(5);

// A client with its own subchannel pool, so a restarted server that happens
// to reuse a port is not hidden behind the old connection's backoff.
TaskClient NewClient(const std::string& target);

// Errors a call may see while the server is killed, restarting or slow.
bool Retryable(absl::StatusCode code);

// Every task of `queue`, by ListTasks paging.
absl::StatusOr<std::vector<v1::Task>> ListAll(const TaskClient& client,
                                              const std::string& queue);

// GetTask for every acknowledged id (acked_ids[n] for key-<n>), on
// kClientThreads threads. The ids that exist (NOT_FOUND ones are lost), or
// an error when some id could not be checked or GetTask returned another
// key's task.
absl::StatusOr<std::vector<std::string>> FindAcked(
    const TaskClient& client, const std::vector<std::string>& acked_ids);

// Keys whose tasks (listed, plus the acknowledged id) are more than one.
// `*unexpected` counts listed tasks with no known key.
int CountDuplicated(const std::vector<v1::Task>& listed,
                    const std::vector<std::string>& acked_ids, int* unexpected);

struct Completion {
  int completed = 0;  // SUCCEEDED, with exactly one terminal event
  int succeeded = 0;
  int failed = 0;
  int cancelled = 0;
  int not_terminal = 0;       // includes ids whose Await call failed
  int wrong_event_count = 0;  // not exactly one terminal event
};

// Runs a Worker over kQueue until every id in `ids` is terminal (or the
// limit passes), and counts the outcomes. An error only when the check
// itself could not be set up. Logs details to stderr.
absl::StatusOr<Completion> CompleteAll(const std::string& target,
                                       const TaskClient& client,
                                       const std::vector<std::string>& ids);

}  // namespace taskd::crash_test

#endif  // TASKD_TESTS_CRASH_VERIFY_H_
