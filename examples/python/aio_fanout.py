"""Fan out and fan in with asyncio: gather, wait, wait_for.

    python3 examples/python/aio_fanout.py     (with worker_progress running)
"""

import asyncio
import os

import taskd
import taskd.aio

TARGET = os.environ.get("TASKD_TARGET", "127.0.0.1:50051")


async def main() -> None:
    async with taskd.aio.Client(TARGET) as client:
        # Fan out: 20 tasks, one atomic SubmitTasks call; fan in with gather.
        handles = await client.submit_many([("upper", f"item {i}") for i in range(20)])
        results = await asyncio.gather(*handles)
        print("gathered:", len(results), results[0], results[-1])

        # Whichever finishes first.
        slow = await client.submit("sleep")
        quick = await client.submit("resize", b"thumb.png")
        done, pending = await asyncio.wait([slow, quick], return_when=asyncio.FIRST_COMPLETED)
        print("first:", done.pop().result(), "| still pending:", len(pending))

        # A local timeout stops waiting; the task keeps running...
        try:
            await asyncio.wait_for(slow, 0.2)
        except asyncio.TimeoutError:
            print("wait_for timed out; task is", taskd.TaskState.Name((await client.get(slow.id)).state))
        # ...until it is cancelled on the server.
        handle = await client.handle(slow.id)
        await handle.cancel_task("done waiting")
        try:
            await handle
        except taskd.TaskCancelled as cancelled:
            print("cancelled:", cancelled.code)


asyncio.run(main())
