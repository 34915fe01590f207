"""Runs examples/python as a new user would, against a real taskd."""

from __future__ import annotations

import signal
import subprocess
import unittest

from tests.harness import EXAMPLES, TaskdServer, run_python, spawn_python

DEADLINE = 60.0


class ExamplesTest(unittest.TestCase):
    def run_with_worker(self, worker_spec: str, script: str) -> str:
        """Runs ``script`` while ``python3 -m taskd.worker worker_spec`` serves;
        returns the script's output. The worker must stop cleanly on SIGTERM."""
        with TaskdServer() as server:
            worker = spawn_python(["-m", "taskd.worker", worker_spec], server.target,
                                  cwd=EXAMPLES, stderr=subprocess.PIPE, text=True)
            try:
                done = run_python([script], server.target, timeout=DEADLINE)
                self.assertEqual(done.returncode, 0, done.stderr)
            finally:
                worker.send_signal(signal.SIGTERM)
                _, err = worker.communicate(timeout=DEADLINE)
            self.assertEqual(worker.returncode, 0, err)
            return done.stdout

    def test_sync_client_example(self) -> None:
        out = self.run_with_worker("worker_progress:worker", f"{EXAMPLES}/sync_client.py")
        self.assertIn("result: b'HELLO TASKD'", out)
        self.assertIn("first done: b'resized photo-", out)
        self.assertEqual(out.count("done: b'resized photo-"), 5)  # first + 4 as_completed
        self.assertIn("watched: b'resized big.png'", out)
        self.assertIn("cancelled: cancelled not needed", out)

    def test_asyncio_example(self) -> None:
        out = self.run_with_worker("worker_progress:worker", f"{EXAMPLES}/aio_fanout.py")
        self.assertIn("gathered: 20 b'ITEM 0' b'ITEM 19'", out)
        self.assertIn("first: b'resized thumb.png' | still pending: 1", out)
        self.assertIn("wait_for timed out; task is TASK_STATE_", out)
        self.assertIn("cancelled: cancelled", out)

    def test_celery_style_example(self) -> None:
        out = self.run_with_worker("celery_app:app", f"{EXAMPLES}/celery_app.py")
        self.assertIn("add.delay(2, 3) = 5", out)
        self.assertIn("apply_async countdown=1 -> 42", out)
        self.assertIn("squares: [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]", out)


if __name__ == "__main__":
    unittest.main()
