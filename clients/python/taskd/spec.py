"""Turns keyword arguments into a ``TaskSpec``, checking each one locally.

Shared by the sync client, the asyncio client and the Celery-style layer so
that a bad argument fails the same way everywhere: ``TypeError`` for a value
of the wrong type, :class:`taskd.InvalidArgument` (a ``ValueError``) for a
value out of range, each naming the argument.
"""

from __future__ import annotations

import datetime
import re
from typing import Iterable, Mapping, Optional, Sequence, TypedDict, Union

from taskd.errors import InvalidArgument
from taskd.v1 import taskd_pb2 as pb

#: Seconds as a number, or a ``datetime.timedelta``.
Seconds = Union[int, float, datetime.timedelta]
#: What a payload may be given as; ``str`` is encoded as UTF-8.
Payload = Union[bytes, bytearray, memoryview, str]

_QUEUE_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_TYPE_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
MAX_BATCH = 1000


def _bad(argument: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"{argument}: {message}", argument=argument)


class SubmitOptions(TypedDict, total=False):
    """The keyword options of a submit; see :meth:`taskd.Client.submit`."""

    queue: Optional[str]
    priority: int
    delay: Optional[Seconds]
    run_at: Optional[datetime.datetime]
    timeout: Optional[Seconds]
    heartbeat_timeout: Optional[Seconds]
    retries: Optional[int]
    key: Optional[str]
    depends_on: Optional[Iterable[object]]
    labels: Optional[Mapping[str, str]]
    result_ttl: Optional[Seconds]


def _check_name(value: object, argument: str, pattern: "re.Pattern[str]",
                rule: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{argument}: expected str, got {type(value).__name__}")
    if not pattern.fullmatch(value):
        raise _bad(argument, f"{value!r} is not {rule}")
    return value


def check_type_name(task_type: object, argument: str = "type") -> str:
    """Returns ``task_type`` if it is a valid task type name, else raises."""
    return _check_name(task_type, argument, _TYPE_RE, "1-128 of [A-Za-z0-9_.:/-]")


def check_queue(queue: object, argument: str = "queue") -> str:
    """Returns ``queue`` if it is a valid queue name, else raises."""
    return _check_name(queue, argument, _QUEUE_RE, "1-64 of [A-Za-z0-9_.:-]")


def to_bytes(value: object, argument: str) -> bytes:
    """Bytes of a payload or result given as bytes-like or str."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"{argument}: expected bytes or str, got {type(value).__name__}")


def to_seconds(value: object, argument: str) -> float:
    """Non-negative seconds from a number or a timedelta."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"{argument}: expected seconds (int, float or timedelta), "
            f"got {type(value).__name__}")
    if not seconds >= 0:  # also rejects NaN
        raise _bad(argument, f"must be >= 0 seconds, got {value!r}")
    return seconds


def set_duration(target: object, seconds: float) -> None:
    """Stores ``seconds`` into a google.protobuf.Duration."""
    whole = int(seconds)
    target.seconds = whole  # type: ignore[attr-defined]
    target.nanos = int(round((seconds - whole) * 1e9))  # type: ignore[attr-defined]


def build_spec(
    task_type: str,
    payload: Payload = b"",
    *,
    queue: Optional[str] = None,
    priority: int = 0,
    delay: Optional[Seconds] = None,
    run_at: Optional[datetime.datetime] = None,
    timeout: Optional[Seconds] = None,
    heartbeat_timeout: Optional[Seconds] = None,
    retries: Optional[int] = None,
    key: Optional[str] = None,
    depends_on: Optional[Iterable[object]] = None,
    labels: Optional[Mapping[str, str]] = None,
    result_ttl: Optional[Seconds] = None,
) -> pb.TaskSpec:
    """Builds a TaskSpec; see :meth:`taskd.Client.submit` for the arguments."""
    spec = pb.TaskSpec(type=check_type_name(task_type))
    spec.payload = to_bytes(payload, "payload")
    if queue is not None:
        spec.queue = check_queue(queue)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority: expected int, got {type(priority).__name__}")
    if not 0 <= priority <= 9:
        raise _bad("priority", f"must be in 0..9, got {priority}")
    spec.priority = priority
    if delay is not None and run_at is not None:
        raise _bad("delay", "give at most one of delay and run_at")
    if delay is not None:
        set_duration(spec.delay, to_seconds(delay, "delay"))
    if run_at is not None:
        if not isinstance(run_at, datetime.datetime):
            raise TypeError(f"run_at: expected datetime, got {type(run_at).__name__}")
        if run_at.tzinfo is None:
            raise _bad("run_at", "must be timezone-aware (e.g. tz=timezone.utc)")
        spec.run_at.FromDatetime(run_at.astimezone(datetime.timezone.utc))
    if timeout is not None:
        set_duration(spec.timeout, to_seconds(timeout, "timeout"))
    if heartbeat_timeout is not None:
        set_duration(spec.heartbeat_timeout,
                     to_seconds(heartbeat_timeout, "heartbeat_timeout"))
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise TypeError(f"retries: expected int, got {type(retries).__name__}")
        if retries < 0:
            raise _bad("retries", f"must be >= 0, got {retries}")
        spec.retry.max_attempts = retries + 1
    if key is not None:
        if not isinstance(key, str):
            raise TypeError(f"key: expected str, got {type(key).__name__}")
        if not key:
            raise _bad("key", "must not be empty")
        spec.idempotency_key = key
    if depends_on is not None:
        if isinstance(depends_on, (str, bytes)):
            raise TypeError("depends_on: expected a list of task ids or futures, "
                            "got a single string")
        spec.depends_on.extend(task_id(d, "depends_on") for d in depends_on)
    if labels is not None:
        if not isinstance(labels, Mapping):
            raise TypeError(f"labels: expected a mapping, got {type(labels).__name__}")
        for name, value in labels.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("labels: keys and values must be str")
            spec.labels[name] = value
    if result_ttl is not None:
        set_duration(spec.result_ttl, to_seconds(result_ttl, "result_ttl"))
    return spec


def task_id(value: object, argument: str = "task_id") -> str:
    """The id of a task given as a string or as anything with an ``id``."""
    found = getattr(value, "id", value)
    if not isinstance(found, str):
        raise TypeError(f"{argument}: expected a task id or a future, "
                        f"got {type(value).__name__}")
    if not found:
        raise _bad(argument, "empty task id")
    return found


def check_batch(specs: Sequence[object], argument: str = "specs") -> None:
    """Checks the size of a SubmitTasks batch."""
    if not 1 <= len(specs) <= MAX_BATCH:
        raise _bad(argument, f"a batch holds 1..{MAX_BATCH} tasks, got {len(specs)}")
