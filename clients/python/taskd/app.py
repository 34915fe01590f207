"""A Celery-style layer: ``@app.task`` functions called with ``.delay()``.

    import taskd

    app = taskd.App("127.0.0.1:50051")

    @app.task(queue="math", retries=3)
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(2, 3).result(timeout=5)                     # 5 (also .get())
    add.apply_async((2, 3), countdown=10, priority=9)     # a TaskFuture
    app.worker(concurrency=4).run()                        # serves every task

Arguments travel as the JSON object ``{"args": [...], "kwargs": {...}}`` and
the return value as JSON, so a worker or client in another language can
take part. A task's type is its name (default ``module.function``).
"""

from __future__ import annotations

import datetime
import functools
import inspect
import json
import os
import sys
import threading
from typing import (Any, Callable, Dict, Generic, Iterable, List, Mapping, Optional,
                    Sequence, TypeVar, Union, overload)

from taskd.client import Client, TaskRef
from taskd.errors import Fatal
from taskd.futures import TaskFuture
from taskd.security import make_security
from taskd.spec import Seconds, check_queue, check_type_name, to_seconds
from taskd.worker import TaskContext, Worker

R = TypeVar("R")


def encode_call(args: Sequence[Any], kwargs: Mapping[str, Any]) -> bytes:
    """The JSON payload of a call; TypeError naming what cannot be encoded."""
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise TypeError(f"args: expected a list or tuple, got {type(args).__name__}")
    if not isinstance(kwargs, Mapping):
        raise TypeError(f"kwargs: expected a dict, got {type(kwargs).__name__}")
    for i, value in enumerate(args):
        _check_json(value, f"args[{i}]")
    for name, value in kwargs.items():
        _check_json(value, f"kwargs[{name!r}]")
    return json.dumps({"args": list(args), "kwargs": dict(kwargs)},
                      separators=(",", ":")).encode()


def _check_json(value: Any, argument: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{argument}: cannot be sent as JSON ({exc})") from None


def encode_result(value: Any) -> bytes:
    """A task's return value as JSON; Fatal when it cannot be encoded."""
    try:
        return json.dumps(value).encode()
    except (TypeError, ValueError) as exc:
        raise Fatal(f"result cannot be sent as JSON: {exc}", code="bad_result") from None


def decode_result(data: bytes) -> Any:
    """A task's JSON result (None for an empty result)."""
    return json.loads(data) if data else None


class TaskFunction(Generic[R]):
    """A function registered with ``@app.task``; call it to run it locally."""

    def __init__(self, app: "App", fn: Callable[..., R], name: str,
                 options: Dict[str, Any]) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<taskd task {self.name}>"

    def delay(self, *args: Any, **kwargs: Any) -> TaskFuture:
        """Submits a call with the task's default options; returns its future.

        ``future.result(timeout)`` (or ``.get(timeout)``) gives the decoded
        return value.
        """
        return self.apply_async(args, kwargs)

    def apply_async(self, args: Sequence[Any] = (), kwargs: Optional[Mapping[str, Any]] = None,
                    *, countdown: Optional[Seconds] = None,
                    eta: Optional[datetime.datetime] = None,
                    priority: Optional[int] = None, queue: Optional[str] = None,
                    retries: Optional[int] = None, timeout: Optional[Seconds] = None,
                    key: Optional[str] = None,
                    depends_on: Optional[Iterable[TaskRef]] = None) -> TaskFuture:
        """Submits a call with options (Celery's names where they exist).

        ``countdown``: seconds to wait before running; ``eta``: an aware
        datetime to run at; the others as :meth:`taskd.Client.submit`
        (``key`` is the idempotency key). Unset options take the task's.
        """
        payload = encode_call(args, kwargs or {})
        if countdown is not None:
            countdown = to_seconds(countdown, "countdown")
        if eta is not None and not isinstance(eta, datetime.datetime):
            raise TypeError(f"eta: expected an aware datetime, got {type(eta).__name__}")
        options = dict(self.options)
        for name, value in (("priority", priority), ("queue", queue),
                            ("retries", retries), ("timeout", timeout)):
            if value is not None:
                options[name] = value
        return self.app.client.submit(self.name, payload, delay=countdown, run_at=eta,
                                      key=key, depends_on=depends_on,
                                      decode=decode_result, **options)

    def s(self, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        """A submit_many element for this call (e.g. ``client.submit_many([add.s(1, 2)])``)."""
        spec: Dict[str, Any] = {"type": self.name, "payload": encode_call(args, kwargs)}
        spec.update(self.options)
        return spec

    def handle(self, ctx: TaskContext) -> Union[bytes, Any]:
        """Runs one delivered call (what the worker registers)."""
        args, kwargs = _decode_call(ctx.payload)
        return encode_result(self.fn(*args, **kwargs))


def _decode_call(payload: bytes) -> Any:
    try:
        call = json.loads(payload) if payload else {}
        args, kwargs = call.get("args", []), call.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError("args must be a list and kwargs an object")
    except (ValueError, AttributeError) as exc:
        raise Fatal(f"payload is not a JSON call: {exc}", code="bad_payload") from None
    return args, kwargs


def default_name(func: Callable[..., Any]) -> str:
    """``module.function``; a script's module is named after its file, so a
    script and a worker importing it agree (``celery_app.add``)."""
    module = func.__module__
    if module == "__main__":
        path = getattr(sys.modules["__main__"], "__file__", None)
        if path:
            module = os.path.splitext(os.path.basename(path))[0]
    return f"{module}.{func.__qualname__}".replace("<", "").replace(">", "")


class App:
    """A set of JSON tasks and the client that submits them (like ``Celery()``).

    Args:
      target: ``host:port`` of the server.
      queue: default queue of this app's tasks (default ``"default"``).
      tls_ca, tls_cert, tls_key, tls, token: TLS, mTLS and a bearer token
        (default ``$TASKD_TOKEN``) of the app's client and workers; see
        :mod:`taskd.security`.
    """

    def __init__(self, target: str = "127.0.0.1:50051", *,
                 queue: Optional[str] = None, tls: bool = False,
                 tls_ca: Optional[str] = None, tls_cert: Optional[str] = None,
                 tls_key: Optional[str] = None, token: Optional[str] = None) -> None:
        if not isinstance(target, str) or not target:
            raise TypeError("target: expected 'host:port'")
        self.target = target
        self.security = make_security(tls, tls_ca, tls_cert, tls_key, token)
        self.queue = check_queue(queue) if queue is not None else None
        self.tasks: Dict[str, TaskFunction[Any]] = {}
        self._client: Optional[Client] = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Client:
        """The app's :class:`taskd.Client`, connected on first use."""
        with self._lock:
            if self._client is None:
                s = self.security
                self._client = Client(self.target, tls=s.tls, tls_ca=s.tls_ca,
                                      tls_cert=s.tls_cert, tls_key=s.tls_key, token=s.token)
            return self._client

    def close(self) -> None:
        """Closes the app's client, if it was opened."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    @overload
    def task(self, fn: Callable[..., R]) -> TaskFunction[R]: ...

    @overload
    def task(self, fn: None = None, *, name: Optional[str] = None,
             queue: Optional[str] = None, priority: int = 0,
             retries: Optional[int] = None, timeout: Optional[Seconds] = None
             ) -> Callable[[Callable[..., R]], TaskFunction[R]]: ...

    def task(self, fn: Optional[Callable[..., R]] = None, *, name: Optional[str] = None,
             queue: Optional[str] = None, priority: int = 0,
             retries: Optional[int] = None, timeout: Optional[Seconds] = None) -> Any:
        """Registers a function as a task: ``@app.task`` or ``@app.task(...)``.

        ``retries`` counts retries after the first attempt (as Celery's
        ``max_retries``); a function may raise :class:`taskd.Retryable` or
        :class:`taskd.Fatal` to choose.
        """
        if name is not None:
            check_type_name(name, "name")
        if queue is not None:
            check_queue(queue)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
            raise ValueError(f"priority: must be an int in 0..9, got {priority!r}")

        def register(func: Callable[..., R]) -> TaskFunction[R]:
            if not callable(func):
                raise TypeError(f"fn: expected a function, got {type(func).__name__}")
            task_name = name or default_name(func)
            check_type_name(task_name, "name")
            if task_name in self.tasks:
                raise ValueError(f"name: a task named {task_name!r} is already registered")
            options: Dict[str, Any] = {"priority": priority}
            if queue or self.queue:
                options["queue"] = queue or self.queue
            if retries is not None:
                options["retries"] = retries
            if timeout is not None:
                options["timeout"] = timeout
            task = TaskFunction(self, func, task_name, options)
            self.tasks[task_name] = task
            return task

        return register(fn) if fn is not None else register

    def submit_many(self, calls: Sequence[Mapping[str, Any]]) -> List[TaskFuture]:
        """Submits calls made with ``task.s(...)`` in one atomic batch; the
        futures give decoded results."""
        return self.client.submit_many(list(calls), decode=decode_result)

    def worker(self, *, queues: Optional[Iterable[str]] = None, concurrency: int = 4,
               **worker_options: Any) -> Worker:
        """A :class:`taskd.Worker` serving every registered task.

        ``queues`` defaults to every queue the tasks name; the app's TLS and
        token options apply unless ``worker_options`` gives them.
        """
        if not self.tasks:
            raise ValueError("tasks: register at least one @app.task first")
        if queues is None:
            queues = sorted({t.options.get("queue", "default") for t in self.tasks.values()})
        s = self.security
        security = dict(tls=s.tls, tls_ca=s.tls_ca, tls_cert=s.tls_cert, tls_key=s.tls_key,
                        token=s.token)
        worker = Worker(self.target, queues=queues, concurrency=concurrency,
                        **{**security, **worker_options})
        for task in self.tasks.values():
            worker.add_handler(task.name, _handler_for(task))
        return worker


def _handler_for(task: TaskFunction[Any]) -> Callable[[TaskContext], Any]:
    if inspect.iscoroutinefunction(task.fn):
        async def run_async(ctx: TaskContext) -> bytes:
            args, kwargs = _decode_call(ctx.payload)
            return encode_result(await task.fn(*args, **kwargs))
        return run_async
    return task.handle


__all__: List[str] = ["App", "TaskFunction", "decode_result", "encode_call"]
