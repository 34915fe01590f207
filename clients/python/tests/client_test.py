"""The sync client and its futures against a real taskd on loopback."""

from __future__ import annotations

import concurrent.futures as cf
import threading
import unittest

import grpc

import taskd
from taskd.v1 import taskd_pb2 as pb
from taskd.v1 import taskd_pb2_grpc as pb_grpc
from tests.harness import ServerMixin, TaskdServer, WorkerThread, echo_worker

DEADLINE = 20.0


class ClientTest(ServerMixin, unittest.TestCase):
    def test_submit_result_get_list(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "q-basic")):
            future = self.client.submit("upper", b"hello", queue="q-basic", priority=7,
                                        labels={"who": "test"})
            self.assertIsInstance(future, cf.Future)
            self.assertEqual(future.result(timeout=DEADLINE), b"HELLO")
            self.assertTrue(future.done())
            self.assertIsNone(future.exception())
            self.assertFalse(future.cancel())  # already finished
        task = self.client.get(future.id)
        self.assertEqual(task.state, taskd.TaskState.Value("TASK_STATE_SUCCEEDED"))
        self.assertEqual(task.result, b"HELLO")
        self.assertEqual(task.spec.priority, 7)
        self.assertEqual(dict(task.spec.labels), {"who": "test"})
        listed = self.client.list(queue="q-basic", states=["succeeded"], limit=None)
        self.assertIn(future.id, [t.id for t in listed])
        self.assertEqual(self.client.list(queue="q-basic", states=["failed"]), [])

    def test_failed_task_raises_task_failed_with_error(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "q-fail")):
            future = self.client.submit("fail", queue="q-fail", retries=3)
            with self.assertRaises(taskd.TaskFailed) as caught:
                future.result(timeout=DEADLINE)
        self.assertEqual(caught.exception.code, "bad_input")
        self.assertEqual(caught.exception.error.message, "no good")
        self.assertEqual(caught.exception.task.attempt, 1)  # Fatal: no retry
        self.assertIsInstance(future.exception(), taskd.TaskFailed)

    def test_cancel_pending_future(self) -> None:
        future = self.client.submit("upper", b"x", queue="q-nobody", delay=3600)
        self.assertTrue(future.cancel("not needed"))
        self.assertTrue(future.done())
        self.assertTrue(future.cancelled())
        with self.assertRaises(taskd.TaskCancelled) as caught:
            future.result(timeout=0)
        self.assertIsInstance(caught.exception, cf.CancelledError)
        self.assertEqual(caught.exception.error.message, "not needed")
        again = self.client.cancel(future.id)  # idempotent
        self.assertEqual(again.state, taskd.TaskState.Value("TASK_STATE_CANCELLED"))

    def test_wait_first_completed_all_completed_and_as_completed(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "q-wait")):
            blocked = self.client.submit("block", queue="q-wait")
            quick = [self.client.submit("upper", b"w%d" % i, queue="q-wait")
                     for i in range(3)]
            done, not_done = cf.wait([blocked] + quick, timeout=DEADLINE,
                                     return_when=cf.FIRST_COMPLETED)
            self.assertTrue(done)
            self.assertIn(blocked, not_done)
            done, not_done = cf.wait(quick, timeout=DEADLINE,
                                     return_when=cf.ALL_COMPLETED)
            self.assertEqual(set(done), set(quick))
            self.assertFalse(not_done)
            more = self.client.submit_many([{"type": "upper", "payload": b"a%d" % i,
                                             "queue": "q-wait"} for i in range(20)])
            seen = [f.result() for f in cf.as_completed(more, timeout=DEADLINE)]
            self.assertEqual(sorted(seen), sorted(b"A%d" % i for i in range(20)))
            self.assertTrue(blocked.cancel())
            with self.assertRaises(taskd.TaskCancelled):
                blocked.result(timeout=DEADLINE)

    def test_done_callback_runs_once(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "q-cb")):
            called = threading.Event()
            results: list = []
            future = self.client.submit("upper", b"cb", queue="q-cb")
            future.add_done_callback(lambda f: (results.append(f.result()), called.set()))
            self.assertTrue(called.wait(DEADLINE))
            self.assertEqual(results, [b"CB"])

    def test_submit_many_is_atomic_and_names_the_index(self) -> None:
        before = len(self.client.list(queue="q-batch", limit=None))
        with self.assertRaises(taskd.InvalidArgument) as caught:
            self.client.submit_many([("upper", b"ok"), ("bad type!", b"")])
        self.assertIn("tasks[1]", str(caught.exception))
        spec = taskd.task_spec("upper", b"x", queue="q-batch", timeout=0)
        spec.retry.multiplier = 0.5  # rejected by the server, not locally
        with self.assertRaises(taskd.InvalidArgument) as caught:
            self.client.submit_many([taskd.task_spec("upper", queue="q-batch"), spec])
        self.assertIn("1", str(caught.exception))
        self.assertEqual(len(self.client.list(queue="q-batch", limit=None)), before)
        futures = self.client.submit_many([taskd.task_spec("upper", b"%d" % i, queue="q-batch")
                                           for i in range(5)])
        self.assertEqual(len({f.id for f in futures}), 5)
        self.assertEqual(len(self.client.list(queue="q-batch", limit=None)), before + 5)

    def test_idempotency_key_and_dependencies(self) -> None:
        first = self.client.submit("upper", b"k", queue="q-dep", key="order-1")
        second = self.client.submit("upper", b"k", queue="q-dep", key="order-1")
        self.assertEqual(first.id, second.id)
        self.assertTrue(second.deduplicated)
        self.assertFalse(first.deduplicated)
        child = self.client.submit("upper", b"child", queue="q-dep", depends_on=[first])
        self.assertEqual(list(child.task.spec.depends_on), [first.id])
        first.cancel()
        with self.assertRaises(taskd.TaskCancelled) as caught:
            child.result(timeout=DEADLINE)
        self.assertEqual(caught.exception.code, "dependency_failed")

    def test_future_for_existing_task(self) -> None:
        with WorkerThread(echo_worker(self.server.target, "q-existing")):
            done = self.client.submit("upper", b"old", queue="q-existing")
            done.result(timeout=DEADLINE)
        with taskd.Client(self.server.target) as other:
            again = other.future(done.id)
            self.assertEqual(again.result(timeout=DEADLINE), b"OLD")
            with self.assertRaises(taskd.NotFound):
                other.future("01ARZ3NDEKTSV4RRFFQ69G5FAV")

    def test_stream_sees_progress(self) -> None:
        worker = taskd.Worker(self.server.target, queues=["q-progress"])

        @worker.handler("steps")
        def steps(ctx: taskd.TaskContext) -> bytes:
            ctx.progress(0.25, "a quarter")
            ctx.progress(0.75, "three quarters")
            return b"done"

        with WorkerThread(worker):
            future = self.client.submit("steps", queue="q-progress")
            self.assertEqual(future.result(timeout=DEADLINE), b"done")
        # Replay from the first retained event: deterministic, no race with
        # the stream's start.
        seen = []
        for event in self.client.stream([future], from_sequence=1):
            if event.type == taskd.EventType.Value("EVENT_TYPE_PROGRESS"):
                seen.append((event.task.progress.percent, event.task.progress.message))
        self.assertEqual(seen, [(25, "a quarter"), (75, "three quarters")])

    def test_bad_arguments_name_the_argument(self) -> None:
        cases = [
            (dict(priority=10), ValueError, "priority"),
            (dict(priority="high"), TypeError, "priority"),
            (dict(delay=-1), ValueError, "delay"),
            (dict(timeout="soon"), TypeError, "timeout"),
            (dict(queue="bad queue"), ValueError, "queue"),
            (dict(retries=-1), ValueError, "retries"),
            (dict(depends_on="abc"), TypeError, "depends_on"),
            (dict(labels={"a": 1}), TypeError, "labels"),
            (dict(key=""), ValueError, "key"),
        ]
        for kwargs, error, name in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaises(error) as caught:
                    self.client.submit("upper", b"", **kwargs)  # type: ignore[arg-type]
                self.assertIn(name, str(caught.exception))
        with self.assertRaisesRegex(TypeError, "payload"):
            self.client.submit("upper", 42)  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "type"):
            self.client.submit("no spaces allowed")
        with self.assertRaisesRegex(ValueError, "tasks"):
            self.client.submit_many([])
        with self.assertRaisesRegex(taskd.InvalidArgument, "id"):
            self.client.get("not-an-id")
        with self.assertRaisesRegex(ValueError, "states"):
            self.client.list(states=["sleeping"])
        too_big = b"x" * (2 << 20)  # over the server's 1 MiB payload limit
        with self.assertRaises(taskd.TaskdError) as caught:
            self.client.submit("upper", too_big)
        self.assertNotIsInstance(caught.exception, grpc.RpcError)

    def test_ten_thousand_outstanding_futures_cost_bounded_threads(self) -> None:
        threads_before = threading.active_count()
        with taskd.Client(self.server.target) as client:
            futures = []
            for batch in range(10):
                futures += client.submit_many(
                    [taskd.task_spec("upper", b"%d" % i, queue="q-many") for i in range(1000)])
            self.assertEqual(len(futures), 10_000)
            # One stream, one supervisor, gRPC's own: not one per future.
            self.assertLessEqual(threading.active_count() - threads_before, 6)
            # Complete all of them at once from the server side: a purge.
            with grpc.insecure_channel(self.server.target) as channel:
                purged = pb_grpc.QueueServiceStub(channel).PurgeQueue(
                    pb.PurgeQueueRequest(queue="q-many", reason="test"), timeout=DEADLINE)
            self.assertEqual(purged.purged, 10_000)
            done, not_done = cf.wait(futures, timeout=60)
            self.assertFalse(not_done)
            self.assertTrue(all(f.cancelled() for f in futures))
            self.assertLessEqual(threading.active_count() - threads_before, 6)


class UnavailableTest(unittest.TestCase):
    def test_server_gone_raises_unavailable(self) -> None:
        server = TaskdServer().start()
        client = taskd.Client(server.target, reconnect_timeout=1.0)
        try:
            pending = client.submit("upper", b"never run", queue="q-gone")
            server.stop()
            with self.assertRaises(taskd.Unavailable):
                client.submit("upper", b"x")
            with self.assertRaises(taskd.Unavailable):
                client.get(pending.id)
            with self.assertRaises(taskd.Unavailable):
                client.cancel(pending.id)
            # The outstanding future fails once the outage outlasts
            # reconnect_timeout, instead of hanging.
            self.assertIsInstance(pending.exception(timeout=DEADLINE), taskd.Unavailable)
        finally:
            client.close()
            server.stop()

    def test_closed_client(self) -> None:
        with TaskdServer() as server:
            client = taskd.Client(server.target)
            future = client.submit("upper", b"x", queue="q-closed")
            client.close()
            self.assertIsInstance(future.exception(timeout=DEADLINE), taskd.TaskdError)
            with self.assertRaises(taskd.TaskdError):
                client.submit("upper", b"y")


if __name__ == "__main__":
    unittest.main()
