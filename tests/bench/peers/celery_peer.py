"""Celery's side of `make bench-peers` (run by bench_peers.py; see
peer_common.py for the protocol). Submits with apply_async (one at a time;
64 threads each one call at a time; group(...).apply_async() of 1,000, which
Celery sends as 1,000 messages on one producer), then starts one
`celery worker` at the requested concurrency (pool from --option: threads,
the default, or prefork) for the end-to-end and round-trip figures; the
client has each result through the Redis result backend (AsyncResult.get)."""

from __future__ import annotations

import os
import sys
import time
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import peer_common as pc  # noqa: E402

PYTHON = "/usr/bin/python3"


def main() -> int:
    args = pc.driver_args(__doc__.split("\n\n")[0])
    os.environ["BENCH_REDIS_URL"] = f"redis://127.0.0.1:{args.redis_port}/0"
    os.environ["BENCH_POOL_LIMIT"] = str(args.in_flight + 2)
    pool = args.option or "threads"
    import celery
    from celery import group
    from celery.exceptions import TimeoutError as ResultTimeout
    import celery_tasks
    noop = celery_tasks.noop
    meter = pc.CpuMeter(args.redis_pid)
    shapes = pc.ClientShapes(
        args,
        lambda queue, i: noop.apply_async((i,), queue=queue),
        lambda queue, part: group(noop.s(i) for i in part).apply_async(queue=queue).results,
        {"serial": "apply_async one at a time",
         "in_flight": f"{args.in_flight} threads, each apply_async one at a time",
         "batch": f"group of {args.batch}, apply_async (one message per task)"})
    shapes.emit_info("celery", celery.__version__,
                     f"1 celery worker, --pool {pool} --concurrency {args.concurrency}",
                     "Redis result backend, AsyncResult.get (pub/sub)")
    shapes.run_submit_figures(meter)

    worker = pc.spawn(
        [PYTHON, "-m", "celery", "--quiet", "-A", "celery_tasks", "worker", "-Q", "e2e",
         "--pool", pool, "--concurrency", str(args.concurrency), "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=HERE, env=dict(os.environ, PYTHONPATH=HERE),
        stdout=sys.stderr, stderr=sys.stderr)
    try:
        meter.worker_pids = [worker.pid]
        noop.apply_async((0,), queue="e2e").get(timeout=60)  # the worker is up

        def collect(results: List[object], deadline: float) -> int:
            held = 0
            try:
                for r in results:
                    if time.monotonic() >= deadline:
                        break
                    r.get(timeout=deadline - time.monotonic())  # type: ignore[attr-defined]
                    held += 1
            except ResultTimeout:
                pass
            return held

        shapes.run_end_to_end_figures(meter, "e2e", "AsyncResult.get for each", collect)
        pc.emit_roundtrips(meter, "apply_async + AsyncResult.get", args.roundtrips,
                           args.phase_limit_s,
                           lambda left: noop.apply_async((1,), queue="e2e").get(timeout=left))
    finally:
        pc.stop(worker, grace_s=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
