"""taskd's bench workload on Celery, RQ and BullMQ, for the comparison.

    make bench-peers                  (or /usr/bin/python3 tests/bench/peers/bench_peers.py)
    make bench-peers BENCH_PEERS_ARGS='--n 2000 --peers rq,bullmq'

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
ALL_FIGURES = RATE_FIGURES + LATENCY_FIGURES
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
        f"--n={args.n}", f"--in_flight={args.in_flight}", f"--batch={args.batch}",
        f"--concurrency={args.concurrency}", f"--roundtrips={args.roundtrips}",
        f"--phase_limit_s={args.phase_limit_s}", f"--option={option}"]
    driver = pc.spawn(argv, cwd=HERE, stdout=subprocess.PIPE, stderr=sys.stderr,
                      stdin=subprocess.DEVNULL, start_new_session=True, text=True)
    deadline = time.monotonic() + PHASES * args.phase_limit_s + 300
    try:
        for line in driver.stdout:  # ends when the driver exits or is killed
            if time.monotonic() > deadline:
                raise RuntimeError(f"{peer}: driver ran past its time limit")
            line = line.strip()
            if line.startswith("{"):
                yield json.loads(line)
        code = driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        if code != 0:
            raise RuntimeError(f"{peer}: driver exited with status {code}")
    finally:
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


def value_of(record: Dict[str, object]) -> Optional[float]:
    if "value" in record:
        return float(record["value"])  # type: ignore[arg-type]
    seconds = float(record.get("seconds", 0.0))  # type: ignore[arg-type]
    return float(record["done"]) / seconds if seconds > 0 else None  # type: ignore[arg-type]


def per_task_us(record: Dict[str, object], key: str) -> Optional[float]:
    done = int(record.get("done", 0))  # type: ignore[arg-type]
    if key not in record or done == 0:
        return None
    return float(record[key]) * 1e6 / done  # type: ignore[arg-type]


def json_line(peer: str, info: Dict[str, object], record: Dict[str, object]) -> Dict[str, object]:
    figure = str(record["figure"])
    out: Dict[str, object] = {
        "bench": "peers", "system": peer, "version": info.get("version"),
        "figure": figure, "value": value_of(record),
        "unit": "ms" if figure in LATENCY_FIGURES else "tasks/s",
        "n": record["n"], "done": record["done"], "how": record.get("how"),
    }
    if "seconds" in record:
        out["seconds"] = record["seconds"]
    for key in ("client_cpu_s", "broker_cpu_s", "worker_cpu_s"):
        us = per_task_us(record, key)
        if us is not None and not (key == "worker_cpu_s" and figure.startswith("submit")):
            out[key.replace("_cpu_s", "_cpu_us_per_task")] = us
    return out


def fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.2f}" if unit == "ms" else f"{value:,.0f}"


def table(peers: List[str], results: Dict[str, Dict[str, Dict[str, object]]],
          args: argparse.Namespace) -> str:
    label = {
        pc.SUBMIT_SERIAL: "submit, one at a time (tasks/s)",
        pc.SUBMIT_IN_FLIGHT: f"submit, {args.in_flight} in flight (tasks/s)",
        pc.SUBMIT_BATCH: f"submit, batches of {args.batch:,} (tasks/s)",
        pc.E2E_SERIAL: "end to end, one at a time (tasks/s)",
        pc.E2E_IN_FLIGHT: f"end to end, {args.in_flight} in flight (tasks/s)",
        pc.E2E_BATCH: f"end to end, batches of {args.batch:,} (tasks/s)",
        pc.ROUNDTRIP_P50: "submit + await round trip p50 (ms)",
        pc.ROUNDTRIP_P99: "submit + await round trip p99 (ms)",
    }
    rows: List[Tuple[str, List[str]]] = []
    for figure in ALL_FIGURES:
        cells = []
        for peer in peers:
            line = results[peer].get(figure)
            cell = fmt(line["value"], str(line["unit"])) if line else "failed"  # type: ignore[arg-type]
            if line and line["done"] != line["n"]:
                cell += f" ({line['done']:,}/{line['n']:,})"
            cells.append(cell)
        rows.append((f"{figure:<17} {label[figure]}", cells))
    for figure, key, what in (
            (pc.SUBMIT_IN_FLIGHT, "client", "client CPU µs per submit, 64 in flight"),
            (pc.SUBMIT_IN_FLIGHT, "broker", "redis CPU µs per submit, 64 in flight"),
            (pc.E2E_IN_FLIGHT, "client", "client CPU µs per e2e task, 64 in flight"),
            (pc.E2E_IN_FLIGHT, "broker", "redis CPU µs per e2e task, 64 in flight"),
            (pc.E2E_IN_FLIGHT, "worker", "worker CPU µs per e2e task, 64 in flight")):
        cells = []
        for peer in peers:
            line = results[peer].get(figure)
            us = line.get(f"{key}_cpu_us_per_task") if line else None
            cells.append(fmt(us, "us"))  # type: ignore[arg-type]
        rows.append((f"{'':<17} {what.replace('64', str(args.in_flight))}", cells))
    width = max(len(name) for name, _ in rows)
    cols = [max(9, len(p), *(len(cells[i]) for _, cells in rows)) for i, p in enumerate(peers)]
    out = [f"{'figure':<{width}}  " + "  ".join(f"{p:>{w}}" for p, w in zip(peers, cols))]
    out.append("-" * len(out[0]))
    for name, cells in rows:
        out.append(f"{name:<{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, cols)))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="tasks per rate figure")
    parser.add_argument("--roundtrips", type=int, default=2000,
                        help="submit + await round trips timed (one at a time)")
    parser.add_argument("--in_flight", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50, help="worker concurrency")
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
    for name in ("n", "roundtrips", "in_flight", "batch", "concurrency"):
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
            print(f"== {peer} (N={args.n:,})", file=sys.stderr, flush=True)
            redis = RedisServer(args.redis_server)
            try:
                redis.start()
                for record in run_driver(peer, redis, args, options[peer]):
                    if "info" in record:
                        infos[peer] = record["info"]  # type: ignore[assignment]
                        continue
                    line = json_line(peer, infos[peer], record)
                    results[peer][str(record["figure"])] = line
                    out.write(json.dumps(line) + "\n")
                    out.flush()
                    print(f"  {line['figure']}: {fmt(line['value'], str(line['unit']))} "
                          f"{line['unit']} ({line['done']}/{line['n']})",
                          file=sys.stderr, flush=True)
            except (RuntimeError, OSError, ValueError) as e:
                print(f"  {peer} failed: {e}\n  redis-server log:\n{redis.log_tail()}",
                      file=sys.stderr, flush=True)
                failed.append(peer)
            finally:
                redis.stop()
    missing = [f"{p}:{f}" for p in peers for f in ALL_FIGURES if f not in results[p]]

    print(f"taskd bench workload on its peers: N={args.n:,} no-op tasks per rate figure, "
          f"{args.roundtrips:,} round trips; each peer on a fresh redis-server "
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
    sys.exit(main())
