"""A Python worker: plain and async handlers, progress, cancellation.

    cd examples/python && python3 -m taskd.worker worker_progress:worker

(SIGTERM or Ctrl-C stops it gracefully.) Serves three task types on the
"default" queue: "upper" upper-cases its payload, "resize" pretends to
resize an image in ten steps reporting progress, "sleep" runs until it is
cancelled.
"""

import os

import taskd

TARGET = os.environ.get("TASKD_TARGET", "127.0.0.1:50051")

worker = taskd.Worker(TARGET, queues=["default"], concurrency=4)


@worker.handler("upper")
def upper(ctx: taskd.TaskContext) -> bytes:
    return ctx.payload.upper()


@worker.handler("resize")
def resize(ctx: taskd.TaskContext) -> bytes:
    steps = 10
    for step in range(1, steps + 1):
        # Stands in for real work; returns at once if the task is cancelled.
        if ctx.cancelled.wait(0.05):
            raise taskd.Fatal(f"stopped: {ctx.cancel_reason}")
        ctx.progress(step / steps, f"step {step} of {steps}")
    return b"resized " + ctx.payload


@worker.handler("sleep")
async def sleep(ctx: taskd.TaskContext) -> bytes:
    await ctx.wait_cancelled()  # async handlers run on the worker's event loop
    return b"woke up"
