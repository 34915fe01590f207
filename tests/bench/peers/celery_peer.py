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
    url = f"redis://127.0.0.1:{args.redis_port}/0"
    os.environ["BENCH_REDIS_URL"] = url
    os.environ["BENCH_POOL_LIMIT"] = str(args.in_flight + 2)
    pool = args.option or "threads"
    import celery
    from celery import group
    import celery_tasks
    noop = celery_tasks.noop
    n, limit = args.n, args.phase_limit_s
    meter = pc.CpuMeter(args.redis_pid)
    pc.emit({"info": {
        "peer": "celery", "version": celery.__version__,
        "in_flight": f"{args.in_flight} threads, each apply_async one at a time",
        "batch": f"group of {args.batch} .apply_async() (one message per task)",
        "worker": f"1 celery worker, --pool {pool} --concurrency {args.concurrency}",
        "results": "Redis result backend, AsyncResult.get (pub/sub)",
    }})

    def serial(queue: str, indices: range, deadline: float) -> List[object]:
        out: List[object] = []
        for i in indices:
            if time.monotonic() > deadline:
                break
            out.append(noop.apply_async((i,), queue=queue))
        return out

    def in_flight(queue: str, indices: range, deadline: float) -> List[object]:
        return pc.in_flight_threads(indices, args.in_flight, deadline,
                                    lambda i: noop.apply_async((i,), queue=queue))

    def batched(queue: str, indices: range, deadline: float) -> List[object]:
        out: List[object] = []
        for part in pc.chunks(len(indices), args.batch):
            if time.monotonic() > deadline:
                break
            out += group(noop.s(indices[i]) for i in part).apply_async(queue=queue).results
        return out

    shapes = ((pc.SUBMIT_SERIAL, pc.E2E_SERIAL, serial, "one apply_async at a time"),
              (pc.SUBMIT_IN_FLIGHT, pc.E2E_IN_FLIGHT, in_flight,
               f"{args.in_flight} threads"),
              (pc.SUBMIT_BATCH, pc.E2E_BATCH, batched, f"group of {args.batch}"))
    for figure, _, submit, how in shapes:
        pc.measure(meter, figure, n, how,
                   lambda: len(submit(figure, range(n), time.monotonic() + limit)))

    worker = pc.spawn(
        [PYTHON, "-m", "celery", "--quiet", "-A", "celery_tasks", "worker", "-Q", "e2e",
         "--pool", pool, "--concurrency", str(args.concurrency), "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=HERE, env=dict(os.environ, PYTHONPATH=HERE),
        stdout=sys.stderr, stderr=sys.stderr)
    try:
        meter.worker_pids = [worker.pid]
        noop.apply_async((0,), queue="e2e").get(timeout=60)  # the worker is up

        def end_to_end(submit) -> int:  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + limit
            done = 0
            for r in submit("e2e", range(n), deadline):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                r.get(timeout=left)
                done += 1
            return done

        for _, figure, submit, how in shapes:
            pc.measure(meter, figure, n, how + ", then AsyncResult.get for each",
                       lambda: end_to_end(submit))
        pc.emit_roundtrips(meter, "apply_async + AsyncResult.get", args.roundtrips, limit,
                           lambda left: noop.apply_async((1,), queue="e2e").get(timeout=left))
    finally:
        pc.stop(worker, grace_s=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
