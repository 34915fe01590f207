"""The asyncio taskd client, on ``grpc.aio``.

    import asyncio, taskd.aio

    async def main() -> None:
        async with taskd.aio.Client("127.0.0.1:50051") as client:
            handles = [await client.submit("resize", name) for name in (b"a", b"b")]
            results = await asyncio.gather(*handles)      # the result bytes
            done, pending = await asyncio.wait(handles, return_when=asyncio.FIRST_COMPLETED)
            async for event in client.stream(queue="default"):
                ...

    asyncio.run(main())

A :class:`TaskHandle` is an ``asyncio.Future``: await it, pass it to
``gather``/``wait``/``wait_for``/``as_completed``. Cancelling it (which
``wait_for`` does on timeout) only stops waiting locally; the task itself
keeps running. ``await handle.cancel_task()`` cancels the task on the server.
A Client belongs to the event loop it was first used on.
"""

from __future__ import annotations

import asyncio
from typing import (TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable, Iterable,
                    List, Optional, Sequence, Set, Tuple, TypeVar, Union)

import grpc
import grpc.aio

from taskd._loop import quiet_grpc_poller
from taskd.client import (DEFAULT_TARGET, SpecLike, TaskRef, check_client_options,
                          check_limit, list_request, stream_request, to_spec)
from taskd.errors import TaskdError, from_rpc_error
from taskd.security import make_security, secure_aio_channel
from taskd.futures import CompletionBook, TaskRecord, await_request, is_terminal, outcome
from taskd.spec import Payload, SubmitOptions, build_spec, check_batch, task_id

if TYPE_CHECKING:
    from typing import Unpack
from taskd.v1 import taskd_pb2 as pb
from taskd.v1 import taskd_pb2_grpc as pb_grpc

T = TypeVar("T")


async def call_rpc(name: str, call: Awaitable[T]) -> T:
    """Awaits one gRPC call, turning every failure into a TaskdError."""
    try:
        return await call
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, name) from None


class TaskHandle(TaskRecord, asyncio.Future):
    """The asyncio future of one task: ``await handle`` gives its result.

    The result is the task's result bytes (or the decoded value); a failed
    or cancelled task raises :class:`taskd.TaskFailed` /
    :class:`taskd.TaskCancelled`. ``handle.cancel()`` — or ``wait_for``
    timing out — only abandons the local wait and does NOT cancel the task;
    use :meth:`cancel_task` for that.

    Attributes:
      id: the task id.
      task: the latest Task record seen (state, attempt, progress).
      deduplicated: the submit returned an existing task (idempotency key).
    """

    def __init__(self, task: pb.Task, client: "Client",
                 decode: Optional[Callable[[bytes], Any]] = None,
                 deduplicated: bool = False) -> None:
        super().__init__()
        self._bind(task, decode, deduplicated)
        self._client = client

    async def cancel_task(self, reason: str = "") -> bool:
        """Cancels the task on the server (see ``taskd.Client.cancel``).

        Returns True when the cancel was accepted, False when the task had
        already finished. A running task completes this handle with
        TaskCancelled once its worker stops it.
        """
        if self.done() and not self.cancelled():
            return False  # it has finished; nothing to cancel
        record = await self._client.cancel(self.id, reason)
        return record.state == pb.TASK_STATE_CANCELLED or (
            not is_terminal(record) and record.cancel_requested)

    def _settle(self, task: pb.Task) -> None:
        if self.done():
            return
        self.task = task
        value, error = outcome(task, self._decode)
        if error is not None:
            self.set_exception(error)
        else:
            self.set_result(value)

    def _abandon(self, error: BaseException) -> None:
        if not self.done():
            self.set_exception(error)


class AsyncWatcher(CompletionBook):
    """The asyncio client's completion machinery: one Stream read by one
    task, a supervisor task, and Await calls as tasks; all on one loop."""

    def __init__(self, stub: pb_grpc.TaskServiceStub, reconnect_timeout: float) -> None:
        super().__init__(reconnect_timeout)
        self._stub = stub
        self._jobs: Set["asyncio.Future[Any]"] = set()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def _start_locked(self) -> None:
        if self._started:
            return
        self._started = True
        quiet_grpc_poller(asyncio.get_running_loop())
        self._spawn(self._read_loop())
        self._spawn(self._supervise())

    async def close(self) -> None:
        """Stops watching; outstanding handles fail with TaskdError."""
        with self._lock:
            call = self._close_locked()
        if call is not None:
            call.cancel()
        self._flush()
        for job in list(self._jobs):
            job.cancel()
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)

    def _check(self, ids: List[str], fetch: bool) -> None:
        self._spawn(self._await(ids, fetch))

    async def _await(self, ids: List[str], fetch: bool) -> None:
        try:
            response = await self._stub.Await(await_request(ids), timeout=30)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # grpc.RpcError, or the channel went away
            self._check_failed(ids, fetch, exc)
            return
        self._checked(fetch, response)

    async def _read_loop(self) -> None:
        backoff = 0.05
        while True:
            with self._lock:
                if self._closed:
                    return
                call = self._stub.Stream(pb.StreamRequest())
                self._stream_opened_locked(call)
            try:
                async for event in call:
                    self._on_event(event)
                    backoff = 0.05
            except grpc.RpcError:
                pass  # reconnect below
            if not self._stream_ended():
                return
            await asyncio.sleep(backoff)  # reconnect back-off
            backoff = min(backoff * 2, 1.0)

    async def _supervise(self) -> None:
        interval = 0.1
        while True:
            await asyncio.sleep(interval)  # the supervisor's period
            with self._lock:
                if self._closed:
                    return
                interval = self._supervise_locked(interval)
            self._flush()


class Client:
    """An asyncio connection to one taskd server.

    Args:
      target: ``host:port`` of the server.
      rpc_timeout: deadline in seconds of each unary call.
      reconnect_timeout: how long outstanding handles wait for an
        unreachable server before failing with :class:`taskd.Unavailable`.
      options: extra gRPC channel options.
      tls_ca, tls_cert, tls_key, tls, token: TLS, mTLS and a bearer token
        (default ``$TASKD_TOKEN``); see :mod:`taskd.security`.
    """

    def __init__(self, target: str = DEFAULT_TARGET, *, rpc_timeout: float = 30.0,
                 reconnect_timeout: float = 30.0,
                 options: Sequence[Tuple[str, Any]] = (), tls: bool = False,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None, token: Optional[str] = None) -> None:
        self.target = check_client_options(target, rpc_timeout, reconnect_timeout)
        self._rpc_timeout = rpc_timeout
        self.security = make_security(tls, tls_ca, tls_cert, tls_key, token)
        self._channel = secure_aio_channel(target, self.security, list(options))
        self._stub = pb_grpc.TaskServiceStub(self._channel)
        self._watcher = AsyncWatcher(self._stub, reconnect_timeout)
        try:
            quiet_grpc_poller(asyncio.get_running_loop())
        except RuntimeError:
            pass  # created outside a loop: done when the watcher starts

    async def close(self) -> None:
        """Closes the connection; handles still outstanding fail with TaskdError."""
        await self._watcher.close()
        await self._channel.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _watch(self, handle: TaskHandle) -> TaskHandle:
        self._watcher.add(handle)
        return handle

    async def submit(self, type: str, payload: Payload = b"", *,
                     decode: Optional[Callable[[bytes], Any]] = None,
                     **options: Unpack[SubmitOptions]) -> TaskHandle:
        """Submits one task; returns its handle once the server has it.

        Arguments as :meth:`taskd.Client.submit`.
        """
        return await self.submit_spec(build_spec(type, payload, **options), decode=decode)

    async def submit_spec(self, spec: pb.TaskSpec,
                          decode: Optional[Callable[[bytes], Any]] = None) -> TaskHandle:
        """Submits a ready-made TaskSpec (see :func:`taskd.task_spec`)."""
        response = await call_rpc("SubmitTask", self._stub.SubmitTask(
            pb.SubmitTaskRequest(task=spec), timeout=self._rpc_timeout))
        return self._watch(TaskHandle(response.task, self, decode,
                                      deduplicated=response.deduplicated))

    async def submit_many(self, tasks: Sequence[SpecLike],
                          decode: Optional[Callable[[bytes], Any]] = None
                          ) -> List[TaskHandle]:
        """Submits up to 1000 tasks atomically (as :meth:`taskd.Client.submit_many`)."""
        if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence):
            raise TypeError("tasks: expected a list of tasks")
        check_batch(tasks, "tasks")
        specs = [to_spec(item, i) for i, item in enumerate(tasks)]
        response = await call_rpc("SubmitTasks", self._stub.SubmitTasks(
            pb.SubmitTasksRequest(tasks=specs), timeout=self._rpc_timeout))
        return [self._watch(TaskHandle(t, self, decode)) for t in response.tasks]

    async def handle(self, task: TaskRef,
                     decode: Optional[Callable[[bytes], Any]] = None) -> TaskHandle:
        """A fresh handle for an existing task (e.g. after ``wait_for`` gave up)."""
        return self._watch(TaskHandle(await self.get(task), self, decode))

    async def get(self, task: TaskRef) -> pb.Task:
        """The task's current record; taskd.NotFound for an unknown id."""
        return await call_rpc("GetTask", self._stub.GetTask(
            pb.GetTaskRequest(id=task_id(task, "task")), timeout=self._rpc_timeout))

    async def list(self, queue: Optional[str] = None,
                   states: Optional[Iterable[Union[int, str]]] = None,
                   limit: Optional[int] = 100) -> List[pb.Task]:
        """Tasks, oldest first, at most ``limit`` (as :meth:`taskd.Client.list`)."""
        check_limit(limit)
        request = list_request(queue, states, 500)
        out: List[pb.Task] = []
        while True:
            response = await call_rpc("ListTasks", self._stub.ListTasks(
                request, timeout=self._rpc_timeout))
            out.extend(response.tasks)
            if limit is not None and len(out) >= limit:
                return out[:limit]
            if not response.next_page_token:
                return out
            request.page_token = response.next_page_token

    async def cancel(self, task: TaskRef, reason: str = "") -> pb.Task:
        """Cancels the task on the server; returns its record (idempotent)."""
        if not isinstance(reason, str):
            raise TypeError(f"reason: expected str, got {type(reason).__name__}")
        record = await call_rpc("Cancel", self._stub.Cancel(
            pb.CancelRequest(id=task_id(task, "task"), reason=reason),
            timeout=self._rpc_timeout))
        self._watcher.resolve(record)
        return record

    async def stream(self, ids: Optional[Iterable[TaskRef]] = None, *,
                     queue: Optional[str] = None, from_sequence: int = 0,
                     include_payloads: bool = False) -> AsyncIterator[pb.TaskEvent]:
        """``async for event in client.stream(...)``: events as they happen.

        For ``ids`` (the iteration ends once all have finished), else for
        ``queue``, else for every task; ``from_sequence`` > 0 replays.
        Leaving the loop early ends the call.
        """
        request = stream_request(ids, queue, from_sequence, include_payloads)
        call = self._stub.Stream(request)
        try:
            async for event in call:
                yield event
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, "Stream") from None
        finally:
            call.cancel()


__all__ = ["Client", "TaskHandle", "TaskdError"]
