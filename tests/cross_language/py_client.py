"""The Python side of the cross-language test, as a client (package taskd).

    py_client.py TARGET submit TYPE PAYLOAD QUEUE   -> prints the task id
    py_client.py TARGET cancel ID REASON            -> prints the state after
"""

import sys

import taskd


def main(target, command, *args):
    with taskd.Client(target) as client:
        if command == "submit":
            task_type, payload, queue = args
            print(client.submit(task_type, payload.encode(), queue=queue).id)
        elif command == "cancel":
            task_id, reason = args
            task = client.cancel(task_id, reason)
            print(taskd.TaskState.Name(task.state))
        else:
            raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
