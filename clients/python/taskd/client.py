"""The synchronous taskd client: submit tasks and get futures back.

    import taskd

    with taskd.Client("127.0.0.1:50051") as client:
        future = client.submit("resize", b"photo.jpg", priority=5, timeout=30)
        print(future.result(timeout=60))          # the result bytes

A :class:`Client` is safe to use from many threads at once. It holds one gRPC
channel and, once the first future exists, one event stream that completes
every future it hands out (see :mod:`taskd.futures`).
"""

from __future__ import annotations

from typing import (TYPE_CHECKING, Any, Callable, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Tuple, TypeVar, Union)

import grpc

from taskd.errors import TaskdError, from_rpc_error
from taskd.futures import ThreadedWatcher, TaskFuture
from taskd.security import make_security, secure_channel
from taskd.spec import Payload, SubmitOptions, build_spec, check_batch, check_queue, task_id

if TYPE_CHECKING:
    from typing import Unpack
from taskd.v1 import taskd_pb2 as pb
from taskd.v1 import taskd_pb2_grpc as pb_grpc

T = TypeVar("T")
#: A task named by its id, or by anything with an ``id`` (a future, a Task).
TaskRef = Union[str, Any]
#: One element of :meth:`Client.submit_many`.
SpecLike = Union[pb.TaskSpec, Mapping[str, Any], Tuple[str, Payload]]

DEFAULT_TARGET = "127.0.0.1:50051"


def call_rpc(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs one gRPC call, turning every failure into a TaskdError."""
    try:
        return fn(*args, **kwargs)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc, name) from None
    except ValueError as exc:
        if "closed channel" in str(exc):
            raise TaskdError(f"{name}: the client is closed") from None
        raise


def check_client_options(target: object, rpc_timeout: float,
                         reconnect_timeout: float) -> str:
    """Checks the arguments both clients take; returns the target."""
    if not isinstance(target, str) or not target:
        raise TypeError("target: expected 'host:port'")
    if rpc_timeout <= 0:
        raise ValueError(f"rpc_timeout: must be > 0, got {rpc_timeout!r}")
    if reconnect_timeout <= 0:
        raise ValueError(f"reconnect_timeout: must be > 0, got {reconnect_timeout!r}")
    return target


def to_spec(item: SpecLike, index: int) -> pb.TaskSpec:
    """A TaskSpec from one element of a submit_many list."""
    if isinstance(item, pb.TaskSpec):
        return item
    try:
        if isinstance(item, Mapping):
            fields = dict(item)
            task_type = fields.pop("type", None)
            if task_type is None:
                raise TypeError("missing 'type'")
            return build_spec(task_type, **fields)
        if isinstance(item, tuple) and len(item) == 2:
            return build_spec(item[0], item[1])
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"tasks[{index}]: {exc}") from None
    raise TypeError(f"tasks[{index}]: expected a TaskSpec, a dict of submit() "
                    f"arguments or a (type, payload) tuple, got {type(item).__name__}")


def stream_request(ids: Optional[Iterable[TaskRef]], queue: Optional[str],
                   from_sequence: int, include_payloads: bool) -> pb.StreamRequest:
    """A checked StreamRequest (see :meth:`Client.stream`)."""
    request = pb.StreamRequest(include_payloads=bool(include_payloads))
    if ids is not None:
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids: expected a list of task ids, got a single string")
        request.ids.extend(task_id(i, "ids") for i in ids)
    if queue is not None:
        request.queue = check_queue(queue)
    if isinstance(from_sequence, bool) or not isinstance(from_sequence, int) \
            or from_sequence < 0:
        raise ValueError(f"from_sequence: must be an int >= 0, got {from_sequence!r}")
    request.from_sequence = from_sequence
    return request


def list_request(queue: Optional[str], states: Optional[Iterable[Union[int, str]]],
                 page_size: int) -> pb.ListTasksRequest:
    """A checked ListTasksRequest."""
    request = pb.ListTasksRequest(page_size=page_size, states=parse_states(states))
    if queue is not None:
        request.queue = check_queue(queue)
    return request


def check_limit(limit: Optional[int]) -> None:
    """``limit`` of list(): a positive int or None."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ValueError(f"limit: must be a positive int or None, got {limit!r}")


def parse_states(states: Optional[Iterable[Union[int, str]]]) -> List[Any]:
    """TaskState values from enum numbers or names ("pending", "TASK_STATE_PENDING")."""
    out: List[Any] = []  # TaskState values
    for state in states or ():
        if isinstance(state, str):
            name = state.upper()
            if not name.startswith("TASK_STATE_"):
                name = "TASK_STATE_" + name
            try:
                out.append(pb.TaskState.Value(name))
            except ValueError:
                raise ValueError(f"states: unknown task state {state!r}") from None
        elif isinstance(state, int) and state in pb.TaskState.values():
            out.append(state)
        else:
            raise ValueError(f"states: unknown task state {state!r}")
    return out


class EventStream:
    """An iterator over TaskEvents of one Stream call; ``cancel()`` ends it.

    Iterating raises :class:`taskd.Unavailable` (or another TaskdError) if the
    stream breaks; it simply stops when the server ends it normally.
    """

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[pb.TaskEvent]:
        try:
            for event in self._call:
                yield event
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self._call.cancelled():
                return
            raise from_rpc_error(exc, "Stream") from None

    def cancel(self) -> None:
        """Ends the stream; iteration stops."""
        self._call.cancel()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class Client:
    """A connection to one taskd server (thread-safe; use one per process).

    Args:
      target: ``host:port`` of the server.
      rpc_timeout: deadline in seconds of each unary call.
      reconnect_timeout: how long outstanding futures wait for a server that
        cannot be reached before they fail with :class:`taskd.Unavailable`.
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
        self._channel = secure_channel(target, self.security, list(options))
        self._stub = pb_grpc.TaskServiceStub(self._channel)
        self._watcher = ThreadedWatcher(self._stub, reconnect_timeout, self._cancel_raw)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Closes the connection; futures still outstanding fail with TaskdError."""
        self._watcher.close()
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ submitting

    def submit(self, type: str, payload: Payload = b"", *,
               decode: Optional[Callable[[bytes], Any]] = None,
               **options: Unpack[SubmitOptions]) -> TaskFuture:
        """Submits one task and returns its future at once.

        Args:
          type: the task type a worker dispatches on, e.g. ``"resize"``.
          payload: the task's arguments (bytes; a str is sent as UTF-8).
          queue: queue name (default ``"default"``).
          priority: 0..9, higher runs first within the queue.
          delay: start no earlier than this many seconds from now
            (or a ``timedelta``); ``run_at`` gives an absolute, aware datetime.
          timeout: execution limit of each attempt, in seconds.
          heartbeat_timeout: lease length of a running attempt.
          retries: retries after the first attempt (``retries=2``: at most 3
            attempts); the server default is 2.
          key: idempotency key; a second submit with the same key returns
            the first task (``future.deduplicated`` is True).
          depends_on: task ids (or futures) that must all succeed first.
          labels: free str→str metadata.
          result_ttl: how long the finished task is retained, in seconds.
          decode: applied to the result bytes by ``future.result()``.

        Raises:
          TypeError / taskd.InvalidArgument: a bad argument (named).
          taskd.Unavailable: the server cannot be reached.
        """
        return self.submit_spec(build_spec(type, payload, **options), decode=decode)

    def submit_spec(self, spec: pb.TaskSpec,
                    decode: Optional[Callable[[bytes], Any]] = None) -> TaskFuture:
        """Submits a ready-made TaskSpec (see :func:`taskd.task_spec`)."""
        response = call_rpc("SubmitTask", self._stub.SubmitTask,
                            pb.SubmitTaskRequest(task=spec), timeout=self._rpc_timeout)
        future = TaskFuture(response.task, self._watcher, decode,
                            deduplicated=response.deduplicated)
        self._watcher.add(future)
        return future

    def submit_many(self, tasks: Sequence[SpecLike],
                    decode: Optional[Callable[[bytes], Any]] = None) -> List[TaskFuture]:
        """Submits up to 1000 tasks in one atomic SubmitTasks call.

        Each element is a TaskSpec (:func:`taskd.task_spec`), a dict of
        :meth:`submit` arguments including ``"type"``, or a ``(type, payload)``
        tuple. Either every task is created or none is (an invalid one raises
        InvalidArgument naming its index). Returns the futures in order.
        """
        if isinstance(tasks, (str, bytes)) or not isinstance(tasks, Sequence):
            raise TypeError("tasks: expected a list of tasks")
        check_batch(tasks, "tasks")
        specs = [to_spec(item, i) for i, item in enumerate(tasks)]
        response = call_rpc("SubmitTasks", self._stub.SubmitTasks,
                            pb.SubmitTasksRequest(tasks=specs), timeout=self._rpc_timeout)
        futures = [TaskFuture(task, self._watcher, decode) for task in response.tasks]
        for future in futures:
            self._watcher.add(future)
        return futures

    def future(self, task: TaskRef,
               decode: Optional[Callable[[bytes], Any]] = None) -> TaskFuture:
        """A future for a task submitted earlier (by id), e.g. by another process."""
        record = self.get(task)
        future = TaskFuture(record, self._watcher, decode)
        self._watcher.add(future)
        return future

    # ------------------------------------------------------------ reading

    def get(self, task: TaskRef) -> pb.Task:
        """The task's current record (with its result once it succeeded).

        Raises taskd.NotFound for an unknown (or expired) id.
        """
        request = pb.GetTaskRequest(id=task_id(task, "task"))
        return call_rpc("GetTask", self._stub.GetTask, request, timeout=self._rpc_timeout)

    def list(self, queue: Optional[str] = None,
             states: Optional[Iterable[Union[int, str]]] = None,
             limit: Optional[int] = 100) -> List[pb.Task]:
        """Tasks, oldest first, at most ``limit`` (None: all, page by page).

        ``states`` filters by state: names like ``"pending"`` or TaskState values.
        Payloads and results are not included (use :meth:`get`).
        """
        check_limit(limit)
        out: List[pb.Task] = []
        for task in self.iter_tasks(queue=queue, states=states):
            out.append(task)
            if limit is not None and len(out) >= limit:
                break
        return out

    def iter_tasks(self, queue: Optional[str] = None,
                   states: Optional[Iterable[Union[int, str]]] = None,
                   page_size: int = 500) -> Iterator[pb.Task]:
        """Every matching task, fetching one page at a time."""
        request = list_request(queue, states, page_size)
        while True:
            response = call_rpc("ListTasks", self._stub.ListTasks, request,
                                timeout=self._rpc_timeout)
            yield from response.tasks
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def stream(self, ids: Optional[Iterable[TaskRef]] = None, *,
               queue: Optional[str] = None, from_sequence: int = 0,
               include_payloads: bool = False) -> EventStream:
        """Task events as they happen: for ``ids``, else ``queue``, else all.

        With ``ids`` the iteration ends once every listed task has finished.
        ``from_sequence`` > 0 replays from that event sequence number.
        """
        request = stream_request(ids, queue, from_sequence, include_payloads)
        call = call_rpc("Stream", self._stub.Stream, request)
        return EventStream(call)

    # ------------------------------------------------------------ cancelling

    def cancel(self, task: TaskRef, reason: str = "") -> pb.Task:
        """Cancels a task (see :meth:`TaskFuture.cancel`); returns its record.

        Idempotent: a finished task is returned unchanged.
        """
        record = self._cancel_raw(task_id(task, "task"), reason)
        self._watcher.resolve(record)
        return record

    def _cancel_raw(self, tid: str, reason: str) -> pb.Task:
        if not isinstance(reason, str):
            raise TypeError(f"reason: expected str, got {type(reason).__name__}")
        return call_rpc("Cancel", self._stub.Cancel, pb.CancelRequest(id=tid, reason=reason),
                        timeout=self._rpc_timeout)
