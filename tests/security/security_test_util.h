// Helpers of the security tests: certificates made by make_certs.sh (Debian
// openssl) in the test's temporary directory, files replaced atomically (as
// Kubernetes updates a mounted Secret), an in-process taskd with security
// options, and a bounded poll.
#ifndef TASKD_TESTS_SECURITY_SECURITY_TEST_UTIL_H_
#define TASKD_TESTS_SECURITY_SECURITY_TEST_UTIL_H_

#include <cstdio>
#include <cstdlib>
#include <fstream>
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

// Runs make_certs.sh into a fresh directory under $TEST_TMPDIR; returns it.
inline std::string MakeCerts(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", name);
  std::string script = "tests/security/make_certs.sh";
  int rc = std::system(absl::StrCat("rm -rf '", dir, "' && ", script, " '",
                                    dir, "'")
                           .c_str());
  EXPECT_EQ(rc, 0) << "make_certs.sh failed (is openssl installed?)";
  return dir;
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Writes `content` to a temporary file beside `path`, then renames it over
// `path`: readers see the old or the new file, never half of one.
inline void ReplaceFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
}

inline std::unique_ptr<TaskdServer> StartSecureServer(
    const auth::SecurityOptions& security,
    const std::string& listen = "127.0.0.1:0",
    const std::string& metrics_listen = "") {
  ServerOptions options;
  options.listen = listen;
  options.threads = 2;
  options.shutdown_grace = absl::Seconds(2);
  options.security = security;
  options.metrics_listen = metrics_listen;
  auto server = std::make_unique<TaskdServer>(options);
  absl::Status status = server->Start();
  EXPECT_TRUE(status.ok()) << status;
  if (!status.ok()) return nullptr;
  return server;
}

// Polls `condition` until it holds or `limit` passes; true when it held.
inline bool Eventually(const std::function<bool()>& condition,
                       absl::Duration limit = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + limit;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));  // each try is a new handshake
  }
  return true;
}

}  // namespace taskd::testing

#endif  // TASKD_TESTS_SECURITY_SECURITY_TEST_UTIL_H_
