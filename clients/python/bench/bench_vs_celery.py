"""taskd's Python client and worker next to Celery 5 + Redis, in one run.

    make bench-python      (or: python3 clients/python/bench/bench_vs_celery.py --taskd-bin ...)

Prints one table. Every workload runs on a fresh server (taskd with
--durability=async, or a fresh redis-server without persistence) on
loopback, with the same task (a JSON no-op), the same worker concurrency and
the same client code shape: submit one call at a time, submit in batches of
1000 (taskd submit_many / Celery group), and end-to-end (submit, a worker
runs it, the client has every result) both ways. Rates are tasks per second
of wall time. Only ratios within one run mean anything on a shared machine.
This is a benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import concurrent.futures as cf
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, Iterator, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, PACKAGE_ROOT)
sys.path.insert(0, os.path.join(PACKAGE_ROOT, "tests"))

import taskd  # noqa: E402
from harness import TaskdServer  # noqa: E402

PYTHON = "/usr/bin/python3"
BATCH = 1000
TIME_LIMIT = 300.0  # every loop stops here even if unfinished


def free_port() -> int:
    """A free loopback port for redis-server (which cannot report one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_ROOT, HERE])
    env.update(extra)
    return env


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@contextlib.contextmanager
def fresh_taskd(binary: str) -> Iterator[str]:
    data_dir = tempfile.mkdtemp(prefix="bench-taskd-")
    os.environ["TASKD_BIN"] = binary
    server = TaskdServer("--durability=async", f"--data-dir={data_dir}")
    # The harness passes --durability=memory first; the later flag wins.
    try:
        server.start()
        yield server.target
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def fresh_redis() -> Iterator[str]:
    import redis
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:  # connection attempts, bounded in time
            try:
                probe.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
        yield url
    finally:
        stop(process)


def timed(n: int, body: Callable[[], int]) -> float:
    """Runs ``body`` (which returns how many tasks it completed); tasks/s."""
    start = time.perf_counter()
    done = body()
    elapsed = time.perf_counter() - start
    if done < n:
        print(f"  (only {done} of {n} within {TIME_LIMIT:.0f} s)", file=sys.stderr)
    return done / elapsed


# ---------------------------------------------------------------- taskd

def taskd_submit_single(target: str, n: int) -> float:
    with taskd.Client(target) as client:
        def body() -> int:
            deadline = time.monotonic() + TIME_LIMIT
            for i in range(n):
                client.submit("noop", b"[%d]" % i)
                if time.monotonic() > deadline:
                    return i + 1
            return n
        return timed(n, body)


def taskd_submit_batch(target: str, n: int) -> float:
    with taskd.Client(target) as client:
        def body() -> int:
            deadline = time.monotonic() + TIME_LIMIT
            sent = 0
            while sent < n and time.monotonic() < deadline:
                client.submit_many([("noop", b"[%d]" % i) for i in range(BATCH)])
                sent += BATCH
            return sent
        return timed(n, body)


def taskd_end_to_end(target: str, n: int, batched: bool, concurrency: int) -> float:
    from bench_taskd_worker import noop  # the same App task the worker serves
    worker = subprocess.Popen(
        [PYTHON, "-m", "taskd.worker", "bench_taskd_worker:app", "--log-level", "WARNING"],
        env=child_env(TASKD_TARGET=target), cwd=HERE)
    try:
        noop.app.target = target
        noop.delay(0).result(timeout=60)  # the worker is up
        def body() -> int:
            if batched:
                futures = []
                for start in range(0, n, BATCH):
                    futures += noop.app.submit_many(
                        [noop.s(i) for i in range(start, min(n, start + BATCH))])
            else:
                futures = [noop.delay(i) for i in range(n)]
            done, _ = cf.wait(futures, timeout=TIME_LIMIT)
            return sum(1 for f in done if f.exception() is None)
        return timed(n, body)
    finally:
        noop.app.close()
        stop(worker)


# ---------------------------------------------------------------- Celery

def celery_app(url: str):  # type: ignore[no-untyped-def]
    os.environ["BENCH_REDIS_URL"] = url
    import importlib
    import bench_celery_app
    importlib.reload(bench_celery_app)  # bind to this run's fresh Redis
    return bench_celery_app


def celery_submit_single(url: str, n: int) -> float:
    module = celery_app(url)
    def body() -> int:
        deadline = time.monotonic() + TIME_LIMIT
        for i in range(n):
            module.noop.delay(i)
            if time.monotonic() > deadline:
                return i + 1
        return n
    rate = timed(n, body)
    gc.collect()
    return rate


def celery_submit_batch(url: str, n: int) -> float:
    from celery import group
    module = celery_app(url)
    def body() -> int:
        deadline = time.monotonic() + TIME_LIMIT
        sent = 0
        while sent < n and time.monotonic() < deadline:
            group(module.noop.s(i) for i in range(BATCH)).apply_async()
            sent += BATCH
        return sent
    rate = timed(n, body)
    gc.collect()
    return rate


def celery_end_to_end(url: str, n: int, batched: bool, concurrency: int) -> float:
    from celery import group
    module = celery_app(url)
    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "bench_celery_app", "worker", "--loglevel", "WARNING",
         "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        env=child_env(BENCH_REDIS_URL=url), cwd=HERE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        module.noop.delay(0).get(timeout=60)  # the worker is up
        def body() -> int:
            if batched:
                results = []
                for start in range(0, n, BATCH):
                    results += group(module.noop.s(i) for i in
                                     range(start, min(n, start + BATCH))).apply_async().results
            else:
                results = [module.noop.delay(i) for i in range(n)]
            deadline = time.monotonic() + TIME_LIMIT
            done = 0
            for r in results:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                r.get(timeout=left)
                done += 1
            return done
        return timed(n, body)
    finally:
        stop(worker)
        gc.collect()  # Celery results hold Redis connections; drop them now


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taskd-bin", default="bazel-bin/services/taskd")
    parser.add_argument("--submits", type=int, default=3000)
    parser.add_argument("--batched", type=int, default=20000)
    parser.add_argument("--end-to-end", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4,
                        help="worker concurrency (taskd: threads; Celery: prefork processes)")
    args = parser.parse_args()
    binary = os.path.abspath(args.taskd_bin)
    for name, value in (("submits", args.submits), ("batched", args.batched),
                        ("end-to-end", args.end_to_end), ("concurrency", args.concurrency)):
        if value < 1:
            parser.error(f"--{name}: must be >= 1")
    if shutil.which("redis-server") is None:
        parser.error("redis-server not found (Debian redis-server; `make deps`)")
    e2e, conc = args.end_to_end, args.concurrency
    rows: List[Tuple[str, int, Callable[[str], float], Callable[[str], float]]] = [
        ("submit, one call at a time", args.submits,
         lambda t: taskd_submit_single(t, args.submits),
         lambda u: celery_submit_single(u, args.submits)),
        (f"submit, batches of {BATCH} (submit_many / group)", args.batched,
         lambda t: taskd_submit_batch(t, args.batched),
         lambda u: celery_submit_batch(u, args.batched)),
        (f"end-to-end, one at a time, worker x{conc}", e2e,
         lambda t: taskd_end_to_end(t, e2e, False, conc),
         lambda u: celery_end_to_end(u, e2e, False, conc)),
        (f"end-to-end, batches of {BATCH}, worker x{conc}", e2e,
         lambda t: taskd_end_to_end(t, e2e, True, conc),
         lambda u: celery_end_to_end(u, e2e, True, conc)),
    ]
    print(f"taskd Python client vs Celery {__import__('celery').__version__} + Redis "
          f"(each workload on a fresh server; tasks/s, higher is better)")
    print(f"{'workload':<46} {'tasks':>6} {'taskd':>9} {'Celery':>9} {'ratio':>7}")
    for name, n, run_taskd, run_celery in rows:
        with fresh_taskd(binary) as target:
            ours = run_taskd(target)
        with fresh_redis() as url:
            theirs = run_celery(url)
        print(f"{name:<46} {n:>6} {ours:>9.0f} {theirs:>9.0f} {ours / theirs:>6.1f}x",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
