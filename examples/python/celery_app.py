"""The Celery-style layer: @app.task, .delay(), .apply_async(), a worker.

    cd examples/python
    python3 -m taskd.worker celery_app:app     # terminal 1: serves every task
    python3 celery_app.py                      # terminal 2: calls them
"""

import os

import taskd

app = taskd.App(os.environ.get("TASKD_TARGET", "127.0.0.1:50051"))


@app.task(queue="math", retries=3)
def add(x: int, y: int) -> int:
    return x + y


@app.task(queue="math")
def mul(x: int, y: int) -> int:
    return x * y


if __name__ == "__main__":
    print("add.delay(2, 3) =", add.delay(2, 3).result(timeout=10))
    later = add.apply_async((20, 22), countdown=1, priority=9)
    print("apply_async countdown=1 ->", later.get(timeout=10))
    squares = app.submit_many([mul.s(i, i) for i in range(10)])
    print("squares:", [f.result(timeout=10) for f in squares])
    app.close()
