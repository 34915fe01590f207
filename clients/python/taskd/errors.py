"""Exceptions raised by the taskd client, the asyncio client and the worker SDK.

Every failure a caller can meet is a :class:`TaskdError`; gRPC errors never
escape raw. A task that ended badly is reported with :class:`TaskFailed` or
:class:`TaskCancelled`, both carrying the server's ``TaskError``. A handler in
a worker raises :class:`Retryable` or :class:`Fatal` to choose whether the
server may run the task again.
"""

from __future__ import annotations

import concurrent.futures
from typing import Optional

import grpc

from taskd.v1 import taskd_pb2 as pb


class TaskdError(Exception):
    """Base class of every exception the taskd package raises."""


class Unavailable(TaskdError):
    """The server cannot be reached, or it is shutting down."""


class InvalidArgument(TaskdError, ValueError):
    """An argument was rejected, locally or by the server.

    ``argument`` names the offending argument (or the server's field path)
    when it is known.
    """

    def __init__(self, message: str, argument: Optional[str] = None) -> None:
        super().__init__(message)
        self.argument = argument


class NotFound(TaskdError, LookupError):
    """No task (or schedule) has the given id, or it is no longer retained."""


class AlreadyExists(TaskdError):
    """The id is taken (schedules)."""


class ResourceExhausted(TaskdError):
    """A server limit was reached (task count, payload size, slow consumer)."""


class FailedPrecondition(TaskdError):
    """The server refused the call in its current state."""


class DeadlineExceeded(TaskdError, TimeoutError):
    """The call's deadline passed before the server answered."""


class Unauthenticated(TaskdError):
    """No token, or one the server does not know (``token``, ``$TASKD_TOKEN``)."""


class PermissionDenied(TaskdError):
    """The token lacks the role, or the queue is outside its scope."""


class TaskFailed(TaskdError):
    """The task ended FAILED. ``task`` is its final record, ``error`` its TaskError."""

    def __init__(self, task: pb.Task) -> None:
        self.task = task
        self.error: pb.TaskError = task.error
        self.code: str = task.error.code
        text = f"task {task.id} {self._verb}"
        if task.error.code:
            text += f": {task.error.code}"
        if task.error.message:
            text += f": {task.error.message}"
        super().__init__(text)

    _verb = "failed"


class TaskCancelled(TaskFailed, concurrent.futures.CancelledError):
    """The task ended CANCELLED (by a cancel, a purge or a failed dependency).

    It is also a :class:`concurrent.futures.CancelledError`, so code written
    for plain futures that catches that keeps working.
    """

    _verb = "was cancelled"


class HandlerFailure(Exception):
    """Base of what a worker's handler raises to fail a task on purpose.

    ``code``, ``message`` and ``details`` become the task's TaskError.
    """

    default_code = "failed"

    def __init__(self, message: str = "", code: Optional[str] = None,
                 details: str = "") -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.details = details


class Retryable(HandlerFailure):
    """Raised by a handler: fail this attempt, and let the server retry it.

    ``code`` defaults to ``"retryable"``. Any other exception a handler
    raises is treated the same way with code ``"handler_exception"``; the
    task's retry budget decides.
    """

    default_code = "retryable"


class Fatal(HandlerFailure):
    """Raised by a handler: fail the task now, without any further attempt."""

    default_code = "fatal"


_BY_CODE = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def from_rpc_error(error: grpc.RpcError, call: str) -> TaskdError:
    """Translates a gRPC error raised by ``call`` into a :class:`TaskdError`.

    The one place where gRPC status codes become Python exceptions.
    """
    code = error.code() if hasattr(error, "code") else None
    detail = error.details() if hasattr(error, "details") else str(error)
    message = f"{call}: {detail}" if detail else f"{call}: {code}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field = (detail or "").split(":", 1)[0].strip() or None
        return InvalidArgument(message, argument=field)
    if code == grpc.StatusCode.CANCELLED and "Channel closed" in (detail or ""):
        return Unavailable(message)
    cls = _BY_CODE.get(code, TaskdError)  # type: ignore[arg-type]
    return cls(message)


def task_outcome_error(task: pb.Task) -> Optional[TaskFailed]:
    """The exception a terminal, unsuccessful ``task`` resolves to, else None."""
    if task.state == pb.TASK_STATE_FAILED:
        return TaskFailed(task)
    if task.state == pb.TASK_STATE_CANCELLED:
        return TaskCancelled(task)
    return None
