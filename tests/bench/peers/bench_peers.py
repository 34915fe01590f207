"""taskd's bench workload on Celery, RQ and BullMQ, for the comparison.

    make bench-peers                  (or /usr/bin/python3 tests/bench/peers/bench_peers.py)
    make bench-peers BENCH_PEERS_ARGS='--tasks 2000 --peers rq,bullmq'

Each peer gets a fresh redis-server on 127.0.0.1 (a free port, no RDB, no
AOF, in a temporary directory) and its own driver process (celery_peer.py,
rq_peer.py, bullmq_peer.js), which runs taskd's bench shapes on it: N no-op
tasks submitted one at a time, 64 in flight and in batches of 1,000; the same
three end to end (one worker of concurrency 50, or the closest the peer has,
runs them and the client has every result); and submit + await round trips
one at a time. Client, broker and worker CPU come from /proc. Prints one
table (rows: figures, columns: peers) and writes JSON lines with the figure
names of taskd's own bench (tests/bench). A benchmark, not a test: a peer
that fails is reported and the others still run; the exit status is 1 then.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, Iterator, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import peer_common as pc  # noqa: E402

PYTHON = "/usr/bin/python3"
PEERS = ("celery", "rq", "bullmq")
RATE_FIGURES = (pc.SUBMIT_SERIAL, pc.SUBMIT_IN_FLIGHT, pc.SUBMIT_BATCH,
                pc.E2E_SERIAL, pc.E2E_IN_FLIGHT, pc.E2E_BATCH)
LATENCY_FIGURES = (pc.ROUNDTRIP_P50, pc.ROUNDTRIP_P99)
ALL_FIGURES = RATE_FIGURES + LATENCY_FIGURES + (pc.CPU_SUBMIT, pc.CPU_E2E)
PHASES = len(RATE_FIGURES) + 1  # the round trips are one phase


def driver_argv(peer: str) -> List[str]:
    if peer == "bullmq":
        return ["node", os.path.join(HERE, "bullmq_peer.js")]
    return [PYTHON, os.path.join(HERE, f"{peer}_peer.py")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A redis-server child without persistence in its own temporary directory.
    start() waits (bounded) until it answers PING; stop() kills it and removes
    the directory. Thread-compatible."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.process: Optional[subprocess.Popen] = None
        self.port = 0
        self.dir = ""

    def start(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="bench-peers-redis-")
        for _ in range(3):  # a port taken between free_port() and bind: pick again
            self.port = free_port()
            self.process = pc.spawn(
                [self.binary, "--bind", "127.0.0.1", "--port", str(self.port),
                 "--dir", self.dir, "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--loglevel", "warning",
                 # Celery's client reads its pub/sub results only after it has
                 # submitted all N; Redis's default would drop it past 8 MB.
                 "--client-output-buffer-limit", "pubsub 0 0 0",
                 "--logfile", os.path.join(self.dir, "redis.log")],
                stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr,
                start_new_session=True)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.process.poll() is None:
                if redis_ping(self.port):
                    return
                time.sleep(0.02)  # readiness poll, bounded by the deadline
            pc.stop(self.process)
        raise RuntimeError(f"redis-server did not start:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), encoding="utf-8",
                      errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"


    def stop(self) -> None:
        pc.stop(self.process)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_driver(peer: str, redis: RedisServer, args: argparse.Namespace,
               option: str) -> Iterator[Dict[str, object]]:
    """Runs one peer's driver; yields its records as they come. The driver is
    killed with its whole process group (its workers) however this ends."""
    argv = driver_argv(peer) + [
        f"--redis_port={redis.port}", f"--redis_pid={redis.process.pid}",
        f"--n={args.tasks}", f"--in_flight={args.in_flight}", f"--batch={args.batch}",
        f"--concurrency={args.worker_concurrency}", f"--roundtrips={args.round_trips}",
        f"--phase_limit_s={args.phase_limit_s}", f"--option={option}"]
    driver = pc.spawn(argv, cwd=HERE, stdout=subprocess.PIPE, stderr=sys.stderr,
                      stdin=subprocess.DEVNULL, start_new_session=True, text=True)
    # Each phase of the driver is bounded by phase_limit_s; this bounds the
    # whole driver even if a peer's client hangs where it has no timeout.
    watchdog = threading.Timer(PHASES * args.phase_limit_s + 300,
                               lambda: os.killpg(driver.pid, signal.SIGKILL))
    watchdog.start()
    try:
        for line in driver.stdout:  # ends when the driver exits or is killed
            line = line.strip()
            if line.startswith("{"):
                yield json.loads(line)
        code = driver.wait(timeout=60)
        if code != 0:
            raise RuntimeError(f"{peer}: driver exited with status {code}")
    finally:
        watchdog.cancel()
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGTERM)
            try:
                driver.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait(timeout=30)
        else:
            try:  # a worker the driver failed to stop still has its group
                os.killpg(driver.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def per_task_us(record: Dict[str, object], key: str) -> Optional[float]:
    done = int(record["done"])  # type: ignore[arg-type]
    if key not in record or done == 0:
        return None
    return float(record[key]) * 1e6 / done  # type: ignore[arg-type]


def json_lines(peer: str, info: Dict[str, object],
               record: Dict[str, object]) -> List[Dict[str, object]]:
    """A driver's record as taskd_bench's JSON lines (row, mode = the peer,
    value, unit, n, errors, time_limited, seconds, then extras and notes);
    the 64-in-flight rates add their cpu_* row (redis-server CPU per task)."""
    row = str(record["figure"])
    done, seconds = int(record["done"]), float(record.get("seconds", 0.0))  # type: ignore[arg-type]
    if row in LATENCY_FIGURES:
        value, unit = record.get("value"), "ms"
    else:
        value, unit = (done / seconds if seconds > 0 else None), "tasks/s"
    base: Dict[str, object] = {
        "n": record["n"], "errors": 0, "time_limited": done < int(record["n"]),  # type: ignore[arg-type]
        "seconds": seconds, "done": done}
    for key in ("client", "broker", "worker"):
        us = per_task_us(record, f"{key}_cpu_s")
        if us is not None and not (key == "worker" and row.startswith("submit")):
            base[f"{key}_cpu_us_per_task"] = us
    for key in ("mean_ms", "max_ms"):  # round trips
        if key in record:
            base[key] = record[key]
    notes = {"how": record.get("how"), "version": info.get("version"), "bench": "peers"}
    lines = [{"row": row, "mode": peer, "value": value, "unit": unit, **base, **notes}]
    cpu_row = {pc.SUBMIT_IN_FLIGHT: pc.CPU_SUBMIT, pc.E2E_IN_FLIGHT: pc.CPU_E2E}.get(row)
    if cpu_row:
        lines.append({"row": cpu_row, "mode": peer,
                      "value": base.get("broker_cpu_us_per_task"), "unit": "us/task",
                      **base, **notes})
    return lines


def fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if unit == "ms" else f"{value:,.0f}"


def table(peers: List[str], results: Dict[str, Dict[str, Dict[str, object]]],
          args: argparse.Namespace) -> str:
    fl, bt = f"{args.in_flight} in flight", f"batches of {args.batch:,}"
    rows: List[Tuple[str, str, str]] = [  # label, row, key of the value
        ("submit, one at a time (tasks/s)", pc.SUBMIT_SERIAL, "value"),
        (f"submit, {fl} (tasks/s)", pc.SUBMIT_IN_FLIGHT, "value"),
        (f"submit, {bt} (tasks/s)", pc.SUBMIT_BATCH, "value"),
        (f"redis CPU per submit, {fl} (us)", pc.CPU_SUBMIT, "value"),
        (f"client CPU per submit, {fl} (us)", pc.SUBMIT_IN_FLIGHT, "client_cpu_us_per_task"),
        ("end to end, one at a time (tasks/s)", pc.E2E_SERIAL, "value"),
        (f"end to end, {fl} (tasks/s)", pc.E2E_IN_FLIGHT, "value"),
        (f"end to end, {bt} (tasks/s)", pc.E2E_BATCH, "value"),
        (f"redis CPU per e2e task, {fl} (us)", pc.CPU_E2E, "value"),
        (f"client CPU per e2e task, {fl} (us)", pc.E2E_IN_FLIGHT, "client_cpu_us_per_task"),
        (f"worker CPU per e2e task, {fl} (us)", pc.E2E_IN_FLIGHT, "worker_cpu_us_per_task"),
        ("submit+await round trip p50 (ms)", pc.ROUNDTRIP_P50, "value"),
        ("submit+await round trip p99 (ms)", pc.ROUNDTRIP_P99, "value"),
    ]
    cells = [["figure", "row"] + peers]
    for label, row, key in rows:
        line = [label, row if key == "value" else ""]
        for peer in peers:
            r = results[peer].get(row)
            if r is None:
                line.append("failed")
                continue
            unit = str(r["unit"]) if key == "value" else "us"
            cell = fmt(r.get(key), unit)  # type: ignore[arg-type]
            if r["time_limited"] and key == "value":
                cell += f" ({r['done']:,}/{r['n']:,})"
            line.append(cell)
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    out = []
    for c in cells:
        out.append("  ".join([c[0].ljust(widths[0]), c[1].ljust(widths[1])]
                             + [x.rjust(w) for x, w in zip(c[2:], widths[2:])]).rstrip())
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Flag names and defaults as taskd_bench's.
    parser.add_argument("--tasks", type=int, default=20000, help="N: tasks per rate figure")
    parser.add_argument("--round_trips", type=int, default=5000,
                        help="submit + await round trips timed (one at a time)")
    parser.add_argument("--in_flight", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--worker_concurrency", type=int, default=50)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--phase_limit_s", type=float, default=120.0,
                        help="each figure stops here, finished or not")
    parser.add_argument("--json_out", default="./bench-peers.jsonl")
    parser.add_argument("--celery_pool", default="threads", choices=("threads", "prefork"))
    parser.add_argument("--rq_worker", default="simple", choices=("simple", "fork"),
                        help="SimpleWorker (runs jobs in its own process) or Worker "
                             "(forks a work horse per job)")
    parser.add_argument("--redis_server", default=shutil.which("redis-server") or "redis-server")
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    for p in peers:
        if p not in PEERS:
            parser.error(f"--peers: unknown peer {p!r} (known: {', '.join(PEERS)})")
    for name in ("tasks", "round_trips", "in_flight", "batch", "worker_concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be >= 1")
    if shutil.which(args.redis_server) is None:
        parser.error("redis-server not found (Debian redis-server; `make bench-peers`)")
    options = {"celery": args.celery_pool, "rq": args.rq_worker, "bullmq": ""}

    # SIGTERM/SIGINT unwind through the finally blocks that stop every child.
    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    started = time.monotonic()
    results: Dict[str, Dict[str, Dict[str, object]]] = {p: {} for p in peers}
    infos: Dict[str, Dict[str, object]] = {p: {} for p in peers}
    failed: List[str] = []
    with open(args.json_out, "w", encoding="utf-8") as out:
        for peer in peers:
            print(f"== {peer} (N={args.tasks:,})", file=sys.stderr, flush=True)
            redis = RedisServer(args.redis_server)
            try:
                redis.start()
                for record in run_driver(peer, redis, args, options[peer]):
                    if "info" in record:
                        infos[peer] = record["info"]  # type: ignore[assignment]
                        continue
                    for line in json_lines(peer, infos[peer], record):
                        results[peer][str(line["row"])] = line
                        out.write(json.dumps(line) + "\n")
                        print(f"  {line['row']}: {fmt(line['value'], str(line['unit']))} "  # type: ignore[arg-type]
                              f"{line['unit']} ({line['done']}/{line['n']})",
                              file=sys.stderr, flush=True)
                    out.flush()
            except (RuntimeError, OSError, ValueError) as e:
                print(f"  {peer} failed: {e}\n  redis-server log:\n{redis.log_tail()}",
                      file=sys.stderr, flush=True)
                failed.append(peer)
            finally:
                redis.stop()
    missing = [f"{p}:{f}" for p in peers for f in ALL_FIGURES if f not in results[p]]

    redis_version = subprocess.run([args.redis_server, "--version"], capture_output=True,
                                   text=True, timeout=30).stdout.split(" v=")[-1].split()[0]
    print(f"taskd bench workload on its peers: N={args.tasks:,} no-op tasks per rate figure, "
          f"{args.round_trips:,} round trips; each peer on a fresh redis-server {redis_version} "
          f"(no persistence); {os.cpu_count()} cores; {time.monotonic() - started:.0f} s")
    print()
    print(table(peers, results, args))
    print()
    for peer in peers:
        info = infos[peer]
        print(f"{peer} {info.get('version', '?')}: "
              + "; ".join(f"{k}: {v}" for k, v in info.items() if k not in ("peer", "version")))
    print(f"\nJSON lines: {args.json_out}")
    if failed or missing:
        print(f"missing figures: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as interrupt:
        print(f"bench_peers: interrupted ({interrupt}); its processes are stopped",
              file=sys.stderr)
        sys.exit(130)
