"""TLS and bearer tokens end to end: certificates made here with openssl,
taskd with TLS and a token file, then Client, aio.Client, App, Worker and
``python3 -m taskd.worker`` with ``tls_ca`` / ``token`` (or $TASKD_TOKEN).
Also a plain loopback taskd with tokens (gRPC local credentials)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest
from typing import Optional
from unittest import mock

import taskd
import taskd.aio
from taskd.security import is_loopback_target
from tests.harness import TaskdServer, WorkerThread, spawn_python

DEADLINE = 20.0
STARTED = taskd.EventType.Value("EVENT_TYPE_STARTED")


def openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d: str) -> None:
    """ca.pem, other-ca.pem and server.pem/.key (localhost, 127.0.0.1) by ca."""
    for name, cn in (("ca", "taskd test CA"), ("other-ca", "unrelated CA")):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={cn}", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=localhost", cwd=d)
    openssl("x509", "-req", "-sha256", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem", cwd=d)


def first_event(client: taskd.Client, future: taskd.TaskFuture, kind: int) -> Optional[taskd.TaskEvent]:
    stream = client.stream([future], from_sequence=1)
    timer = threading.Timer(DEADLINE, stream.cancel)
    timer.start()
    try:
        for event in stream:
            if event.type == kind:
                return event
        return None
    finally:
        timer.cancel()
        stream.cancel()


class SecurityTest(unittest.TestCase):
    dir: str
    token: str
    tls: TaskdServer
    plain: TaskdServer

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.mkdtemp(prefix="taskd-py-sec-", dir=os.environ.get("TEST_TMPDIR"))
        make_certs(cls.dir)
        cls.token = "tdk_" + secrets.token_hex(16)
        tokens = os.path.join(cls.dir, "tokens.txt")
        with open(tokens, "w") as f:
            f.write(f"sha256:{hashlib.sha256(cls.token.encode()).hexdigest()} "
                    "py-test submit,read,work\n")
        cls.tls = TaskdServer(f"--tls-cert={cls.dir}/server.pem",
                              f"--tls-key={cls.dir}/server.key",
                              f"--auth-tokens={tokens}").start()
        cls.plain = TaskdServer(f"--auth-tokens={tokens}").start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.tls.stop()
        cls.plain.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def client(self, **kwargs: object) -> taskd.Client:
        client = taskd.Client(self.tls.target, rpc_timeout=DEADLINE, **kwargs)  # type: ignore[arg-type]
        self.addCleanup(client.close)
        return client

    def test_tls_and_token_submit_and_work(self) -> None:
        client = self.client(tls_ca=self.path("ca.pem"), token=self.token)
        # The worker takes its token from $TASKD_TOKEN.
        with mock.patch.dict(os.environ, {"TASKD_TOKEN": self.token}):
            worker = taskd.Worker(self.tls.target, queues=["sec"], tls_ca=self.path("ca.pem"))
        worker.add_handler("upper", lambda ctx: ctx.payload.upper())
        with WorkerThread(worker):
            future = client.submit("upper", b"hello", queue="sec")
            self.assertEqual(future.result(timeout=DEADLINE), b"HELLO")

    def test_missing_or_unknown_token_is_unauthenticated(self) -> None:
        for token in ("", "tdk_not-a-known-token"):
            with self.subTest(token=token):
                client = self.client(tls_ca=self.path("ca.pem"), token=token)
                with self.assertRaisesRegex(taskd.Unauthenticated, "SubmitTask"):
                    client.submit("upper", b"x", queue="sec")

    def test_untrusted_ca_is_refused(self) -> None:
        client = self.client(tls_ca=self.path("other-ca.pem"), token=self.token)
        with self.assertRaises(taskd.Unavailable):
            client.submit("upper", b"x", queue="sec")

    def test_aio_client_and_app(self) -> None:
        async def main() -> None:
            async with taskd.aio.Client(self.tls.target, tls_ca=self.path("ca.pem"),
                                        token=self.token) as client:
                handle = await client.submit("noop", b"", queue="sec-aio")
                self.assertTrue(handle.id)
            async with taskd.aio.Client(self.tls.target, tls_ca=self.path("ca.pem"),
                                        token="") as client:
                with self.assertRaises(taskd.Unauthenticated):
                    await client.submit("noop", b"", queue="sec-aio")
        asyncio.run(main())
        app = taskd.App(self.tls.target, queue="sec-app", tls_ca=self.path("ca.pem"),
                        token=self.token)
        self.addCleanup(app.close)

        @app.task
        def add(a: int, b: int) -> int:
            return a + b

        with WorkerThread(app.worker()):
            self.assertEqual(add.delay(2, 3).result(timeout=DEADLINE), 5)

    def test_worker_cli_flags(self) -> None:
        client = self.client(tls_ca=self.path("ca.pem"), token=self.token)
        child = spawn_python(["-m", "taskd.worker", "fixture_worker:worker",
                              "--tls-ca", self.path("ca.pem"), "--token", self.token],
                             self.tls.target, stderr=subprocess.PIPE, text=True)
        try:
            future = client.submit("hold", queue="q-child")
            self.assertIsNotNone(first_event(client, future, STARTED),
                                 "the worker with --tls-ca/--token never started the task")
            client.cancel(future)
            child.send_signal(signal.SIGTERM)
            _, err = child.communicate(timeout=DEADLINE)
            self.assertEqual(child.returncode, 0, err)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(DEADLINE)

    def test_token_without_tls_only_to_loopback(self) -> None:
        # Loopback: gRPC local credentials carry the token.
        client = taskd.Client(self.plain.target, token=self.token)
        self.addCleanup(client.close)
        self.assertTrue(client.submit("noop", b"", queue="sec-plain").id)
        anonymous = taskd.Client(self.plain.target, token="")
        self.addCleanup(anonymous.close)
        with self.assertRaises(taskd.Unauthenticated):
            anonymous.submit("noop", b"", queue="sec-plain")
        # Anywhere else: refused before anything is sent.
        for make in (taskd.Client, taskd.aio.Client, taskd.Worker):
            with self.subTest(make=make.__name__):
                with self.assertRaisesRegex(ValueError, "token: refusing .* without TLS"):
                    make("taskd.example.com:50051", token=self.token)
        with mock.patch.dict(os.environ, {"TASKD_TOKEN": self.token}):
            with self.assertRaisesRegex(ValueError, "token"):
                taskd.Client("10.0.0.7:50051")
        with self.assertRaisesRegex(ValueError, "tls_cert and tls_key"):
            taskd.Client(self.plain.target, tls_cert=self.path("server.pem"))
        self.assertTrue(is_loopback_target("localhost:1"))
        self.assertTrue(is_loopback_target("[::1]:1"))
        self.assertTrue(is_loopback_target("dns:///127.0.0.1:1"))
        self.assertFalse(is_loopback_target("127.example.com:1"))
        self.assertFalse(is_loopback_target("10.0.0.7:50051"))


if __name__ == "__main__":
    unittest.main()
