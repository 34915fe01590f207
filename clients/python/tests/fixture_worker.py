"""A worker module for tests that run ``python3 -m taskd.worker`` as a child.

"hold" reports progress 0 ("holding"), then runs until its task is cancelled
(or the worker stops past its grace).
"""

import os

import taskd

worker = taskd.Worker(os.environ["TASKD_TARGET"], queues=["q-child"], concurrency=2,
                      grace=float(os.environ.get("FIXTURE_GRACE", "0.2")),
                      heartbeat_interval=1.0)


@worker.handler("hold")
def hold(ctx: taskd.TaskContext) -> bytes:
    ctx.progress(0.0, "holding")  # tells the test the handler is running
    ctx.cancelled.wait(120)
    return b"from the child"
