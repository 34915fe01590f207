"""taskd for Python: futures over gRPC, an asyncio client, workers, Celery-style tasks.

    import taskd

    client = taskd.Client("127.0.0.1:50051")
    future = client.submit("resize", b"photo.jpg")
    future.result(timeout=60)

See :class:`Client` (concurrent.futures), :mod:`taskd.aio` (asyncio),
:class:`Worker` (serving tasks) and :class:`App` (``@app.task``, ``.delay()``).
"""

from taskd.errors import (AlreadyExists, DeadlineExceeded, FailedPrecondition, Fatal,
                          InvalidArgument, NotFound, PermissionDenied, ResourceExhausted,
                          Retryable, TaskCancelled, TaskdError, TaskFailed, Unauthenticated,
                          Unavailable)
from taskd.client import Client, EventStream
from taskd.futures import TaskFuture
from taskd.spec import build_spec as task_spec
from taskd.worker import TaskContext, Worker
from taskd.app import App, TaskFunction
from taskd.v1.taskd_pb2 import EventType, Task, TaskEvent, TaskSpec, TaskState

__all__ = [
    "AlreadyExists", "App", "TaskFunction", "Client", "DeadlineExceeded", "EventStream", "EventType",
    "FailedPrecondition", "Fatal", "InvalidArgument", "NotFound", "PermissionDenied",
    "ResourceExhausted", "Unauthenticated",
    "Retryable", "Task", "TaskCancelled", "TaskEvent", "TaskFailed", "TaskFuture",
    "TaskContext", "TaskSpec", "TaskState", "TaskdError", "Unavailable", "Worker",
    "task_spec",
]
