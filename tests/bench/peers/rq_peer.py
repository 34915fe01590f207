"""RQ's side of `make bench-peers` (run by bench_peers.py; see peer_common.py
for the protocol). Submits with Queue.enqueue (one at a time; 64 threads each
one call at a time on one pooled redis-py client) and Queue.enqueue_many
(batches of 1,000, one pipeline each); then starts --concurrency RQ worker
processes (RQ has no concurrency inside a worker) for the end-to-end and
round-trip figures. RQ cannot push a result to the client: the client polls
each job's result stream (rq:results:<id>, the one Job.latest_result reads),
1,000 jobs per pipelined poll, pausing POLL_S only when a poll found nothing."""

from __future__ import annotations

import os
import sys
import time
from typing import Dict, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import peer_common as pc  # noqa: E402

PYTHON = "/usr/bin/python3"
POLL_S = 0.0005
POLL_BATCH = 1000


def main() -> int:
    args = pc.driver_args(__doc__.split("\n\n")[0])
    import rq
    from redis import Redis
    from rq import Queue, Worker
    from rq.results import Result
    from rq_tasks import noop
    kind = args.option or "simple"
    connection = Redis(host="127.0.0.1", port=args.redis_port)
    limit = args.phase_limit_s
    meter = pc.CpuMeter(args.redis_pid)
    queues: Dict[str, Queue] = {}

    def queue_named(name: str) -> Queue:
        queue = queues.get(name)
        return queue if queue is not None else queues.setdefault(
            name, Queue(name, connection=connection))

    shapes = pc.ClientShapes(
        args,
        lambda queue, i: queue_named(queue).enqueue(noop, i).id,
        lambda queue, part: [job.id for job in queue_named(queue).enqueue_many(
            [Queue.prepare_data(noop, (i,)) for i in part])],
        {"serial": "Queue.enqueue one at a time",
         "in_flight": f"{args.in_flight} threads, each Queue.enqueue one at a time",
         "batch": f"Queue.enqueue_many of {args.batch} (one pipeline)"})
    shapes.emit_info(
        "rq", rq.__version__,
        f"{args.concurrency} RQ worker processes "
        f"({'SimpleWorker' if kind == 'simple' else 'Worker, a fork per job'})",
        f"client polls rq:results:<id> (pipelined, {POLL_S * 1000:g} ms pause when "
        "nothing is new)")

    def await_results(ids: Sequence[str], deadline: float) -> int:
        """How many of ids have a successful result by the deadline."""
        pending = list(ids)
        done = 0
        while pending and time.monotonic() < deadline:
            front = pending[:POLL_BATCH]
            pipe = connection.pipeline(transaction=False)
            for job_id in front:
                pipe.xrevrange(Result.get_key(job_id), "+", "-", count=1)
            left = []
            for job_id, reply in zip(front, pipe.execute()):
                if not reply:
                    left.append(job_id)
                    continue
                result_id, payload = reply[0]
                result = Result.restore(job_id, result_id.decode(), payload,
                                        connection=connection)
                if result.type != Result.Type.SUCCESSFUL:
                    raise RuntimeError(f"rq job {job_id}: {result.exc_string}")
                done += 1
            if len(left) == len(front):
                time.sleep(POLL_S)  # result poll, bounded by the deadline
            pending = left + pending[POLL_BATCH:]
        return done

    shapes.run_submit_figures(meter)

    e2e = queue_named("e2e")
    workers = pc.spawn(
        [PYTHON, os.path.join(HERE, "rq_workers.py"), f"--redis_port={args.redis_port}",
         "--queue=e2e", f"--count={args.concurrency}", f"--kind={kind}"],
        cwd=HERE, stdout=sys.stderr, stderr=sys.stderr)
    try:
        meter.worker_pids = [workers.pid]
        deadline = time.monotonic() + 60
        while Worker.count(queue=e2e) < args.concurrency:
            if time.monotonic() > deadline or workers.poll() is not None:
                raise RuntimeError("rq workers did not start")
            time.sleep(0.05)  # readiness poll, bounded by the deadline
        if await_results([e2e.enqueue(noop, 0).id], time.monotonic() + 60) != 1:
            raise RuntimeError("rq workers ran no job")

        shapes.run_end_to_end_figures(meter, "e2e", "poll every result",
                                      await_results)  # type: ignore[arg-type]

        def roundtrip(left: float) -> None:
            if await_results([e2e.enqueue(noop, 1).id], time.monotonic() + left) != 1:
                raise RuntimeError("rq round trip timed out")
        pc.emit_roundtrips(meter, "Queue.enqueue, then poll its result", args.roundtrips,
                           limit, roundtrip)
    finally:
        pc.stop(workers, grace_s=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
