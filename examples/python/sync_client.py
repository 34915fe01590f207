"""Submit, await, wait for the first, cancel: the sync client.

    python3 examples/python/sync_client.py    (with worker_progress running)
"""

import concurrent.futures as cf
import os

import taskd

TARGET = os.environ.get("TASKD_TARGET", "127.0.0.1:50051")

with taskd.Client(TARGET) as client:
    # submit() returns a concurrent.futures.Future at once.
    future = client.submit("upper", b"hello taskd")
    print("result:", future.result(timeout=30))

    # Standard concurrent.futures tools work on TaskFutures.
    photos = [client.submit("resize", f"photo-{i}.jpg", priority=i) for i in range(4)]
    done, _ = cf.wait(photos, timeout=30, return_when=cf.FIRST_COMPLETED)
    print("first done:", next(iter(done)).result())
    for finished in cf.as_completed(photos, timeout=30):
        print("done:", finished.result())

    # Progress arrives as events.
    watched = client.submit("resize", b"big.png")
    for event in client.stream([watched]):
        if event.type == taskd.EventType.Value("EVENT_TYPE_PROGRESS"):
            print(f"progress: {event.task.progress.percent}% {event.task.progress.message}")
    print("watched:", watched.result(timeout=30))

    # cancel() asks the server; a running task ends CANCELLED when its worker stops it.
    sleeper = client.submit("sleep")
    sleeper.cancel("not needed")
    try:
        sleeper.result(timeout=30)
    except taskd.TaskCancelled as cancelled:
        print("cancelled:", cancelled.code, cancelled.error.message)
