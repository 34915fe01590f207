"""``python3 -m taskd.worker module:attr`` runs a Worker (or an App's worker).

``attr`` names a :class:`taskd.Worker`, a :class:`taskd.App` (its ``worker()``
serves every registered task) or a function returning either. SIGTERM or
SIGINT stops it gracefully: running handlers may finish within ``--grace``
seconds, the rest fail as retryable (another worker runs them), then the
stream is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import dataclasses
import sys
from typing import List, Optional

from taskd.security import channel_credentials
from taskd.worker import Worker


def load_worker(spec: str) -> Worker:
    """The Worker named by ``module:attr``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"worker: expected module:attribute, got {spec!r}")
    module = importlib.import_module(module_name)
    try:
        found = getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"worker: module {module_name} has no attribute {attr!r}") from None
    if callable(found) and not isinstance(found, Worker) and not hasattr(found, "worker"):
        found = found()
    if hasattr(found, "worker") and not isinstance(found, Worker):
        found = found.worker()  # a taskd.App
    if not isinstance(found, Worker):
        raise SystemExit(f"worker: {spec} is a {type(found).__name__}, not a taskd.Worker")
    return found


async def serve(worker: Worker) -> None:
    """Serves until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.serve()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m taskd.worker",
                                     description="Run a taskd Python worker.")
    parser.add_argument("worker", help="module:attribute of a taskd.Worker or taskd.App")
    parser.add_argument("--grace", type=float, default=None,
                        help="seconds running tasks may finish after SIGTERM")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--tls-ca", help="PEM file of the CA that signed the server's "
                        "certificate (turns TLS on)")
    parser.add_argument("--tls-cert", help="PEM client certificate (mTLS), with --tls-key")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--token", help="bearer token (default $TASKD_TOKEN)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.path.insert(0, os.getcwd())
    worker = load_worker(args.worker)
    if args.grace is not None:
        if args.grace < 0:
            parser.error("--grace: must be >= 0")
        worker.grace = args.grace
    overrides = {name: getattr(args, name) for name in ("tls_ca", "tls_cert", "tls_key", "token")
                 if getattr(args, name) is not None}
    if overrides:
        worker.security = dataclasses.replace(worker.security, **overrides)
        if bool(worker.security.tls_cert) != bool(worker.security.tls_key):
            parser.error("--tls-cert and --tls-key go together")
        try:
            channel_credentials(worker.target, worker.security)
        except ValueError as exc:
            parser.error(str(exc))
    logging.getLogger("taskd.worker").info(
        "worker %s serving %s on %s (concurrency %d)", worker.worker_id,
        ",".join(worker.types), worker.target, worker.concurrency)
    asyncio.run(serve(worker))
    if worker.busy_threads:
        # A handler ignored `cancelled`; its task was already failed as
        # retryable, so do not wait for the thread.
        logging.getLogger("taskd.worker").warning("exiting with a handler still running")
        sys.stdout.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
