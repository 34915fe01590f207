#include "tests/soak/soak_clients.h"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <utility>


#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api/taskd/v1/taskd.grpc.pb.h"
#include "tests/soak/soak_channel.h"
#include "tests/soak/soak_fleet.h"

namespace taskd::soak {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(5);
constexpr absl::Duration kRetryPause = absl::Milliseconds(100);
constexpr absl::Duration kAwaitWait = absl::Seconds(1);
constexpr absl::Duration kAwaitPace = absl::Milliseconds(20);
constexpr absl::Duration kCancelPace = absl::Milliseconds(250);
constexpr absl::Duration kStreamPause = absl::Milliseconds(100);
constexpr absl::Duration kStalledReadLimit = absl::Seconds(20);
constexpr int kMaxSubmitsPerThread = 10'000'000;
constexpr int kMaxIterations = 100'000'000;
constexpr int kMaxStreams = 1'000'000;
constexpr int kMaxStalledReads = 10'000'000;
constexpr int kAwaitChunk = 500;
constexpr int kMaxDrainRounds = 1000;
constexpr int kMaxFinalTries = 10;

// Submits first tried with a deadline of at most 3 ms, and acknowledged
// keys submitted a second time.
constexpr int kUnknownOutcomePercent = 10;
constexpr int kDuplicateSubmitPercent = 5;

// Recent acknowledgements a canceller or a dependency picks from.
constexpr int kRecentWindow = 40;

bool TerminalEvent(v1::EventType type) {
  return type == v1::EVENT_TYPE_SUCCEEDED || type == v1::EVENT_TYPE_FAILED ||
         type == v1::EVENT_TYPE_CANCELLED;
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

void SetDuration(google::protobuf::Duration* d, absl::Duration v) {
  d->set_seconds(absl::ToInt64Seconds(v));
  d->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(v - absl::Seconds(d->seconds()))));
}

CallOptions RandomCallOptions(std::mt19937_64& rng) {
  CallOptions o;
  o.timeout = kCallTimeout;
  o.wait_for_ready = rng() % 2 == 0;  // both ways of meeting a down server
  return o;
}

}  // namespace

bool Transient(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnknown:  // e.g. the connection broke mid-call
      return true;
    default:
      return false;
  }
}

std::string ClientStats::ToString() const {
  return absl::StrCat(
      "submits=", submits.load(), " resubmits=", resubmits.load(),
      " deduplicated=", deduplicated.load(), " unacked=", unacked.load(),
      " awaits=", awaits.load(), " gets=", gets.load(),
      " cancels=", cancels.load(), " transient_errors=", transient_errors.load(),
      " events=", events.load(), " observer_streams=", observer_streams.load(),
      " observer_restarts_from_now=", observer_restarts_from_now.load(),
      " stalled_streams=", stalled_streams.load(),
      " stalled_exhausted=", stalled_exhausted.load(),
      " stalled_interrupted=", stalled_interrupted.load(),
      " stalled_kept_up=", stalled_kept_up.load());
}

SoakClients::SoakClients(Options options, SoakLedger* ledger,
                         ClientStats* stats)
    : options_(std::move(options)),
      ledger_(ledger),
      stats_(stats),
      client_(NewSoakChannel(options_.target)) {}

SoakClients::~SoakClients() {
  StopWorkload(absl::ZeroDuration());
  StopStreams();
}

void SoakClients::Start(uint64_t seed) {
  for (int t = 0; t < options_.submit_threads; ++t) {
    workload_threads_.emplace_back([this, t, seed] { SubmitLoop(t, seed); });
  }
  for (int t = 0; t < 2; ++t) {
    workload_threads_.emplace_back([this, t, seed] { AwaitLoop(seed + 100 + t); });
  }
  workload_threads_.emplace_back([this, seed] { CancelLoop(seed + 200); });
  stream_threads_.emplace_back([this] { ObserverLoop(); });
  stream_threads_.emplace_back([this] { StalledStreamLoop(); });
}

void SoakClients::StopWorkload(absl::Duration ack_limit) {
  if (!stop_workload_.HasBeenNotified()) {
    ack_deadline_ = absl::Now() + ack_limit;
    stop_workload_.Notify();
  }
  for (std::thread& t : workload_threads_) t.join();
  workload_threads_.clear();
}

void SoakClients::StopStreams() {
  {
    absl::MutexLock lock(&streams_mu_);
    if (!stop_streams_.HasBeenNotified()) stop_streams_.Notify();
    if (observer_ctx_ != nullptr) observer_ctx_->TryCancel();
    if (stalled_ctx_ != nullptr) stalled_ctx_->TryCancel();
  }
  for (std::thread& t : stream_threads_) t.join();
  stream_threads_.clear();
}

bool SoakClients::SetStreamContext(grpc::ClientContext** slot,
                                   grpc::ClientContext* ctx) {
  absl::MutexLock lock(&streams_mu_);
  if (ctx != nullptr && stop_streams_.HasBeenNotified()) return false;
  *slot = ctx;
  return true;
}

void SoakClients::CheckCall(const absl::Status& status,
                            const std::string& what) {
  if (status.ok()) return;
  if (Transient(status.code())) {
    stats_->transient_errors.fetch_add(1);
    return;
  }
  ledger_->Violation(absl::StrCat(what, ": ", status.ToString()));
}

// ------------------------------------------------------------ workload

v1::TaskSpec SoakClients::NewSpec(std::mt19937_64& rng,
                                  const std::string& key) {
  std::uniform_int_distribution<int> percent(0, 99);
  v1::TaskSpec spec;
  spec.set_idempotency_key(key);
  spec.set_priority(static_cast<int>(rng() % 10));
  (*spec.mutable_labels())["soak"] = "1";
  SetDuration(spec.mutable_heartbeat_timeout(), absl::Seconds(3));
  v1::RetryPolicy* retry = spec.mutable_retry();
  retry->set_max_attempts(3);
  SetDuration(retry->mutable_initial_backoff(), absl::Milliseconds(100));
  SetDuration(retry->mutable_max_backoff(), absl::Seconds(1));
  retry->set_multiplier(2);
  // Mostly small payloads; some big enough that buffering them shows.
  const int size_roll = percent(rng);
  std::string payload = absl::StrCat("p-", key);
  if (size_roll < 2) {
    payload.resize(64 << 10, 'x');
  } else if (size_roll < 10) {
    payload.resize(4 << 10, 'x');
  }
  const int kind = percent(rng);
  if (kind < 25) {
    spec.set_queue(kShellQueue);
    spec.set_type("sh.echo");
    spec.set_payload(payload);
  } else if (kind < 37) {
    spec.set_queue(kShellQueue);
    spec.set_type("sh.sleep");
    spec.set_payload(absl::StrCat(0.1 * (1 + rng() % 20), "\n"));
    if (percent(rng) < 30) SetDuration(spec.mutable_timeout(), absl::Seconds(1));
  } else if (kind < 42) {
    spec.set_queue(kShellQueue);
    spec.set_type("sh.fail");
    spec.set_payload(payload);
  } else if (kind < 70) {
    spec.set_queue(kSdkQueue);
    spec.set_type("sdk.echo");
    spec.set_payload(payload);
  } else if (kind < 88) {
    spec.set_queue(kSdkQueue);
    spec.set_type("sdk.slow");
    spec.set_payload(absl::StrCat(100 + rng() % 2900));
    if (percent(rng) < 20) SetDuration(spec.mutable_timeout(), absl::Seconds(1));
  } else {
    spec.set_queue(kSdkQueue);
    spec.set_type("sdk.flaky");
    spec.set_payload(payload);
  }
  if (percent(rng) < 5) {
    SetDuration(spec.mutable_delay(), absl::Milliseconds(200 + rng() % 1800));
  }
  if (percent(rng) < 10) {
    for (const std::string& id : ledger_->PickAcked(rng, 1, kRecentWindow)) {
      spec.add_depends_on(id);
    }
  }
  return spec;
}

void SoakClients::SubmitLoop(int thread, uint64_t seed) {
  std::mt19937_64 rng(seed * 31 + thread);
  std::uniform_int_distribution<int> percent(0, 99);
  const absl::Duration interval =
      absl::Seconds(options_.submit_threads / options_.submit_rate);
  absl::Time next = absl::Now();
  for (int n = 0; n < kMaxSubmitsPerThread; ++n) {
    // Pacing: the next submit is due at `next`.
    if (stop_workload_.WaitForNotificationWithTimeout(next - absl::Now())) {
      return;
    }
    next += interval;
    const std::string key = absl::StrCat("soak-", thread, "-", n);
    const v1::TaskSpec spec = NewSpec(rng, key);
    for (int attempt = 0;; ++attempt) {
      if (stop_workload_.HasBeenNotified() && absl::Now() >= ack_deadline_) {
        stats_->unacked.fetch_add(1);
        return;
      }
      stats_->submits.fetch_add(1);
      CallOptions call = RandomCallOptions(rng);
      // Some first tries get a deadline so short that whether the server
      // took the task is unknown: the retry must find the same task.
      if (attempt == 0 && percent(rng) < kUnknownOutcomePercent) {
        call.timeout = absl::Microseconds(rng() % 3000);
      }
      absl::StatusOr<v1::SubmitTaskResponse> r = client_.Submit(spec, call);
      if (r.ok()) {
        if (r->deduplicated()) stats_->deduplicated.fetch_add(1);
        if (r->task().spec().idempotency_key() != key) {
          ledger_->Violation(absl::StrCat("submit of ", key, " answered with ",
                                          r->task().ShortDebugString()));
        }
        ledger_->Ack(key, r->task(), r->deduplicated());
        // A client that lost the answer submits the key again.
        if (percent(rng) < kDuplicateSubmitPercent) {
          stats_->submits.fetch_add(1);
          absl::StatusOr<v1::SubmitTaskResponse> again =
              client_.Submit(spec, RandomCallOptions(rng));
          CheckCall(again.status(), absl::StrCat("second SubmitTask ", key));
          if (again.ok()) {
            if (!again->deduplicated()) {
              ledger_->Violation(absl::StrCat("second submit of ", key,
                                              " not deduplicated"));
            }
            stats_->deduplicated.fetch_add(again->deduplicated() ? 1 : 0);
            ledger_->Ack(key, again->task(), again->deduplicated());
          }
        }
        break;
      }
      CheckCall(r.status(), absl::StrCat("SubmitTask ", key));
      if (!Transient(r.status().code())) break;
      // Unknown outcome: the same key again, after a pause.
      stats_->resubmits.fetch_add(1);
      stop_workload_.WaitForNotificationWithTimeout(kRetryPause);
    }
  }
}

void SoakClients::AwaitLoop(uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < kMaxIterations; ++i) {
    if (stop_workload_.WaitForNotificationWithTimeout(kAwaitPace)) return;
    std::vector<std::string> ids =
        ledger_->PickAcked(rng, 1 + static_cast<int>(rng() % 20), 0);
    if (ids.empty()) continue;
    const v1::AwaitMode mode =
        rng() % 2 == 0 ? v1::AWAIT_MODE_ALL : v1::AWAIT_MODE_ANY;
    stats_->awaits.fetch_add(1);
    absl::StatusOr<v1::AwaitResponse> r =
        client_.Await(ids, mode, kAwaitWait, RandomCallOptions(rng));
    CheckCall(r.status(), absl::StrCat("Await of ", ids.size(), " ids"));
    if (r.ok()) {
      for (const v1::Task& task : r->tasks()) ledger_->Observe(task, "await");
    }
    stats_->gets.fetch_add(1);
    absl::StatusOr<v1::Task> got = client_.Get(ids.front(), RandomCallOptions(rng));
    CheckCall(got.status(), absl::StrCat("GetTask ", ids.front()));
    if (got.ok()) ledger_->Observe(*got, "get");
  }
}

void SoakClients::CancelLoop(uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < kMaxIterations; ++i) {
    if (stop_workload_.WaitForNotificationWithTimeout(kCancelPace)) return;
    for (const std::string& id : ledger_->PickAcked(rng, 1, kRecentWindow)) {
      stats_->cancels.fetch_add(1);
      absl::StatusOr<v1::Task> r = client_.Cancel(id, "soak", RandomCallOptions(rng));
      CheckCall(r.status(), absl::StrCat("Cancel ", id));
      if (r.ok()) ledger_->Observe(*r, "cancel");
    }
  }
}

// ------------------------------------------------------------ streams

// Follows every event with payloads and results. A stream ends when the
// server dies (or finds it too slow); the next resumes right after the last
// event seen, or from now when that is no longer possible, so that no
// event is ever delivered twice.
void SoakClients::ObserverLoop() {
  auto stub = v1::TaskService::NewStub(NewSoakChannel(options_.target));
  uint64_t from = 0;
  for (int i = 0; i < kMaxStreams; ++i) {
    if (stop_streams_.WaitForNotificationWithTimeout(
            i == 0 ? absl::ZeroDuration() : kStreamPause)) {
      return;
    }
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    if (!SetStreamContext(&observer_ctx_, &ctx)) return;
    v1::StreamRequest request;
    request.set_include_payloads(true);
    request.set_from_sequence(from);
    stats_->observer_streams.fetch_add(1);
    auto reader = stub->Stream(&ctx, request);
    v1::TaskEvent event;
    uint64_t expected = from;
    while (reader->Read(&event)) {
      stats_->events.fetch_add(1);
      if (expected != 0 && event.sequence() != expected) {
        ledger_->Violation(absl::StrCat("event sequence ", event.sequence(),
                                        " where ", expected, " was due"));
      }
      expected = event.sequence() + 1;
      from = expected;
      if (TerminalEvent(event.type())) {
        ledger_->ObserveTerminalEvent(event.task());
      } else {
        ledger_->Observe(event.task(), "stream");
      }
    }
    const absl::Status status = FromGrpc(reader->Finish());
    SetStreamContext(&observer_ctx_, nullptr);
    if (stop_streams_.HasBeenNotified()) return;
    if (status.code() == absl::StatusCode::kOutOfRange ||
        status.code() == absl::StatusCode::kResourceExhausted) {
      // Older than the new server's (or the ring's) window: from now on.
      stats_->observer_restarts_from_now.fetch_add(1);
      from = 0;
    } else {
      CheckCall(status, "observer Stream");
    }
  }
}

// A consumer that reads one event and then nothing for `stall`: the server
// must end it with RESOURCE_EXHAUSTED (seen once it reads again) or at
// least not buffer for it (the RSS bound). Then it reads what is left.
void SoakClients::StalledStreamLoop() {
  auto stub = v1::TaskService::NewStub(
      NewSoakChannel(options_.target, /*stalling=*/true));
  for (int i = 0; i < kMaxStreams; ++i) {
    if (stop_streams_.WaitForNotificationWithTimeout(
            i == 0 ? absl::ZeroDuration() : kStreamPause)) {
      return;
    }
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.stall +
                                        kStalledReadLimit));
    if (!SetStreamContext(&stalled_ctx_, &ctx)) return;
    v1::StreamRequest request;
    request.set_include_payloads(true);
    stats_->stalled_streams.fetch_add(1);
    auto reader = stub->Stream(&ctx, request);
    v1::TaskEvent event;
    int read = 0;
    uint64_t first = 0;
    uint64_t last = 0;
    if (reader->Read(&event)) {
      first = last = event.sequence();
      stop_streams_.WaitForNotificationWithTimeout(options_.stall);
      for (; read < kMaxStalledReads && reader->Read(&event); ++read) {
        last = event.sequence();
      }
    }
    const absl::Status status = FromGrpc(reader->Finish());
    SetStreamContext(&stalled_ctx_, nullptr);
    if (stop_streams_.HasBeenNotified()) return;
    std::fprintf(stderr,
                 "soak: stalled stream %d: events %llu..%llu, %d read after "
                 "the stall; %s\n",
                 i, static_cast<unsigned long long>(first),
                 static_cast<unsigned long long>(last), read,
                 status.ToString().substr(0, 200).c_str());
    switch (status.code()) {
      case absl::StatusCode::kResourceExhausted:
        stats_->stalled_exhausted.fetch_add(1);
        break;
      case absl::StatusCode::kDeadlineExceeded:
        stats_->stalled_kept_up.fetch_add(1);
        break;
      case absl::StatusCode::kUnavailable:
      case absl::StatusCode::kUnknown:
      case absl::StatusCode::kCancelled:
        stats_->stalled_interrupted.fetch_add(1);
        break;
      default:
        ledger_->Violation(
            absl::StrCat("stalled Stream ended: ", status.ToString()));
    }
  }
}

// ------------------------------------------------------------ the end

int SoakClients::Drain(absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  std::vector<std::string> pending = ledger_->AckedIds();
  CallOptions options;
  options.timeout = kCallTimeout + absl::Seconds(5);
  options.wait_for_ready = true;
  int unreadable = 0;
  for (int round = 0; round < kMaxDrainRounds && !pending.empty() &&
                      absl::Now() < deadline;
       ++round) {
    if (round > 0) {
      // Pacing, for rounds that end early on errors.
      absl::SleepFor(std::min(kRetryPause, deadline - absl::Now()));
    }
    std::vector<std::string> still;
    for (size_t at = 0; at < pending.size(); at += kAwaitChunk) {
      std::vector<std::string> chunk(
          pending.begin() + at,
          pending.begin() + std::min(pending.size(), at + kAwaitChunk));
      absl::StatusOr<v1::AwaitResponse> r = client_.Await(
          chunk, v1::AWAIT_MODE_ALL, kAwaitWait, options);
      CheckCall(r.status(), "drain Await");
      if (!r.ok()) {
        // Transient: again next round. Otherwise (e.g. NOT_FOUND for a
        // lost id) the final check names the ids.
        if (Transient(r.status().code())) {
          still.insert(still.end(), chunk.begin(), chunk.end());
        } else {
          unreadable += static_cast<int>(chunk.size());
        }
        continue;
      }
      for (const v1::Task& task : r->tasks()) {
        ledger_->Observe(task, "drain await");
        if (!IsFinalState(task.state())) still.push_back(task.id());
      }
    }
    std::fprintf(stderr, "soak: drain round %d: %zu of %zu not terminal\n",
                 round, still.size(), pending.size());
    pending = std::move(still);
  }
  return static_cast<int>(pending.size()) + unreadable;
}

absl::StatusOr<absl::flat_hash_map<std::string, v1::Task>>
SoakClients::FinalTasks() {
  const std::vector<std::string> ids = ledger_->AckedIds();
  absl::flat_hash_map<std::string, v1::Task> tasks;
  CallOptions options;
  options.timeout = kCallTimeout;
  options.wait_for_ready = true;
  for (const std::string& id : ids) {
    absl::Status last;
    for (int attempt = 0; attempt < kMaxFinalTries; ++attempt) {
      absl::StatusOr<v1::Task> task = client_.Get(id, options);
      last = task.status();
      if (task.ok()) {
        tasks[id] = *std::move(task);
        break;
      }
      if (absl::IsNotFound(last)) break;
    }
    if (!last.ok() && !absl::IsNotFound(last)) {
      return absl::Status(last.code(),
                          absl::StrCat("GetTask ", id, ": ", last.message()));
    }
  }
  return tasks;
}

}  // namespace taskd::soak
