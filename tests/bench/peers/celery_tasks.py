"""The Celery app of `make bench-peers`: one no-op task on a Redis broker and
Redis result backend (BENCH_REDIS_URL). The driver (celery_peer.py) and the
worker it starts (`celery -A celery_tasks worker`) both import it."""

import os

from celery import Celery

app = Celery("bench_peers", broker=os.environ["BENCH_REDIS_URL"],
             backend=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    worker_hijack_root_logger=False,
    # The 64-in-flight client shape uses 64 threads; each needs a producer
    # connection of its own instead of queueing for Celery's default 10.
    broker_pool_limit=int(os.environ.get("BENCH_POOL_LIMIT", "10")),
)


@app.task(name="noop")
def noop(x: int) -> int:
    return x
