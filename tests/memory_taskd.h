// A gtest fixture whose suite shares one `services/taskd` child process
// (in-memory durability, two CQ threads, no metrics port) on a loopback
// port: for client tests that want no server threads in their own process.
// Tests bring //services:taskd as `data`.
#ifndef TASKD_TESTS_MEMORY_TASKD_H_
#define TASKD_TESTS_MEMORY_TASKD_H_

#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "tests/taskd_process.h"

namespace taskd::testing {

class MemoryTaskdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::string> binary = FindTaskdBinary("", "");
    ASSERT_TRUE(binary.ok()) << binary.status();
    TaskdProcess::Options options;
    options.binary = *binary;
    options.flags = {"--listen=127.0.0.1:0", "--durability=memory",
                     "--threads=2", "--metrics_listen="};
    auto server = TaskdProcess::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  static void TearDownTestSuite() { server_.reset(); }

  // "127.0.0.1:<port>" of the suite's server.
  static std::string target() { return server_->target(); }

 private:
  static inline std::unique_ptr<TaskdProcess> server_;
};

}  // namespace taskd::testing

#endif  // TASKD_TESTS_MEMORY_TASKD_H_
