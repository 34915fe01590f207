"""The asyncio client against a real taskd: gather, wait, wait_for, stream."""

from __future__ import annotations

import asyncio
import unittest

import taskd
import taskd.aio
from tests.harness import ServerMixin, TaskdServer, WorkerThread, echo_worker

DEADLINE = 20.0
SUCCEEDED = taskd.TaskState.Value("TASK_STATE_SUCCEEDED")


class AioClientTest(ServerMixin, unittest.IsolatedAsyncioTestCase):
    aclient: taskd.aio.Client

    async def asyncSetUp(self) -> None:
        self.aclient = taskd.aio.Client(self.server.target)

    async def asyncTearDown(self) -> None:
        await self.aclient.close()

    async def test_gather_and_submit_many(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "a-gather")):
            handles = [await self.aclient.submit("upper", b"g%d" % i, queue="a-gather")
                       for i in range(10)]
            self.assertTrue(all(isinstance(h, asyncio.Future) for h in handles))
            results = await asyncio.wait_for(asyncio.gather(*handles), DEADLINE)
            self.assertEqual(results, [b"G%d" % i for i in range(10)])
            many = await self.aclient.submit_many(
                [{"type": "upper", "payload": b"m%d" % i, "queue": "a-gather"}
                 for i in range(50)])
            results = await asyncio.wait_for(asyncio.gather(*many), DEADLINE)
            self.assertEqual(results, [b"M%d" % i for i in range(50)])
        task = await self.aclient.get(handles[0].id)
        self.assertEqual(task.state, SUCCEEDED)
        listed = await self.aclient.list(queue="a-gather", states=["succeeded"], limit=None)
        self.assertEqual(len(listed), 60)

    async def test_wait_first_completed_and_wait_for(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "a-wait")):
            blocked = await self.aclient.submit("block", queue="a-wait")
            quick = await self.aclient.submit("upper", b"q", queue="a-wait")
            done, pending = await asyncio.wait([blocked, quick], timeout=DEADLINE,
                                               return_when=asyncio.FIRST_COMPLETED)
            self.assertEqual(done, {quick})
            self.assertEqual(pending, {blocked})
            # wait_for's timeout cancels the local wait only.
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(blocked, 0.05)
            self.assertTrue(blocked.cancelled())
            record = await self.aclient.get(blocked.id)
            self.assertFalse(record.cancel_requested)
            self.assertNotIn(record.state, (taskd.TaskState.Value("TASK_STATE_CANCELLED"),))
            fresh = await self.aclient.handle(blocked.id)
            self.assertTrue(await fresh.cancel_task("enough"))
            with self.assertRaises(taskd.TaskCancelled):
                await asyncio.wait_for(fresh, DEADLINE)
            self.assertFalse(await fresh.cancel_task())  # already finished

    async def test_failure_propagates_through_gather(self) -> None:
        worker = taskd.Worker(self.server.target, queues=["a-fail"])
        worker.add_handler("boom", lambda ctx: (_ for _ in ()).throw(taskd.Fatal("boom")))
        worker.add_handler("ok", lambda ctx: b"fine")
        with WorkerThread(worker):
            ok = await self.aclient.submit("ok", queue="a-fail")
            bad = await self.aclient.submit("boom", queue="a-fail")
            outcome = await asyncio.wait_for(
                asyncio.gather(ok, bad, return_exceptions=True), DEADLINE)
        self.assertEqual(outcome[0], b"fine")
        self.assertIsInstance(outcome[1], taskd.TaskFailed)

    async def test_async_for_stream(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "a-stream")):
            handle = await self.aclient.submit("upper", b"s", queue="a-stream")
            await asyncio.wait_for(handle, DEADLINE)
        kinds = []
        async for event in self.aclient.stream([handle.id], from_sequence=1):
            kinds.append(taskd.EventType.Name(event.type))
        self.assertEqual(kinds[0], "EVENT_TYPE_SUBMITTED")
        self.assertEqual(kinds[-1], "EVENT_TYPE_SUCCEEDED")
        self.assertIn("EVENT_TYPE_STARTED", kinds)

    async def test_bad_arguments_and_unavailable(self) -> None:
        with self.assertRaisesRegex(ValueError, "priority"):
            await self.aclient.submit("upper", priority=99)
        with self.assertRaisesRegex(TypeError, "payload"):
            await self.aclient.submit("upper", 3.5)  # type: ignore[arg-type]
        with self.assertRaisesRegex(taskd.InvalidArgument, "id"):
            await self.aclient.get("bad id")
        with self.assertRaises(ValueError):
            async for _ in self.aclient.stream(from_sequence=-1):
                pass
        server = TaskdServer().start()
        other = taskd.aio.Client(server.target, reconnect_timeout=1.0)
        try:
            pending = await other.submit("upper", b"never", queue="a-gone")
            server.stop()
            with self.assertRaises(taskd.Unavailable):
                await other.submit("upper")
            with self.assertRaises(taskd.Unavailable):
                await asyncio.wait_for(pending, DEADLINE)
        finally:
            await other.close()
            server.stop()


if __name__ == "__main__":
    unittest.main()
