"""What every Python side of `make bench-peers` shares: process CPU from /proc,
child processes that die with their parent, and the record a driver prints.

A driver (celery_peer.py, rq_peer.py; bullmq_peer.js speaks the same protocol)
runs one peer's workload against a redis-server that bench_peers.py started,
and prints one JSON object per line on stdout:
  {"figure": NAME, "n": asked, "done": finished, "seconds": wall,
   "client_cpu_s": ..., "broker_cpu_s": ..., "worker_cpu_s": ..., "how": text}
for rates (tasks/s = done / seconds), {"figure": "rtt_p50", "value": ms,
...} for latencies, and one {"info": {...}} describing the peer's set-up.
Nothing here is thread-safe unless it says so; drivers call it from one thread.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1

# Figure names (JSON "row"), as taskd's own bench names them (tests/bench).
SUBMIT_SERIAL = "submit_1"
SUBMIT_IN_FLIGHT = "submit_64"
SUBMIT_BATCH = "submit_batch"
E2E_SERIAL = "e2e_1"
E2E_IN_FLIGHT = "e2e_64"
E2E_BATCH = "e2e_batch"
ROUNDTRIP_P50 = "rtt_p50"
ROUNDTRIP_P99 = "rtt_p99"
# Derived by bench_peers.py: redis-server CPU per task, 64 in flight.
CPU_SUBMIT = "cpu_submit_64"
CPU_E2E = "cpu_e2e_64"

def die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when the spawning thread exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv: Sequence[str], **kwargs) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    """Popen that cannot outlive this process, even if it is SIGKILLed."""
    return subprocess.Popen(list(argv), preexec_fn=die_with_parent, **kwargs)


def stop(process: Optional[subprocess.Popen], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after grace_s; always reaps."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)


def _stat_fields(pid: int) -> Optional[List[str]]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:  # gone since listed
        return None
    # Field 2 (comm) may hold spaces and parentheses; what follows the last ')' does not.
    return raw[raw.rfind(")") + 2:].split()


def process_cpu_s(pid: int, with_reaped_children: bool = False) -> float:
    """User + system CPU seconds of one process (all its threads), from /proc."""
    f = _stat_fields(pid)
    if f is None:
        return 0.0
    # After comm: [0] state, [1] ppid, ... [11] utime, [12] stime, [13] cutime, [14] cstime.
    ticks = int(f[11]) + int(f[12])
    if with_reaped_children:
        ticks += int(f[13]) + int(f[14])
    return ticks / CLOCK_TICKS


def tree_cpu_s(roots: Sequence[int]) -> float:
    """CPU seconds of the processes in roots and all their live descendants,
    plus the children each of them has already reaped."""
    parent: Dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = _stat_fields(int(name))
            if f is not None:
                parent[int(name)] = int(f[1])
    members = set(roots)
    grew = True
    while grew:  # at most the depth of the tree
        grew = False
        for pid, ppid in parent.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    return sum(process_cpu_s(pid, with_reaped_children=True) for pid in members)


class CpuMeter:
    """Reads client (this process), broker and worker CPU; deltas per phase."""

    def __init__(self, broker_pid: int) -> None:
        self.broker_pid = broker_pid
        self.worker_pids: List[int] = []

    def read(self) -> Dict[str, float]:
        return {
            "client_cpu_s": process_cpu_s(os.getpid()),
            "broker_cpu_s": process_cpu_s(self.broker_pid),
            "worker_cpu_s": tree_cpu_s(self.worker_pids) if self.worker_pids else 0.0,
        }


def emit(record: Dict[str, object]) -> None:
    """One record for bench_peers.py, on its own line."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def measure(meter: CpuMeter, figure: str, n: int, how: str,
            body: Callable[[], int]) -> None:
    """Runs body (returns how many of n tasks it finished) and emits its figure."""
    before = meter.read()
    start = time.perf_counter()
    done = body()
    seconds = time.perf_counter() - start
    after = meter.read()
    record: Dict[str, object] = {"figure": figure, "n": n, "done": done,
                                 "seconds": seconds, "how": how}
    for key, value in after.items():
        record[key] = value - before[key]
    emit(record)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, int(-(-q * len(sorted_values) // 100)))  # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def emit_roundtrips(meter: CpuMeter, how: str, count: int, deadline_s: float,
                    one: Callable[[float], None]) -> None:
    """Times `one(timeout_s)` (submit one task and wait for its result) up to
    count times or until deadline_s passes; emits p50 and p99 in ms."""
    samples: List[float] = []
    before = meter.read()
    started = time.perf_counter()
    deadline = time.monotonic() + deadline_s
    for _ in range(count):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        start = time.perf_counter()
        one(left)
        samples.append((time.perf_counter() - start) * 1000.0)
    seconds = time.perf_counter() - started
    after = meter.read()
    samples.sort()
    cpu = {key: value - before[key] for key, value in after.items()}
    for figure, q in ((ROUNDTRIP_P50, 50), (ROUNDTRIP_P99, 99)):
        record: Dict[str, object] = {"figure": figure, "n": count, "done": len(samples),
                                     "seconds": seconds, "how": how}
        if samples:
            record.update(value=percentile(samples, q), mean_ms=sum(samples) / len(samples),
                          max_ms=samples[-1])
        record.update(cpu)
        emit(record)


def chunks(n: int, size: int) -> List[range]:
    return [range(start, min(n, start + size)) for start in range(0, n, size)]


def in_flight_threads(indices: Sequence[int], in_flight: int, deadline: float,
                      submit: Callable[[int], object]) -> List[object]:
    """Submits every index with `in_flight` threads, each one call at a time,
    until done or the monotonic deadline passes; returns what submit returned
    for the calls that ran (in no particular order). submit must be thread-safe."""
    import threading
    lanes: List[List[object]] = [[] for _ in range(in_flight)]
    errors: List[BaseException] = []

    def lane(k: int) -> None:
        try:
            for i in indices[k::in_flight]:
                if time.monotonic() > deadline:
                    return
                lanes[k].append(submit(i))
        except BaseException as e:  # noqa: BLE001 - reported by the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=lane, args=(k,), daemon=True)
               for k in range(in_flight)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 30.0)
    if errors:
        raise errors[0]
    return [handle for handles in lanes for handle in handles]


class ClientShapes:
    """taskd's bench client shapes over one peer's submit calls: one call at a
    time; `in_flight` threads, each one call at a time; batches of `batch`.
    submit_one(queue, i) (thread-safe) and submit_batch(queue, indices) return
    handles, whatever the peer's collect(handles, deadline) takes."""

    # (shape, submit-only figure, end-to-end figure)
    FIGURES = (("serial", SUBMIT_SERIAL, E2E_SERIAL),
               ("in_flight", SUBMIT_IN_FLIGHT, E2E_IN_FLIGHT),
               ("batch", SUBMIT_BATCH, E2E_BATCH))

    def __init__(self, args, submit_one: Callable[[str, int], object],  # type: ignore[no-untyped-def]
                 submit_batch: Callable[[str, Sequence[int]], List[object]],
                 hows: Dict[str, str]) -> None:
        self.n = args.n
        self.in_flight = args.in_flight
        self.batch = args.batch
        self.limit_s = args.phase_limit_s
        self.submit_one = submit_one
        self.submit_batch = submit_batch
        self.hows = hows

    def emit_info(self, peer: str, version: str, worker: str, results: str) -> None:
        """The record that says how this peer was driven (printed under the table)."""
        emit({"info": {"peer": peer, "version": version, "in_flight": self.hows["in_flight"],
                       "batch": self.hows["batch"], "worker": worker, "results": results}})

    def submit(self, shape: str, queue: str, deadline: float) -> List[object]:
        """Submits n tasks to queue in this shape, stopping at the deadline."""
        indices = range(self.n)
        if shape == "in_flight":
            return in_flight_threads(indices, self.in_flight, deadline,
                                     lambda i: self.submit_one(queue, i))
        out: List[object] = []
        if shape == "serial":
            for i in indices:
                if time.monotonic() > deadline:
                    break
                out.append(self.submit_one(queue, i))
            return out
        for part in chunks(self.n, self.batch):
            if time.monotonic() > deadline:
                break
            out += self.submit_batch(queue, part)
        return out

    def run_submit_figures(self, meter: CpuMeter) -> None:
        """The submit-only figures, each on a queue of its own name (no worker)."""
        for shape, figure, _ in self.FIGURES:
            measure(meter, figure, self.n, self.hows[shape],
                    lambda: len(self.submit(shape, figure, time.monotonic() + self.limit_s)))

    def run_end_to_end_figures(self, meter: CpuMeter, queue: str, collect_how: str,
                               collect: Callable[[List[object], float], int]) -> None:
        """The end-to-end figures on the worker's queue: submit n in each shape,
        then collect (returns how many results it holds by the deadline)."""
        for shape, _, figure in self.FIGURES:
            def body() -> int:
                deadline = time.monotonic() + self.limit_s
                return collect(self.submit(shape, queue, deadline), deadline)
            measure(meter, figure, self.n, f"{self.hows[shape]}, then {collect_how}", body)


def driver_args(description: str):  # type: ignore[no-untyped-def]
    """The flags bench_peers.py passes to every driver."""
    import argparse
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--redis_port", type=int, required=True)
    p.add_argument("--redis_pid", type=int, required=True)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--in_flight", type=int, default=64)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--roundtrips", type=int, default=5000)
    p.add_argument("--phase_limit_s", type=float, default=120.0)
    p.add_argument("--option", default="",
                   help="peer-specific choice (Celery pool, RQ worker class)")
    return p.parse_args()
