"""The no-op job of `make bench-peers` for RQ, importable by its workers as
rq_tasks.noop (RQ enqueues a function by its dotted name)."""


def noop(x: int) -> int:
    return x
