// taskd-worker against a real server: a cancelled task's command is stopped
// together with every process in its process group.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/test_server.h"

extern char** environ;

namespace taskd {
namespace {

using ::taskd::testing::Eventually;

// True when `pid` no longer exists or is a zombie.
bool ProcessGone(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() &&
         line[paren + 2] == 'Z';
}

// Reads one line from `fifo_path`, waiting at most `limit`.
std::string ReadLine(const std::string& fifo_path, absl::Duration limit) {
  // O_RDWR keeps a writer open, so poll waits for data instead of HUP.
  int fd = open(fifo_path.c_str(), O_RDWR | O_NONBLOCK);
  if (fd < 0) return "";
  std::string out;
  absl::Time deadline = absl::Now() + limit;
  while (out.find('\n') == std::string::npos && absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (poll(&p, 1, ms > 0 ? ms : 0) <= 0) continue;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, n);
  }
  close(fd);
  return out;
}

TEST(TaskdWorkerTest, CancelKillsTheCommandsWholeProcessGroup) {
  auto server = testing::StartServer();
  const std::string dir = std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR")
                                                     : "/tmp";
  const std::string fifo = absl::StrCat(dir, "/pids.fifo");
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);

  // The shell (group leader) starts a background child, reports both pids,
  // then waits: neither ever exits by itself.
  const std::string command =
      absl::StrCat("sleep 1000 & echo \"$$ $!\" > ", fifo, "; wait");
  std::vector<std::string> args = {
      "clients/cpp/taskd-worker", "--server", testing::Target(*server),
      "--handler", absl::StrCat("hang=", command), "--grace", "2s"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t worker = 0;
  ASSERT_EQ(posix_spawn(&worker, argv[0], nullptr, nullptr, argv.data(),
                        environ),
            0);

  TaskClient client(testing::Target(*server));
  v1::TaskSpec spec;
  spec.set_type("hang");
  auto submitted = client.Submit(spec);
  ASSERT_TRUE(submitted.ok()) << submitted.status();

  std::istringstream pids(ReadLine(fifo, absl::Seconds(30)));
  pid_t leader = 0, child = 0;
  pids >> leader >> child;
  ASSERT_GT(leader, 0);
  ASSERT_GT(child, 0);
  EXPECT_EQ(getpgid(child), leader);  // one group, led by the shell

  auto cancelled = client.Cancel(submitted->task().id(), "test");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  auto done = client.Await({submitted->task().id()}, v1::AWAIT_MODE_ALL,
                           absl::Seconds(30));
  ASSERT_TRUE(done.ok() && done->done());
  EXPECT_EQ(done->tasks(0).state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(done->tasks(0).error().code(), "cancelled");

  // The worker reports the cancellation only after stopping the group.
  EXPECT_TRUE(Eventually([&] { return ProcessGone(leader); }));
  EXPECT_TRUE(Eventually([&] { return ProcessGone(child); }));

  kill(worker, SIGTERM);
  int status = 0;
  EXPECT_TRUE(Eventually(
      [&] { return waitpid(worker, &status, WNOHANG) == worker; }));
  EXPECT_TRUE(WIFEXITED(status)) << status;
  unlink(fifo.c_str());
}

}  // namespace
}  // namespace taskd
