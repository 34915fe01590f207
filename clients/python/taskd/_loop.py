"""Event-loop set-up shared by the asyncio client and the worker."""

from __future__ import annotations

import asyncio
from typing import Any, Dict


def _quiet_poller_races(loop: asyncio.AbstractEventLoop, context: Dict[str, Any]) -> None:
    # grpc.aio binds every event loop of the process to one notification
    # socket; with loops in several threads (a worker thread next to an
    # asyncio client), the loops that lose the race for a wake-up byte get
    # BlockingIOError. It is harmless (grpc/grpc#25364), so it is not logged.
    if isinstance(context.get("exception"), BlockingIOError) and \
            "PollerCompletionQueue" in repr(context.get("handle")):
        return
    loop.default_exception_handler(context)


def quiet_grpc_poller(loop: asyncio.AbstractEventLoop) -> None:
    """Installs the filter above, unless the loop has its own handler."""
    if loop.get_exception_handler() is None:
        loop.set_exception_handler(_quiet_poller_races)
