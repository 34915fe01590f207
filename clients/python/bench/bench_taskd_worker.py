"""The taskd side of bench_vs_celery: the same no-op task, as a taskd.App."""

import os

import taskd

app = taskd.App(os.environ.get("TASKD_TARGET", "127.0.0.1:50051"))


@app.task(name="noop")
def noop(x: int) -> int:
    return x
