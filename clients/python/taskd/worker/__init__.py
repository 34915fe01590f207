"""The worker SDK: serve task types with Python functions.

    import taskd

    worker = taskd.Worker("127.0.0.1:50051", queues=["images"], concurrency=4)

    @worker.handler("resize")
    def resize(ctx: taskd.TaskContext) -> bytes:
        for step in range(10):
            if ctx.cancelled.is_set():
                raise taskd.Fatal("stopped on request")
            ctx.progress(step / 10, f"step {step}")
        return b"done"

    worker.run()          # or: python3 -m taskd.worker mymodule:worker

Plain functions run on a thread pool of ``concurrency`` threads, ``async def``
handlers on the worker's event loop. Returning bytes (or str, or None for an
empty result) completes the task; raising fails it: :class:`taskd.Fatal`
means no further attempt, anything else (:class:`taskd.Retryable` included)
lets the task's retry budget decide. One Work stream per Worker carries the
assignments, heartbeats, progress and outcomes; the server never sends more
than ``concurrency`` tasks at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import inspect
import logging
import os
import socket
import threading
import traceback
import uuid
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Union

import grpc
import grpc.aio

from taskd._loop import quiet_grpc_poller
from taskd.errors import Fatal, HandlerFailure
from taskd.security import channel_credentials, make_security, secure_aio_channel
from taskd.spec import check_queue, check_type_name
from taskd.v1 import taskd_pb2 as pb
from taskd.v1 import taskd_pb2_grpc as pb_grpc

_log = logging.getLogger("taskd.worker")

HandlerResult = Union[bytes, bytearray, memoryview, str, None]
Handler = Callable[["TaskContext"], Union[HandlerResult, Awaitable[HandlerResult]]]


class TaskContext:
    """What a handler gets: the task, its payload, progress and cancellation.

    Attributes:
      task: the full Task record as assigned.
      id, type, queue, payload, attempt (1-based), labels: from the task.
      deadline: when this attempt times out (aware UTC datetime) or None.
      cancelled: a ``threading.Event`` set when the server cancels the task,
        its attempt times out, or the worker is stopping past its grace
        period. A handler should stop soon after; async handlers can
        ``await ctx.wait_cancelled()``.
      cancel_reason: why ``cancelled`` was set.
    """

    def __init__(self, assignment: pb.Assignment, send: Callable[[pb.WorkRequest], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        task = assignment.task
        self.task: pb.Task = task
        self.id: str = task.id
        self.type: str = task.spec.type
        self.queue: str = task.spec.queue or "default"
        self.payload: bytes = task.spec.payload
        self.attempt: int = task.attempt
        self.labels: Dict[str, str] = dict(task.spec.labels)
        self.lease_id: int = assignment.lease_id
        self.deadline: Optional[datetime.datetime] = (
            assignment.deadline.ToDatetime(tzinfo=datetime.timezone.utc)
            if assignment.HasField("deadline") else None)
        # The largest result the server accepts (0: not announced).
        self.max_result_bytes: int = getattr(assignment, "max_result_bytes", 0)
        self.cancelled = threading.Event()
        self.cancel_reason = ""
        self.cancel_notice = False  # the server said stop (cancel or timeout)
        self._send = send
        self._loop = loop
        self._async_cancelled = asyncio.Event()

    def progress(self, fraction: float, message: str = "") -> None:
        """Reports progress (0.0..1.0) and a short message; also a heartbeat.

        Safe to call from the handler's thread or from the event loop.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise TypeError(f"fraction: expected a number in 0..1, got {type(fraction).__name__}")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction: must be in 0..1, got {fraction!r}")
        if not isinstance(message, str):
            raise TypeError(f"message: expected str, got {type(message).__name__}")
        self._send(pb.WorkRequest(progress=pb.ProgressUpdate(
            task_id=self.id, lease_id=self.lease_id,
            percent=int(round(fraction * 100)),
            message=wire_text(message, MAX_PROGRESS_MESSAGE_BYTES))))

    async def wait_cancelled(self) -> None:
        """Returns once ``cancelled`` is set (for async handlers)."""
        await self._async_cancelled.wait()

    def _cancel(self, reason: str, notice: bool) -> None:
        """Sets the cancelled events; runs on the event loop."""
        if notice:
            self.cancel_notice = True
        if not self.cancelled.is_set():
            self.cancel_reason = reason
            self.cancelled.set()
            self._async_cancelled.set()


class Worker:
    """Serves task types with registered handlers over one Work stream.

    Args:
      target: ``host:port`` of the server.
      queues: queues served (default ``["default"]``).
      concurrency: most tasks run at once (threads for plain handlers).
      worker_id: a name for this worker (default host-pid-random).
      heartbeat_interval: seconds between heartbeats.
      grace: seconds a stop waits for running handlers before failing them
        (retryable) so that another worker runs them.
      tls_ca, tls_cert, tls_key, tls, token: TLS, mTLS and a bearer token
        (default ``$TASKD_TOKEN``); see :mod:`taskd.security`.

    ``run()`` blocks until ``stop()`` is called (from any thread or a signal
    handler); ``serve()`` is the same as a coroutine. Register handlers before
    starting.
    """

    def __init__(self, target: str = "127.0.0.1:50051", *,
                 queues: Optional[Iterable[str]] = None, concurrency: int = 1,
                 worker_id: Optional[str] = None, heartbeat_interval: float = 5.0,
                 grace: float = 30.0, tls: bool = False, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 token: Optional[str] = None) -> None:
        if not isinstance(target, str) or not target:
            raise TypeError("target: expected 'host:port'")
        if isinstance(queues, str):
            raise TypeError("queues: expected a list of queue names, got a single string")
        self.queues: List[str] = [check_queue(q, "queues") for q in (queues or ["default"])]
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency: must be an int >= 1, got {concurrency!r}")
        if heartbeat_interval <= 0:
            raise ValueError(f"heartbeat_interval: must be > 0, got {heartbeat_interval!r}")
        if grace < 0:
            raise ValueError(f"grace: must be >= 0, got {grace!r}")
        self.target = target
        self.security = make_security(tls, tls_ca, tls_cert, tls_key, token)
        channel_credentials(target, self.security)  # refuses a clear-text token now
        self.concurrency = concurrency
        self.worker_id = worker_id or (
            f"py-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        self.heartbeat_interval = heartbeat_interval
        self.grace = grace
        self._handlers: Dict[str, Handler] = {}
        # Loop-owned state (touched only on the worker's event loop).
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self._stop: Optional[asyncio.Event] = None
        self._outbox: Optional[asyncio.Queue] = None
        self._running: Dict[str, TaskContext] = {}
        self._tasks: set = set()
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._connected = threading.Event()
        self._stop_requested = threading.Event()
        self._busy_lock = threading.Lock()
        self._busy_threads = 0  # plain handlers running now (guarded by _busy_lock)

    # ------------------------------------------------------------ registration

    def handler(self, task_type: str) -> Callable[[Handler], Handler]:
        """Decorator: ``@worker.handler("resize")`` serves that task type."""
        check_type_name(task_type, "task_type")

        def register(fn: Handler) -> Handler:
            self.add_handler(task_type, fn)
            return fn
        return register

    def add_handler(self, task_type: str, fn: Handler) -> None:
        """Serves ``task_type`` with ``fn(ctx)`` (plain or ``async def``)."""
        check_type_name(task_type, "task_type")
        if not callable(fn):
            raise TypeError(f"fn: expected a callable, got {type(fn).__name__}")
        if task_type in self._handlers:
            raise ValueError(f"task_type: {task_type!r} already has a handler")
        self._handlers[task_type] = fn

    @property
    def types(self) -> List[str]:
        """The task types this worker serves."""
        return sorted(self._handlers)

    @property
    def busy_threads(self) -> int:
        """Plain (thread-pool) handlers still running, e.g. after a stop
        when a handler ignored ``ctx.cancelled``."""
        with self._busy_lock:
            return self._busy_threads

    def _run_in_thread(self, fn: Handler, ctx: TaskContext) -> object:
        with self._busy_lock:
            self._busy_threads += 1
        try:
            return fn(ctx)
        finally:
            with self._busy_lock:
                self._busy_threads -= 1

    @property
    def connected(self) -> threading.Event:
        """Set while the Work stream is open (after hello was sent)."""
        return self._connected

    # ------------------------------------------------------------ running

    def run(self) -> None:
        """Serves until :meth:`stop`; blocks the calling thread."""
        asyncio.run(self.serve())

    def stop(self) -> None:
        """Asks the worker to stop gracefully (thread-safe, idempotent)."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # the loop has already finished

    async def serve(self) -> None:
        """Serves on the running event loop until :meth:`stop` is called."""
        if not self._handlers:
            raise ValueError("handlers: register at least one handler before serving")
        self._loop = asyncio.get_running_loop()
        quiet_grpc_poller(self._loop)
        self._loop_thread = threading.get_ident()
        self._stop = asyncio.Event()
        if self._stop_requested.is_set():
            self._stop.set()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix="taskd-handler")
        channel = secure_aio_channel(self.target, self.security, [])
        try:
            backoff = 0.1
            while not self._stop.is_set():
                opened = await self._session(pb_grpc.WorkerServiceStub(channel))
                if self._stop.is_set():
                    break
                backoff = 0.1 if opened else min(backoff * 2, 2.0)
                try:  # reconnect back-off, cut short by stop()
                    await asyncio.wait_for(self._stop.wait(), backoff)
                except asyncio.TimeoutError:
                    pass
        finally:
            self._connected.clear()
            for ctx in self._running.values():
                ctx._cancel("worker stopped", notice=False)
            for task in list(self._tasks):
                task.cancel()  # a thread that ignores `cancelled` is left behind
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            self._pool.shutdown(wait=False, cancel_futures=True)
            await channel.close()

    async def _session(self, stub: pb_grpc.WorkerServiceStub) -> bool:
        """One Work stream, until it breaks or the worker has stopped.

        Returns True when the stream was opened (hello sent).
        """
        assert self._stop is not None
        call = stub.Work()
        previous, self._outbox = self._outbox, asyncio.Queue()
        while previous is not None and not previous.empty():
            # Outcomes not sent on the broken stream go on the new one (the
            # server fences stale leases).
            msg = previous.get_nowait()
            if msg is not None and not msg.HasField("heartbeat"):
                self._outbox.put_nowait(msg)
        self._connected.clear()
        hello = pb.Hello(worker_id=self.worker_id, queues=self.queues,
                         types=self.types, concurrency=self.concurrency)
        writer = asyncio.ensure_future(self._write_loop(call, hello))
        reader = asyncio.ensure_future(self._read_loop(call))
        heart = asyncio.ensure_future(self._heartbeat_loop())
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([reader, writer, stopper],
                               return_when=asyncio.FIRST_COMPLETED)
            if self._stop.is_set() and not reader.done():
                await self._drain()
                # The server ends the stream once it has read our half-close.
                await asyncio.wait([reader], timeout=5)
        finally:
            opened = self._connected.is_set()
            self._connected.clear()
            for t in (writer, reader, heart, stopper):
                t.cancel()
            await asyncio.gather(writer, reader, heart, stopper, return_exceptions=True)
            call.cancel()
        return opened

    async def _drain(self) -> None:
        """Graceful stop: let running handlers finish (up to ``grace``), then
        fail the rest as retryable so that another worker runs them, and
        flush the outbox before half-closing."""
        running = list(self._tasks)
        if running:
            await asyncio.wait(running, timeout=self.grace)
        for ctx in list(self._running.values()):
            del self._running[ctx.id]
            ctx._cancel("worker stopping", notice=False)
            self._post(fail_request(ctx, "worker_stopped",
                                    "the worker stopped before the task finished",
                                    retryable=True))
        assert self._outbox is not None
        await self._outbox.put(None)  # the writer half-closes after the rest
        try:
            await asyncio.wait_for(self._outbox.join(), timeout=5)
        except asyncio.TimeoutError:
            _log.warning("taskd worker %s: could not flush before closing", self.worker_id)

    async def _write_loop(self, call: Any, hello: pb.Hello) -> None:
        assert self._outbox is not None
        outbox = self._outbox
        await call.write(pb.WorkRequest(hello=hello))
        self._connected.set()
        while True:
            msg = await outbox.get()
            try:
                if msg is None:
                    await call.done_writing()
                    return
                await call.write(msg)
            finally:
                outbox.task_done()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)  # a period, not a wait for an event
            self._post(pb.WorkRequest(heartbeat=pb.Heartbeat()))

    async def _read_loop(self, call: Any) -> None:
        try:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    return
                if response.HasField("assignment"):
                    self._start(response.assignment)
                elif response.HasField("cancel"):
                    notice = response.cancel
                    ctx = self._running.get(notice.task_id)
                    if ctx is not None and ctx.lease_id == notice.lease_id:
                        ctx._cancel(notice.reason or "cancelled", notice=True)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                _log.warning("taskd worker %s: stream ended: %s %s", self.worker_id,
                             exc.code().name, exc.details())
            raise

    def _post(self, msg: pb.WorkRequest) -> None:
        """Queues a message for the current stream (event loop only)."""
        if self._outbox is not None:
            self._outbox.put_nowait(msg)

    def _send_threadsafe(self, msg: pb.WorkRequest) -> None:
        loop = self._loop
        assert loop is not None
        try:
            if threading.get_ident() == self._loop_thread:
                self._post(msg)
            else:
                loop.call_soon_threadsafe(self._post, msg)
        except RuntimeError:
            pass  # the loop has closed: the worker is gone

    def _start(self, assignment: pb.Assignment) -> None:
        assert self._loop is not None and self._stop is not None
        ctx = TaskContext(assignment, self._send_threadsafe, self._loop)
        if self._stop.is_set():
            self._post(fail_request(ctx, "worker_stopped", "the worker is stopping",
                                    retryable=True))
            return
        self._running[ctx.id] = ctx
        task = asyncio.ensure_future(self._execute(ctx))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _execute(self, ctx: TaskContext) -> None:
        assert self._loop is not None
        fn = self._handlers.get(ctx.type)
        try:
            if fn is None:
                raise Fatal(f"worker {self.worker_id} has no handler for {ctx.type!r}",
                            code="unknown_type")
            if inspect.iscoroutinefunction(fn):
                value = await fn(ctx)  # type: ignore[misc]
            else:
                value = await self._loop.run_in_executor(
                    self._pool, self._run_in_thread, fn, ctx)
                if inspect.isawaitable(value):
                    value = await value
            msg = outcome_request(ctx, value)
        except asyncio.CancelledError:
            msg = fail_request(ctx, "worker_stopped", "the worker stopped", retryable=True)
        except BaseException as exc:  # a handler's failure is the task's failure
            msg = error_request(ctx, exc)
        if self._running.get(ctx.id) is ctx:
            del self._running[ctx.id]
            self._post(msg)


def outcome_request(ctx: TaskContext, value: object) -> pb.WorkRequest:
    """Complete (or Fail) for a handler that returned ``value``."""
    if ctx.cancel_notice:
        return fail_request(ctx, "cancelled", ctx.cancel_reason, retryable=False)
    if value is None:
        value = b""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        return fail_request(ctx, "bad_result",
                            f"handler returned {type(value).__name__}, expected bytes or str",
                            retryable=False)
    if ctx.max_result_bytes and len(value) > ctx.max_result_bytes:
        # Sent anyway, it would end the whole stream and every lease on it.
        return fail_request(ctx, "result_too_large",
                            f"result of {len(value)} bytes exceeds the limit of "
                            f"{ctx.max_result_bytes}", retryable=False)
    return pb.WorkRequest(complete=pb.Complete(task_id=ctx.id, lease_id=ctx.lease_id,
                                               result=bytes(value)))


def error_request(ctx: TaskContext, exc: BaseException) -> pb.WorkRequest:
    """Fail for a handler that raised ``exc``."""
    if ctx.cancel_notice:
        return fail_request(ctx, "cancelled", ctx.cancel_reason, retryable=False)
    if isinstance(exc, HandlerFailure):
        return fail_request(ctx, exc.code, exc.message or str(exc),
                            retryable=not isinstance(exc, Fatal), details=exc.details)
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return fail_request(ctx, "handler_exception", f"{type(exc).__name__}: {exc}",
                        retryable=True, details=details[-8000:])


# How much of a worker's text the server keeps (api/strings/text_limits.h);
# the SDK cuts to the same sizes, so what it sends is what is stored.
MAX_PROGRESS_MESSAGE_BYTES = 1024
MAX_ERROR_CODE_BYTES = 128
MAX_ERROR_MESSAGE_BYTES = 4096
MAX_ERROR_DETAILS_BYTES = 16384


def wire_text(text: str, max_bytes: int) -> str:
    """``text`` as the server can parse it: valid UTF-8 (a lone surrogate,
    e.g. from bytes decoded with ``surrogateescape``, becomes U+FFFD) of at
    most ``max_bytes`` bytes, cut on a character boundary. A string protobuf
    cannot encode would otherwise end the whole Work stream."""
    data = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    data_bytes = data.encode("utf-8", "replace")
    if len(data_bytes) <= max_bytes:
        return data_bytes.decode("utf-8")
    return data_bytes[:max_bytes].decode("utf-8", "ignore")


def fail_request(ctx: TaskContext, code: str, message: str, *, retryable: bool,
                 details: str = "") -> pb.WorkRequest:
    """A Fail message for the context's lease (text made wire-safe)."""
    return pb.WorkRequest(fail=pb.Fail(
        task_id=ctx.id, lease_id=ctx.lease_id,
        error=pb.TaskError(code=wire_text(code, MAX_ERROR_CODE_BYTES),
                           message=wire_text(message, MAX_ERROR_MESSAGE_BYTES),
                           details=wire_text(details, MAX_ERROR_DETAILS_BYTES),
                           retryable=retryable)))
