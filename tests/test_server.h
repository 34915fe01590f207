// Test helpers for cross-module tests: a real taskd server on a loopback
// port chosen by the kernel, and a bounded wait for a condition.
#ifndef TASKD_TESTS_TEST_SERVER_H_
#define TASKD_TESTS_TEST_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "services/server.h"

namespace taskd::testing {

// Starts a TaskdServer on 127.0.0.1 with an ephemeral port.
inline std::unique_ptr<TaskdServer> StartServer(ServerOptions options = {}) {
  options.listen = "127.0.0.1:0";
  if (options.threads == 0) options.threads = 2;
  options.shutdown_grace = absl::Seconds(2);
  auto server = std::make_unique<TaskdServer>(options);
  absl::Status status = server->Start();
  EXPECT_TRUE(status.ok()) << status;
  return server;
}

inline std::string Target(const TaskdServer& server) {
  return absl::StrCat("127.0.0.1:", server.port());
}

// Waits until `condition` holds, at most `limit`; true when it held. For
// state that has no event to wait on (e.g. a count inside the server).
inline bool Eventually(const std::function<bool()>& condition,
                       absl::Duration limit = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + limit;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace taskd::testing

#endif  // TASKD_TESTS_TEST_SERVER_H_
