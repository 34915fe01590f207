#!/bin/sh
# Runs one module of the Python test suite (tests.<name>) under Bazel, with
# the real taskd server binary from the runfiles. Usage: run_unittest.sh NAME
set -eu
cd "${TEST_SRCDIR:?}/${TEST_WORKSPACE:?}"
export TASKD_BIN="$PWD/services/taskd"
export PYTHONPATH="$PWD/clients/python"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m unittest -v "tests.$1"
