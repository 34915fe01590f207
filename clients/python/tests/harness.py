"""A real taskd server on a free loopback port, for the Python tests.

The binary is $TASKD_BIN, else Bazel's runfile services/taskd, else the
workspace's bazel-bin/services/taskd. Readiness is the server's own
"serving on ... (port N)" line, so no port is guessed and nothing polls.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import threading
import time
from typing import List, Optional

import taskd

_HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
PACKAGE_ROOT = os.path.dirname(_HERE)                       # clients/python
REPO_ROOT = os.path.dirname(os.path.dirname(PACKAGE_ROOT))  # the workspace
EXAMPLES = os.path.join(REPO_ROOT, "examples", "python")


def taskd_binary() -> str:
    """Path of the taskd server binary to test against."""
    for candidate in (os.environ.get("TASKD_BIN"),
                      os.path.join(REPO_ROOT, "services", "taskd"),
                      os.path.join(REPO_ROOT, "bazel-bin", "services", "taskd")):
        if candidate and os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
    raise RuntimeError("taskd binary not found: build //services:taskd or set TASKD_BIN")


_METRICS_FLAG: Optional[bool] = None


def _has_metrics_flag(binary: str) -> bool:
    # A server with a metrics port must not take the fixed default port, or
    # test servers running side by side would clash.
    global _METRICS_FLAG
    if _METRICS_FLAG is None:
        out = subprocess.run([binary, "--helpfull"], capture_output=True, text=True,
                             timeout=30)
        _METRICS_FLAG = "metrics_listen" in (out.stdout + out.stderr)
    return _METRICS_FLAG


class TaskdServer:
    """One taskd process (``--durability=memory``) on 127.0.0.1:<free port>."""

    def __init__(self, *extra_args: str) -> None:
        self.extra_args: List[str] = list(extra_args)
        self.process: Optional[subprocess.Popen] = None
        self.port = 0
        self.log: List[str] = []
        self._drainer: Optional[threading.Thread] = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "TaskdServer":
        binary = taskd_binary()
        args = [binary, "--listen=127.0.0.1:0", "--durability=memory", "--threads=1"]
        if _has_metrics_flag(binary):
            args.append("--metrics-listen=127.0.0.1:0")
        self.process = subprocess.Popen(args + self.extra_args, stderr=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, bufsize=0)
        assert self.process.stderr is not None
        fd = self.process.stderr.fileno()
        deadline = time.monotonic() + timeout
        pending = b""
        while not self.port:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RuntimeError("taskd did not start: " + "".join(self.log))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)  # unbuffered: select stays truthful
            if not chunk:
                raise RuntimeError("taskd exited: " + "".join(self.log) + pending.decode())
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace") + "\n"
                self.log.append(line)
                found = re.search(r"serving on .*\(port (\d+)\)", line)
                if found:
                    self.port = int(found.group(1))
        if pending:
            self.log.append(pending.decode("utf-8", "replace"))
        self._drainer = threading.Thread(target=self._drain, args=(fd,), daemon=True)
        self._drainer.start()
        return self

    def _drain(self, fd: int) -> None:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            self.log.append(chunk.decode("utf-8", "replace"))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; waits for the exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self._drainer is not None:
            self._drainer.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> "TaskdServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def python_env(target: str) -> dict:
    """Environment for a child Python process using this package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [PACKAGE_ROOT, EXAMPLES, _HERE] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["TASKD_TARGET"] = target
    env.pop("PYTHONHOME", None)
    return env


def spawn_python(args: List[str], target: str, **kwargs: object) -> subprocess.Popen:
    """Starts ``/usr/bin/python3 args...`` with the package on its path."""
    return subprocess.Popen([PYTHON] + args, env=python_env(target), **kwargs)  # type: ignore[call-overload]


def run_python(args: List[str], target: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs ``/usr/bin/python3 args...`` to completion, capturing its output."""
    return subprocess.run([PYTHON] + args, env=python_env(target), capture_output=True,
                          text=True, timeout=timeout)


__all__ = ["EXAMPLES", "PYTHON", "ServerMixin", "TaskdServer", "WorkerThread", "echo_worker",
           "run_python", "spawn_python"]


class ServerMixin:
    """Starts one TaskdServer (``cls.server``) and a sync client of it
    (``cls.client``) for a TestCase class."""

    server: TaskdServer
    client: "taskd.Client"

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cls.server = TaskdServer().start()
        cls.client = taskd.Client(cls.server.target)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()
        cls.server.stop()
        super().tearDownClass()  # type: ignore[misc]


def echo_worker(target: str, queue: str, deadline: float = 20.0) -> "taskd.Worker":
    """A worker for ``queue``: "upper" upper-cases its payload (async),
    "fail" fails for good, "block" runs until cancelled."""
    worker = taskd.Worker(target, queues=[queue], concurrency=4)

    @worker.handler("upper")
    async def upper(ctx: taskd.TaskContext) -> bytes:
        return ctx.payload.upper()

    @worker.handler("fail")
    def fail(ctx: taskd.TaskContext) -> bytes:
        raise taskd.Fatal("no good", code="bad_input")

    @worker.handler("block")
    def block(ctx: taskd.TaskContext) -> bytes:
        ctx.cancelled.wait(deadline)
        return b"unblocked"

    return worker


class WorkerThread:
    """Runs a taskd.Worker on a background thread for the ``with`` block.

    Entering waits (on an event, with a deadline) until its stream is open.
    """

    def __init__(self, worker: "object", timeout: float = 20.0) -> None:
        self.worker = worker
        self.timeout = timeout
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()  # type: ignore[attr-defined]
        except BaseException as exc:  # reported by __exit__
            self.error = exc

    def __enter__(self) -> "object":
        self.thread.start()
        if not self.worker.connected.wait(self.timeout):  # type: ignore[attr-defined]
            raise RuntimeError(f"worker did not connect: {self.error!r}")
        return self.worker

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()  # type: ignore[attr-defined]
        self.thread.join(self.timeout)
        if self.thread.is_alive():
            raise RuntimeError("worker did not stop")
        if self.error is not None:
            raise self.error
