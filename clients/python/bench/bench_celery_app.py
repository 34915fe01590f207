"""The Celery side of bench_vs_celery: one no-op task on a Redis broker."""

import os

from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"],
             backend=os.environ["BENCH_REDIS_URL"])
app.conf.update(task_serializer="json", result_serializer="json",
                accept_content=["json"], worker_hijack_root_logger=False)


@app.task(name="noop")
def noop(x: int) -> int:
    return x
