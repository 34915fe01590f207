"""The checked-in gRPC stubs match api/taskd/v1/taskd.proto.

They are regenerated with Debian's protoc and grpc_python_plugin into a
temporary directory and compared byte for byte; on a difference, run
``make python-stubs`` and commit the result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unittest

from tests.harness import PACKAGE_ROOT, REPO_ROOT

PROTO = os.path.join("taskd", "v1", "taskd.proto")
GENERATED = ("taskd_pb2.py", "taskd_pb2.pyi", "taskd_pb2_grpc.py")


def generate(out_dir: str) -> None:
    """Runs protoc exactly as mk/python.mk's python-stubs target does."""
    plugin = shutil.which("grpc_python_plugin")
    if plugin is None:
        raise RuntimeError("grpc_python_plugin not found (Debian protobuf-compiler-grpc)")
    subprocess.run(["protoc", "--proto_path=" + os.path.join(REPO_ROOT, "api"),
                    "--proto_path=/usr/include", "--python_out=" + out_dir,
                    "--pyi_out=" + out_dir,
                    "--grpc_python_out=" + out_dir,
                    "--plugin=protoc-gen-grpc_python=" + plugin,
                    os.path.join(REPO_ROOT, "api", PROTO)], check=True)


class StubsTest(unittest.TestCase):
    def test_checked_in_stubs_are_current(self) -> None:
        with tempfile.TemporaryDirectory() as out_dir:
            generate(out_dir)
            for name in GENERATED:
                with self.subTest(file=name):
                    with open(os.path.join(out_dir, "taskd", "v1", name), "rb") as f:
                        fresh = f.read()
                    with open(os.path.join(PACKAGE_ROOT, "taskd", "v1", name), "rb") as f:
                        checked_in = f.read()
                    self.assertEqual(
                        fresh, checked_in,
                        f"clients/python/taskd/v1/{name} is stale: run `make python-stubs`")

    def test_package_imports_without_the_build(self) -> None:
        import taskd
        self.assertTrue(hasattr(taskd.v1.taskd_pb2, "TaskSpec"))
        self.assertTrue(os.path.exists(os.path.join(PACKAGE_ROOT, "taskd", "py.typed")))


if __name__ == "__main__":
    unittest.main()
