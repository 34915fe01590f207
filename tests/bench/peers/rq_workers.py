"""RQ's worker side of `make bench-peers`: COUNT worker processes on one queue.

    rq_workers.py --redis_port P --queue e2e --count 50 --kind simple|fork

RQ 1.13 runs one job at a time per worker, so concurrency C is C worker
processes. This process imports RQ once and forks them (each opens its own
Redis connection after the fork); SIGTERM here is passed on to every worker,
which stops after its current job (RQ's warm shutdown). `simple` workers run
jobs in their own process (rq.SimpleWorker); `fork` workers fork a work horse
per job (rq.Worker, RQ's default)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from redis import Redis  # noqa: E402
from rq import Queue, SimpleWorker, Worker  # noqa: E402

import peer_common as pc  # noqa: E402


def run_worker(port: int, queue: str, kind: str, parent: int) -> None:
    pc.die_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        return
    connection = Redis(host="127.0.0.1", port=port)
    worker_class = SimpleWorker if kind == "simple" else Worker
    worker = worker_class([Queue(queue, connection=connection)], connection=connection)
    worker.work(logging_level="WARNING", with_scheduler=False)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--redis_port", type=int, required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--kind", choices=("simple", "fork"), default="simple")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    importlib.import_module("rq_tasks")  # loaded once, before the forks
    children = []
    parent = os.getpid()
    for _ in range(args.count):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_worker(args.redis_port, args.queue, args.kind, parent)
            except BaseException:  # noqa: BLE001 - a child must never return into the loop
                logging.exception("rq worker failed")
                code = 1
            os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)  # retried by Python across the signal
        failed += os.waitstatus_to_exitcode(status) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
