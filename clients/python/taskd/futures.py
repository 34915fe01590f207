"""TaskFuture, and the watcher that completes every future of one client.

A :class:`TaskFuture` is a real :class:`concurrent.futures.Future`, so
``concurrent.futures.wait`` and ``as_completed`` accept it. Completion is
pushed by the server: each client holds ONE ``Stream`` call that carries every
task event, and a :class:`CompletionBook` turns terminal events into
resolved futures. Results are fetched in batches with ``Await`` (up to
:data:`FETCH_BATCH` ids per call). However many futures are outstanding, a
client costs two threads of its own (the stream reader and a supervisor)
plus gRPC's.

Correctness without sequence numbers from Submit: a future registered before
the stream is known to be live (no event received yet since it was opened)
is re-checked with ``Await`` once the stream is live, and periodically until
then; terminal events for ids not (yet) registered are kept in a bounded
table that registration consults.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Set, Tuple

import grpc

from taskd.errors import (NotFound, TaskdError, Unavailable,
                          from_rpc_error, task_outcome_error)
from taskd.v1 import taskd_pb2 as pb
from taskd.v1 import taskd_pb2_grpc as pb_grpc

_log = logging.getLogger("taskd")

TERMINAL = frozenset((pb.TASK_STATE_SUCCEEDED, pb.TASK_STATE_FAILED,
                      pb.TASK_STATE_CANCELLED))
#: Most ids per result-fetching Await call.
FETCH_BATCH = 500
#: Most fetching Await calls in flight per client.
MAX_FETCHES = 4
#: Terminal events remembered for ids no future holds yet.
ORPHAN_CAPACITY = 20_000


def is_terminal(task: pb.Task) -> bool:
    """True when ``task`` is SUCCEEDED, FAILED or CANCELLED."""
    return task.state in TERMINAL


def outcome(task: pb.Task, decode: Optional[Callable[[bytes], Any]]
            ) -> Tuple[Any, Optional[BaseException]]:
    """(value, None) for a succeeded ``task``, (None, error) otherwise; the
    value is the result bytes, or what ``decode`` makes of them."""
    error = task_outcome_error(task)
    if error is not None:
        return None, error
    if decode is None:
        return task.result, None
    try:
        return decode(task.result), None
    except Exception as exc:  # a result the decoder rejects
        return None, exc


class TaskRecord:
    """What TaskFuture and the asyncio TaskHandle share: the task's id, its
    latest record, and how its result is decoded."""

    id: str
    task: pb.Task
    deduplicated: bool
    _decode: Optional[Callable[[bytes], Any]]

    def _bind(self, task: pb.Task, decode: Optional[Callable[[bytes], Any]],
              deduplicated: bool) -> None:
        self.id = task.id
        self.task = task
        self.deduplicated = deduplicated
        self._decode = decode

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {pb.TaskState.Name(self.task.state)}>"


class TaskFuture(TaskRecord, concurrent.futures.Future):
    """The future of one taskd task.

    ``result(timeout)`` returns the task's result bytes (or the decoded value
    for tasks of the Celery-style layer) or raises :class:`taskd.TaskFailed`
    / :class:`taskd.TaskCancelled` carrying the server's TaskError;
    ``exception(timeout)`` returns that exception instead of raising it.
    ``cancel()`` asks the server to cancel the task. Done-callbacks run on a
    client thread and must not block.

    Attributes:
      id: the task id.
      task: the latest ``Task`` record this client has seen (state, attempt,
        progress); the final record once the future is done.
      deduplicated: True when the submit was answered with an existing task
        (same idempotency key).
    """

    def __init__(self, task: pb.Task, owner: "ThreadedWatcher",
                 decode: Optional[Callable[[bytes], Any]] = None,
                 deduplicated: bool = False) -> None:
        super().__init__()
        self._bind(task, decode, deduplicated)
        self._owner = owner

    def cancel(self, reason: str = "") -> bool:
        """Asks the server to cancel the task.

        A PENDING or SCHEDULED task is CANCELLED at once and this future is
        done; a RUNNING task is marked ``cancel_requested``, its worker is
        told, and the future completes (with :class:`taskd.TaskCancelled`)
        when the worker stops it. Returns False when the task had already
        finished, True when the cancel was accepted. Raises
        :class:`taskd.Unavailable` when the server cannot be reached.
        """
        if self.done():
            return False
        task = self._owner.cancel_task(self.id, reason)
        if task.state == pb.TASK_STATE_CANCELLED:
            self._owner.resolve(task)
            return True
        if is_terminal(task):
            self._owner.resolve(task)
            return False
        return task.cancel_requested

    def cancelled(self) -> bool:
        """True when the task ended CANCELLED."""
        if super().cancelled():
            return True
        return self.done() and self.task.state == pb.TASK_STATE_CANCELLED

    def running(self) -> bool:
        """True while the latest state seen is RUNNING."""
        return not self.done() and self.task.state == pb.TASK_STATE_RUNNING

    def get(self, timeout: Optional[float] = None) -> Any:
        """Celery's spelling of :meth:`result`."""
        return self.result(timeout)

    def _settle(self, task: pb.Task) -> None:
        """Completes the future from a terminal ``task`` (first call wins)."""
        if self.done():
            return
        self.task = task
        value, error = outcome(task, self._decode)
        try:
            if error is not None:
                self.set_exception(error)
            else:
                self.set_result(value)
        except concurrent.futures.InvalidStateError:
            pass  # resolved concurrently by another path

    def _abandon(self, error: BaseException) -> None:
        try:
            self.set_exception(error)
        except concurrent.futures.InvalidStateError:
            pass


class Settleable(Protocol):
    """What a CompletionBook completes: a TaskFuture or an asyncio TaskHandle."""

    id: str
    task: pb.Task

    def _settle(self, task: pb.Task) -> None: ...

    def _abandon(self, error: BaseException) -> None: ...


class CompletionBook:
    """Which futures wait for which task, and what to do about each event.

    The transport-free half of a client's completion machinery, shared by
    the threaded watcher (sync client) and the asyncio one: subclasses
    start the stream reader and the supervisor, and issue the Await calls
    (``_check``), feeding answers back with ``_checked``/``_check_failed``.
    Thread-safe; futures are completed (and their done-callbacks run)
    outside the lock.
    """

    def __init__(self, reconnect_timeout: float) -> None:
        # Constant after construction.
        self._reconnect_timeout = reconnect_timeout
        # State below is protected by _lock (reentrant: gRPC may run a done
        # callback inline).
        self._lock = threading.Condition(threading.RLock())
        self._futures: Dict[str, List[Settleable]] = {}
        self._unchecked: Set[str] = set()  # ids whose terminal event may be missed
        self._orphans: "collections.OrderedDict[str, pb.Task]" = collections.OrderedDict()
        self._to_fetch: List[str] = []
        self._fetches = 0
        self._ready: List[Callable[[], None]] = []  # completions to run unlocked
        self._live = False  # an event arrived on the current stream
        self._outage_since: Optional[float] = None
        self._call: Optional[Any] = None
        self._closed = False
        self._started = False

    # ------------------------------------------------------------ public

    def add(self, future: Settleable) -> None:
        """Starts watching ``future``; resolves it now if its task is terminal."""
        task = future.task
        with self._lock:
            if self._closed:
                self._ready.append(
                    functools.partial(future._abandon, TaskdError("client is closed")))
            else:
                self._futures.setdefault(future.id, []).append(future)
                orphan = self._orphans.pop(future.id, None)
                if orphan is not None:
                    task = orphan
                elif not self._live:
                    self._unchecked.add(future.id)
                self._start_locked()
                if is_terminal(task):
                    self._terminal_locked(task, fetched=False)
        self._flush()

    def resolve(self, task: pb.Task) -> None:
        """Feeds a Task record obtained elsewhere (e.g. a Cancel answer)."""
        if is_terminal(task):
            with self._lock:
                self._terminal_locked(task, fetched=False)
            self._flush()

    def outstanding(self) -> int:
        """Number of ids with futures not yet resolved."""
        with self._lock:
            return len(self._futures)

    def _close_locked(self) -> Any:
        """Marks the book closed; returns the stream call to cancel."""
        if self._closed:
            return None
        self._closed = True
        call, self._call = self._call, None
        for fs in self._futures.values():
            for f in fs:
                self._ready.append(functools.partial(
                    f._abandon, TaskdError(f"client closed before task {f.id} finished")))
        self._futures.clear()
        self._lock.notify_all()
        return call

    # ------------------------------------------------------------ internals

    def _flush(self) -> None:
        """Runs completions queued under the lock, outside it."""
        while True:
            with self._lock:
                if not self._ready:
                    return
                ready, self._ready = self._ready, []
            for complete in ready:
                complete()

    def _start_locked(self) -> None:
        """Starts the stream reader and the supervisor (once)."""
        raise NotImplementedError

    def _check(self, ids: List[str], fetch: bool) -> None:
        """Starts one Await for ``ids`` (as they stand, within 1 ms) whose
        answer goes to ``_checked`` or ``_check_failed``. A fetch
        (``fetch=True``) holds one of the MAX_FETCHES slots, which the
        caller took."""
        raise NotImplementedError

    def _terminal_locked(self, task: pb.Task, fetched: bool) -> None:
        futures = self._futures.get(task.id)
        if futures is None:
            return
        self._unchecked.discard(task.id)
        if task.state == pb.TASK_STATE_SUCCEEDED and not fetched and not task.result:
            # Events carry no results: fetch them first (batched Await).
            self._to_fetch.append(task.id)
            self._pump_fetches_locked()
            return
        del self._futures[task.id]
        for f in futures:
            self._ready.append(functools.partial(f._settle, task))

    def _pump_fetches_locked(self) -> None:
        while self._to_fetch and self._fetches < MAX_FETCHES:
            batch = list(dict.fromkeys(self._to_fetch[:FETCH_BATCH]))
            del self._to_fetch[:FETCH_BATCH]
            batch = [i for i in batch if i in self._futures]
            if batch:
                self._fetches += 1
                self._check(batch, fetch=True)

    def _checked(self, fetch: bool, response: pb.AwaitResponse) -> None:
        """Feeds the answer of a ``_check``."""
        with self._lock:
            if fetch:
                self._fetches -= 1
            self._outage_since = None
            for task in response.tasks:
                if is_terminal(task):
                    self._terminal_locked(task, fetched=True)
                elif task.state == pb.TASK_STATE_UNSPECIFIED:
                    self._settle_missing_locked(task.id)
                else:
                    for f in self._futures.get(task.id, ()):
                        f.task = task
            self._pump_fetches_locked()
        self._flush()

    def _check_failed(self, ids: List[str], fetch: bool, exc: BaseException) -> None:
        """Handles a ``_check`` that failed with ``exc``."""
        code = exc.code() if isinstance(exc, grpc.RpcError) else None
        self._check_failed_unflushed(ids, fetch, exc, code)
        self._flush()

    def _check_failed_unflushed(self, ids: List[str], fetch: bool, exc: BaseException,
                                code: Optional[grpc.StatusCode]) -> None:
        with self._lock:
            if fetch:
                self._fetches -= 1
            if self._closed:
                return
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED and len(ids) > 1:
                half = len(ids) // 2
                for part in (ids[:half], ids[half:]):
                    self._fetches += 1 if fetch else 0
                    self._check(part, fetch)
                return
            if code == grpc.StatusCode.NOT_FOUND and len(ids) > 1:
                for one in ids:  # find which ids are gone
                    self._fetches += 1 if fetch else 0
                    self._check([one], fetch)
                return
            if code == grpc.StatusCode.NOT_FOUND:
                self._settle_missing_locked(ids[0])
                return
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED,
                        grpc.StatusCode.DEADLINE_EXCEEDED, None):
                # The supervisor checks them again (the stream breaks too).
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                self._unchecked.update(i for i in ids if i in self._futures)
                self._lock.notify_all()
                return
            error = from_rpc_error(exc, "Await")  # type: ignore[arg-type]
            for one in ids:
                for f in self._futures.pop(one, ()):
                    self._ready.append(functools.partial(f._abandon, error))
            self._pump_fetches_locked()

    def _settle_missing_locked(self, task_id: str) -> None:
        error = NotFound(f"task {task_id} is no longer retained by the server")
        for f in self._futures.pop(task_id, ()):
            self._ready.append(functools.partial(f._abandon, error))
        self._unchecked.discard(task_id)

    def _stream_opened_locked(self, call: Any) -> None:
        self._live = False
        self._call = call

    def _stream_ended(self) -> bool:
        """Records that the stream broke; False once the book is closed."""
        with self._lock:
            if self._closed:
                return False
            self._live = False
            self._unchecked.update(self._futures)
            if self._outage_since is None:
                self._outage_since = time.monotonic()
            self._lock.notify_all()
            return True

    def _on_event(self, event: pb.TaskEvent) -> None:
        task = event.task
        with self._lock:
            if not self._live:
                # The stream is live: check once more what was registered
                # before, then trust the events.
                self._live = True
                self._outage_since = None
                self._reconcile_locked(clear=True)
            if is_terminal(task):
                if task.id in self._futures:
                    self._terminal_locked(task, fetched=False)
                else:
                    self._orphans[task.id] = task
                    if len(self._orphans) > ORPHAN_CAPACITY:
                        self._orphans.popitem(last=False)
            else:
                for f in self._futures.get(task.id, ()):
                    f.task = task
        self._flush()

    def _reconcile_locked(self, clear: bool) -> None:
        ids = [i for i in self._unchecked if i in self._futures]
        if clear:
            self._unchecked.clear()
        else:
            self._unchecked.intersection_update(ids)
        for part in chunks(ids, FETCH_BATCH):
            self._check(part, fetch=False)

    def _supervise_locked(self, interval: float) -> float:
        """One supervisor round; returns the time until the next.

        Re-checks futures whose completion may have been missed (until the
        stream is live, or after a failed check), and fails outstanding
        futures with Unavailable after ``reconnect_timeout`` of outage.
        """
        if self._unchecked:
            self._reconcile_locked(clear=self._live)
            interval = min(interval * 2, 1.0)
        else:
            interval = 0.1
        since = self._outage_since
        if (since is not None and self._futures and
                time.monotonic() - since > self._reconnect_timeout):
            error = Unavailable(
                f"taskd server unreachable for {self._reconnect_timeout:g} s")
            for fs in self._futures.values():
                for f in fs:
                    self._ready.append(functools.partial(f._abandon, error))
            self._futures.clear()
            self._unchecked.clear()
            self._to_fetch.clear()
        return interval


class ThreadedWatcher(CompletionBook):
    """The sync client's completion machinery: a stream-reader thread, a
    supervisor thread, and Await calls completed on gRPC's own thread."""

    def __init__(self, stub: pb_grpc.TaskServiceStub, reconnect_timeout: float,
                 cancel_task: Callable[[str, str], pb.Task]) -> None:
        super().__init__(reconnect_timeout)
        self._stub = stub
        self.cancel_task = cancel_task
        self._threads: List[threading.Thread] = []

    def close(self) -> None:
        """Stops watching; outstanding futures fail with TaskdError."""
        with self._lock:
            call = self._close_locked()
        if call is not None:
            call.cancel()
        self._flush()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)

    def _start_locked(self) -> None:
        if self._started:
            return
        self._started = True
        for target, name in ((self._read_loop, "taskd-stream"),
                             (self._supervise, "taskd-supervisor")):
            t = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def _check(self, ids: List[str], fetch: bool) -> None:
        try:
            call = self._stub.Await.future(await_request(ids), timeout=30)
        except Exception as exc:  # the channel was closed under us
            self._check_failed_unflushed(ids, fetch, exc, None)
            return
        call.add_done_callback(lambda c: self._on_await_done(ids, fetch, c))

    def _on_await_done(self, ids: List[str], fetch: bool, call: Any) -> None:
        try:
            response = call.result()
        except Exception as exc:  # grpc.RpcError, or the channel went away
            self._check_failed(ids, fetch, exc)
            return
        self._checked(fetch, response)

    def _read_loop(self) -> None:
        backoff = 0.05
        pause = threading.Event()  # never set: a bounded back-off wait
        while True:
            with self._lock:
                if self._closed:
                    return
                try:
                    call = self._stub.Stream(pb.StreamRequest())
                except Exception:  # the channel was closed
                    return
                self._stream_opened_locked(call)
            try:
                for event in call:
                    self._on_event(event)
                    backoff = 0.05
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.CANCELLED,
                                      grpc.StatusCode.UNAVAILABLE):
                    _log.warning("taskd: event stream ended: %s", exc.details())
            except Exception:  # never let the reader thread die silently
                _log.exception("taskd: event stream reader failed")
            if not self._stream_ended():
                return
            pause.wait(backoff)
            backoff = min(backoff * 2, 1.0)

    def _supervise(self) -> None:
        interval = 0.1
        while True:
            with self._lock:
                self._lock.wait(interval)
                if self._closed:
                    return
                interval = self._supervise_locked(interval)
            self._flush()


def await_request(ids: List[str]) -> pb.AwaitRequest:
    """An Await that answers with the tasks as they stand (within 1 ms)."""
    request = pb.AwaitRequest(ids=ids, mode=pb.AWAIT_MODE_ALL)
    request.timeout.nanos = 1_000_000
    return request


def chunks(items: List[str], size: int) -> Iterable[List[str]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
