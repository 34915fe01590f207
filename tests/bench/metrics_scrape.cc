#include "tests/bench/metrics_scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace taskd::bench {
namespace {

// Closes the socket on every path out of ScrapeMetrics.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  const int fd_;
};

// Waits until `fd` is ready for `events` or `deadline` passes.
absl::Status WaitReady(int fd, short events, absl::Time deadline) {
  while (true) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return absl::DeadlineExceededError("metrics scrape timed out");
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(ms));
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("poll: errno ", errno));
    }
  }
}

}  // namespace

absl::StatusOr<int> MetricsPort(absl::string_view log_line) {
  const size_t at = log_line.find("(port ");
  if (log_line.find("metrics on") == absl::string_view::npos ||
      at == absl::string_view::npos) {
    return absl::NotFoundError("no metrics line logged");
  }
  const size_t end = log_line.find(')', at);
  int port = 0;
  if (end == absl::string_view::npos ||
      !absl::SimpleAtoi(log_line.substr(at + 6, end - at - 6), &port) ||
      port <= 0) {
    return absl::NotFoundError(absl::StrCat("no port in \"", log_line, "\""));
  }
  return port;
}

absl::StatusOr<std::string> ScrapeMetrics(int port, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Socket socket(
      ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (socket.fd() < 0) {
    return absl::UnavailableError(absl::StrCat("socket: errno ", errno));
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(socket.fd(), reinterpret_cast<sockaddr*>(&address),
              sizeof address) != 0 &&
      errno != EINPROGRESS) {
    return absl::UnavailableError(absl::StrCat("connect: errno ", errno));
  }
  if (absl::Status s = WaitReady(socket.fd(), POLLOUT, deadline); !s.ok()) {
    return s;
  }
  int error = 0;
  socklen_t length = sizeof error;
  getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    return absl::UnavailableError(absl::StrCat("connect: errno ", error));
  }
  // HTTP/1.0: the server closes the connection after the body.
  const std::string request = absl::StrCat(
      "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:", port, "\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(socket.fd(), request.data() + sent,
                           request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (absl::Status s = WaitReady(socket.fd(), POLLOUT, deadline); !s.ok()) {
        return s;
      }
    } else {
      return absl::UnavailableError(absl::StrCat("send: errno ", errno));
    }
  }
  std::string response;
  char buffer[16384];
  while (true) {
    const ssize_t n = recv(socket.fd(), buffer, sizeof buffer, 0);
    if (n > 0) {
      response.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (absl::Status s = WaitReady(socket.fd(), POLLIN, deadline); !s.ok()) {
        return s;
      }
    } else {
      return absl::UnavailableError(absl::StrCat("recv: errno ", errno));
    }
  }
  const size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || body == std::string::npos ||
      response.find(" 200 ") > response.find("\r\n")) {
    return absl::UnavailableError(
        absl::StrCat("unexpected metrics response: ", response.substr(0, 80)));
  }
  return response.substr(body + 4);
}

absl::StatusOr<double> MetricSum(absl::string_view exposition,
                                 absl::string_view name) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (line.size() <= name.size() || line.substr(0, name.size()) != name) {
      continue;
    }
    // `name value` or `name{labels} value`; not a longer name.
    const char next = line[name.size()];
    if (next != ' ' && next != '{') continue;
    // The value is the first token after the labels (a timestamp may follow).
    size_t at = name.size();
    if (next == '{') {
      at = line.rfind('}');
      if (at == absl::string_view::npos) continue;
      ++at;
    }
    absl::string_view rest = absl::StripLeadingAsciiWhitespace(line.substr(at));
    double value = 0;
    if (!absl::SimpleAtod(rest.substr(0, rest.find(' ')), &value)) continue;
    sum += value;
    found = true;
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no sample of ", name));
  return sum;
}

}  // namespace taskd::bench
