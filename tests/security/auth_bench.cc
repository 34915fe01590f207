// Submit throughput with and without TLS and token checks (not a test):
//
//   bazel run -c opt //tests/security:auth_bench -- [seconds per slice] [calls in flight]
//
// One in-process taskd (memory durability) per configuration: plain, tokens
// on loopback (local credentials + the auth processor), TLS, TLS + tokens,
// mTLS + tokens. Each configuration runs in several interleaved slices, so
// drift of the machine hits all alike; the table gives tasks/s and the cost
// relative to plain. Clients are blocking TaskClient calls on threads.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/cpp/client.h"
#include "clients/cpp/connection.h"
#include "services/auth/token_hash.h"
#include "services/server.h"

namespace taskd {
namespace {

struct Config {
  const char* name;
  bool tls;
  bool mtls;
  bool tokens;
  double total_tasks = 0;
  double total_seconds = 0;
};

std::string Dir() {
  std::string dir = absl::StrCat("/tmp/taskd-auth-bench-", getpid());
  std::string script = "tests/security/make_certs.sh";
  if (std::system(absl::StrCat(script, " ", dir).c_str()) != 0) {
    std::fprintf(stderr, "make_certs.sh failed (openssl?)\n");
    std::exit(1);
  }
  return dir;
}

// Submits from `in_flight` threads for `slice`; returns tasks submitted.
double RunSlice(const Config& c, const std::string& dir, absl::Duration slice,
                int in_flight) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  options.durability = "memory";
  options.engine.max_tasks = 50'000'000;
  if (c.tls) {
    options.security.tls_cert = dir + "/server.pem";
    options.security.tls_key = dir + "/server.key";
  }
  if (c.mtls) options.security.tls_client_ca = dir + "/ca.pem";
  if (c.tokens) options.security.auth_tokens = dir + "/tokens.txt";
  std::fprintf(stderr, "auth_bench: %s\n", c.name);
  TaskdServer server(options);
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", c.name, s.ToString().c_str());
    std::exit(1);
  }
  ChannelSecurity security;
  if (c.tls) security.tls_ca = dir + "/ca.pem";
  if (c.mtls) {
    security.tls_cert = dir + "/client.pem";
    security.tls_key = dir + "/client.key";
  }
  if (c.tokens) security.token = "bench-token";
  auto client = TaskClient::Connect(
      absl::StrCat("localhost:", server.port()), security);
  if (!client.ok()) std::exit(1);
  v1::TaskSpec spec;
  spec.set_type("bench");
  spec.set_payload(std::string(100, 'x'));
  // Warm up the connection (handshake) outside the timed slice.
  if (!client->Submit(spec).ok()) {
    std::fprintf(stderr, "%s: warm-up submit failed\n", c.name);
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < in_flight; ++i) {
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        if (client->Submit(spec).ok()) done.fetch_add(1);
      }
    });
  }
  absl::SleepFor(slice);
  stop = true;
  for (auto& t : threads) t.join();
  server.Shutdown();
  return static_cast<double>(done.load());
}

int Main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const int in_flight = argc > 2 ? std::atoi(argv[2]) : 16;
  const int rounds = 3;
  std::string dir = Dir();
  {
    FILE* f = std::fopen((dir + "/tokens.txt").c_str(), "w");
    std::fprintf(f, "%s bench admin\ncn:worker-images certbench admin\n",
                 auth::HashLine("bench-token").c_str());
    // A realistic table: the lookup compares every entry.
    for (int i = 0; i < 50; ++i) {
      std::fprintf(f, "%s other-%d read queues=q%d\n",
                   auth::HashLine(absl::StrCat("other-", i)).c_str(), i, i);
    }
    std::fclose(f);
  }
  std::vector<Config> configs = {
      {"plain", false, false, false},
      {"tokens (loopback)", false, false, true},
      {"TLS", true, false, false},
      {"TLS + tokens", true, false, true},
      {"mTLS + tokens", true, true, true},
  };
  for (int r = 0; r < rounds; ++r) {
    for (Config& c : configs) {
      c.total_tasks += RunSlice(c, dir, absl::Seconds(seconds), in_flight);
      c.total_seconds += seconds;
    }
  }
  std::printf("submit throughput, %d calls in flight, %d x %.1f s slices "
              "each, 52-entry token table\n",
              in_flight, rounds, seconds);
  std::printf("%-20s %12s %10s\n", "configuration", "tasks/s", "vs plain");
  const double plain = configs[0].total_tasks / configs[0].total_seconds;
  for (const Config& c : configs) {
    double rate = c.total_tasks / c.total_seconds;
    std::printf("%-20s %12.0f %9.1f%%\n", c.name, rate,
                100.0 * (rate - plain) / plain);
  }
  std::system(absl::StrCat("rm -rf ", dir).c_str());
  return 0;
}

}  // namespace
}  // namespace taskd

int main(int argc, char** argv) { return taskd::Main(argc, argv); }
