"""The Python side of the cross-language test, as a worker (package taskd).

    TASKD_TARGET=host:port python3 -m taskd.worker py_worker:worker

Serves queue xl-py: `xl.upper` upper-cases its payload; `xl.block` runs
until cancelled, printing "started ID" and "aborted ID REASON" lines.
"""

import os
import sys

import taskd

worker = taskd.Worker(os.environ["TASKD_TARGET"], queues=["xl-py"], concurrency=2)


@worker.handler("xl.upper")
def upper(ctx: taskd.TaskContext) -> bytes:
    return ctx.payload.upper() + f" (python attempt {ctx.attempt})".encode()


@worker.handler("xl.block")
def block(ctx: taskd.TaskContext) -> bytes:
    print(f"started {ctx.id}", flush=True)
    if not ctx.cancelled.wait(timeout=60):
        raise taskd.Fatal("never cancelled")
    print(f"aborted {ctx.id} {ctx.cancel_reason}", flush=True)
    sys.stdout.flush()
    raise taskd.Fatal("stopped on cancel")
