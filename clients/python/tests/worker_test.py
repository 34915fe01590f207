"""The worker SDK against a real taskd: handlers, cancel, timeouts, crashes."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import unittest
from typing import List, Optional

import taskd
from tests.harness import ServerMixin, WorkerThread, spawn_python

DEADLINE = 20.0
STARTED = taskd.EventType.Value("EVENT_TYPE_STARTED")
RETRYING = taskd.EventType.Value("EVENT_TYPE_RETRYING")
PROGRESS = taskd.EventType.Value("EVENT_TYPE_PROGRESS")


def first_event(client: taskd.Client, future: taskd.TaskFuture, kind: int,
                timeout: float = DEADLINE) -> Optional[taskd.TaskEvent]:
    """The task's first event of ``kind`` (replayed from the start), or None
    when none came within ``timeout``."""
    stream = client.stream([future], from_sequence=1)
    timer = threading.Timer(timeout, stream.cancel)
    timer.start()
    try:
        for event in stream:
            if event.type == kind:
                return event
        return None
    finally:
        timer.cancel()
        stream.cancel()


class WireTextTest(unittest.TestCase):
    """What the SDK sends is text the server can parse, at its sizes."""

    def test_invalid_text_becomes_valid_utf8_cut_on_a_boundary(self) -> None:
        from taskd.worker import wire_text
        for text in ["ok", "caf\u00e9", "stderr \udcff\udcfe tail",
                     "\u00e9" * 3000, "x" * 4095 + "\u00e9"]:
            out = wire_text(text, 4096)
            data = out.encode("utf-8")  # raises on a lone surrogate
            self.assertLessEqual(len(data), 4096)
        self.assertEqual(wire_text("x" * 4095 + "\u00e9", 4096), "x" * 4095)
        self.assertIn("\ufffd", wire_text("bad \udcff", 100))


class WorkerTest(ServerMixin, unittest.TestCase):
    def worker(self, queue: str, **options: object) -> taskd.Worker:
        return taskd.Worker(self.server.target, queues=[queue], **options)  # type: ignore[arg-type]

    def test_cancel_running_handler_sets_cancelled(self) -> None:
        worker = self.worker("q-cancel", concurrency=2)
        started = threading.Event()
        saw_cancel: List[str] = []

        @worker.handler("hold")
        def hold(ctx: taskd.TaskContext) -> bytes:
            started.set()
            if ctx.cancelled.wait(DEADLINE):
                saw_cancel.append(ctx.cancel_reason)
            return b"ignored after a cancel"

        with WorkerThread(worker):
            future = self.client.submit("hold", queue="q-cancel")
            self.assertTrue(started.wait(DEADLINE))
            self.assertTrue(future.running() or future.task.state ==
                            taskd.TaskState.Value("TASK_STATE_PENDING"))
            self.assertTrue(future.cancel("stop it"))
            with self.assertRaises(taskd.TaskCancelled):
                future.result(timeout=DEADLINE)
        self.assertEqual(saw_cancel, ["stop it"])
        self.assertEqual(self.client.get(future.id).state,
                         taskd.TaskState.Value("TASK_STATE_CANCELLED"))

    def test_async_handler_cancel_and_progress(self) -> None:
        worker = self.worker("q-async")
        started = threading.Event()

        @worker.handler("wait")
        async def wait(ctx: taskd.TaskContext) -> bytes:
            ctx.progress(0.5, "waiting")
            started.set()
            await asyncio.wait_for(ctx.wait_cancelled(), DEADLINE)
            return b""

        with WorkerThread(worker):
            future = self.client.submit("wait", queue="q-async")
            self.assertTrue(started.wait(DEADLINE))
            progress = first_event(self.client, future,
                                   taskd.EventType.Value("EVENT_TYPE_PROGRESS"))
            assert progress is not None
            self.assertEqual(progress.task.progress.percent, 50)
            future.cancel()
            self.assertIsInstance(future.exception(timeout=DEADLINE), taskd.TaskCancelled)

    def test_timeout_notice_sets_cancelled(self) -> None:
        worker = self.worker("q-timeout")
        fired = threading.Event()

        @worker.handler("slow")
        def slow(ctx: taskd.TaskContext) -> bytes:
            if ctx.cancelled.wait(DEADLINE):
                fired.set()
            return b"late"

        with WorkerThread(worker):
            future = self.client.submit("slow", queue="q-timeout", timeout=0.3, retries=0)
            with self.assertRaises(taskd.TaskFailed) as caught:
                future.result(timeout=DEADLINE)
            self.assertTrue(fired.wait(DEADLINE))
        self.assertEqual(caught.exception.code, "timeout")

    def test_retryable_retries_and_fatal_does_not(self) -> None:
        worker = self.worker("q-retry", concurrency=2)
        attempts: List[int] = []

        @worker.handler("flaky")
        def flaky(ctx: taskd.TaskContext) -> str:
            attempts.append(ctx.attempt)
            if ctx.attempt == 1:
                raise taskd.Retryable("try again", code="flaky")
            return "ok on attempt %d" % ctx.attempt

        @worker.handler("broken")
        def broken(ctx: taskd.TaskContext) -> bytes:
            raise taskd.Fatal("cannot ever work", code="broken")

        @worker.handler("bad_result")
        def bad_result(ctx: taskd.TaskContext) -> int:
            return 42

        with WorkerThread(worker):
            flaky_future = self.client.submit("flaky", queue="q-retry", retries=2)
            broken_future = self.client.submit("broken", queue="q-retry", retries=2)
            bad_future = self.client.submit("bad_result", queue="q-retry", retries=2)
            self.assertEqual(flaky_future.result(timeout=DEADLINE), b"ok on attempt 2")
            with self.assertRaises(taskd.TaskFailed) as caught:
                broken_future.result(timeout=DEADLINE)
            self.assertEqual(caught.exception.code, "broken")
            self.assertEqual(caught.exception.task.attempt, 1)
            with self.assertRaises(taskd.TaskFailed) as caught:
                bad_future.result(timeout=DEADLINE)
            self.assertEqual(caught.exception.code, "bad_result")
        self.assertEqual(attempts, [1, 2])

    def test_sigkill_mid_task_is_retried_on_another_worker(self) -> None:
        child = spawn_python(["-m", "taskd.worker", "fixture_worker:worker"],
                             self.server.target, stderr=subprocess.DEVNULL)
        try:
            future = self.client.submit("hold", queue="q-child", retries=2)
            started = first_event(self.client, future, STARTED)
            self.assertIsNotNone(started, "the child worker never started the task")
            assert started is not None
            child.send_signal(signal.SIGKILL)
            child.wait(DEADLINE)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(DEADLINE)
        rescuer = self.worker("q-child")
        rescuer.add_handler("hold", lambda ctx: b"rescued")
        with WorkerThread(rescuer):
            self.assertEqual(future.result(timeout=DEADLINE), b"rescued")
        self.assertEqual(future.task.attempt, 2)
        self.assertEqual(future.task.worker_id, rescuer.worker_id)
        self.assertNotEqual(started.task.worker_id, rescuer.worker_id)
        retrying = first_event(self.client, future, RETRYING)
        assert retrying is not None
        self.assertEqual(retrying.task.error.code, "lease_expired")

    def test_sigterm_stops_gracefully_and_fails_retryable(self) -> None:
        child = spawn_python(["-m", "taskd.worker", "fixture_worker:worker"],
                             self.server.target, stderr=subprocess.PIPE, text=True)
        try:
            future = self.client.submit("hold", queue="q-child", retries=2)
            # Progress, not STARTED: the handler itself must be running, or
            # the stop would hand back an assignment it never began.
            self.assertIsNotNone(first_event(self.client, future, PROGRESS))
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=DEADLINE)
            self.assertEqual(child.returncode, 0, err)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(DEADLINE)
        retrying = first_event(self.client, future, RETRYING)
        self.assertIsNotNone(retrying)
        assert retrying is not None
        self.assertEqual(retrying.task.error.code, "worker_stopped")
        self.assertTrue(retrying.task.error.retryable)
        future.cancel()

    def test_bad_worker_arguments(self) -> None:
        with self.assertRaisesRegex(ValueError, "concurrency"):
            taskd.Worker(self.server.target, concurrency=0)
        with self.assertRaisesRegex(TypeError, "queues"):
            taskd.Worker(self.server.target, queues="images")  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "queues"):
            taskd.Worker(self.server.target, queues=["no spaces"])
        worker = taskd.Worker(self.server.target)
        with self.assertRaisesRegex(ValueError, "task_type"):
            worker.handler("bad name!")
        worker.add_handler("one", lambda ctx: b"")
        with self.assertRaisesRegex(ValueError, "already"):
            worker.add_handler("one", lambda ctx: b"")
        with self.assertRaisesRegex(TypeError, "fn"):
            worker.add_handler("two", "not callable")  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "handlers"):
            taskd.Worker(self.server.target).run()

        ctx_errors: List[BaseException] = []
        checked = threading.Event()
        probe = self.worker("q-args")

        @probe.handler("probe")
        def probe_handler(ctx: taskd.TaskContext) -> bytes:
            for bad in (1.5, -0.1, "half"):
                try:
                    ctx.progress(bad)  # type: ignore[arg-type]
                except (TypeError, ValueError) as exc:
                    ctx_errors.append(exc)
            checked.set()
            return b""

        with WorkerThread(probe):
            self.client.submit("probe", queue="q-args").result(timeout=DEADLINE)
        self.assertTrue(checked.is_set())
        self.assertEqual(len(ctx_errors), 3)
        self.assertTrue(all("fraction" in str(e) for e in ctx_errors))


if __name__ == "__main__":
    unittest.main()
