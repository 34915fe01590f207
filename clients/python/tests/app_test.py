"""The Celery-style layer (taskd.App) against a real taskd."""

from __future__ import annotations

import asyncio
import datetime
import json
import unittest

import taskd
from tests.harness import ServerMixin, WorkerThread

DEADLINE = 20.0


class AppTest(ServerMixin, unittest.TestCase):
    def setUp(self) -> None:
        self.app = taskd.App(self.server.target)
        app = self.app

        @app.task(queue="math")
        def add(x: int, y: int) -> int:
            return x + y

        @app.task(name="math.div", queue="math", retries=0)
        def div(x: float, y: float) -> float:
            return x / y

        @app.task(queue="math")
        async def greet(name: str, punctuation: str = "!") -> str:
            await asyncio.sleep(0)
            return f"hello {name}{punctuation}"

        self.add, self.div, self.greet = add, div, greet

    def tearDown(self) -> None:
        self.app.close()

    def test_delay_apply_async_and_worker(self) -> None:
        self.assertEqual(self.add(1, 2), 3)  # a plain call runs locally
        self.assertTrue(self.add.name.startswith("tests.app_test."), self.add.name)
        self.assertTrue(self.add.name.endswith(".add"), self.add.name)
        with WorkerThread(self.app.worker(concurrency=2)):
            self.assertEqual(self.add.delay(2, 3).result(timeout=5), 5)
            self.assertEqual(self.greet.delay("taskd", punctuation="?").get(timeout=5),
                             "hello taskd?")
            later = self.add.apply_async((20, 22), countdown=0.2, priority=9)
            self.assertEqual(later.task.spec.priority, 9)
            self.assertEqual(later.task.state, taskd.TaskState.Value("TASK_STATE_SCHEDULED"))
            self.assertEqual(later.result(timeout=DEADLINE), 42)
            at = datetime.datetime.now(datetime.timezone.utc)
            self.assertEqual(self.add.apply_async(kwargs={"x": 1, "y": 1}, eta=at)
                             .result(timeout=DEADLINE), 2)
            futures = self.app.client.submit_many([self.add.s(i, i) for i in range(10)],
                                                  decode=json.loads)
            self.assertEqual([f.result(timeout=DEADLINE) for f in futures],
                             [2 * i for i in range(10)])
            with self.assertRaises(taskd.TaskFailed) as caught:
                self.div.delay(1, 0).result(timeout=DEADLINE)
            self.assertEqual(caught.exception.code, "handler_exception")
            self.assertIn("ZeroDivisionError", caught.exception.error.message)
        record = self.app.client.get(later.id)
        self.assertEqual(json.loads(record.spec.payload), {"args": [20, 22], "kwargs": {}})
        self.assertEqual(record.spec.queue, "math")

    def test_bad_arguments(self) -> None:
        with self.assertRaisesRegex(TypeError, r"args\[0\]"):
            self.add.delay(object(), 1)
        with self.assertRaisesRegex(TypeError, "kwargs"):
            self.add.apply_async((1,), kwargs={"y": {1, 2}})
        with self.assertRaisesRegex(TypeError, "args"):
            self.add.apply_async("12")  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "priority"):
            self.add.apply_async((1, 2), priority=11)
        with self.assertRaisesRegex(ValueError, "countdown"):
            self.add.apply_async((1, 2), countdown=-5)
        with self.assertRaisesRegex(ValueError, "name"):
            self.app.task(name="add")(lambda: None) and self.app.task(name="add")(lambda: None)
        with self.assertRaisesRegex(ValueError, "tasks"):
            taskd.App(self.server.target).worker()


if __name__ == "__main__":
    unittest.main()
