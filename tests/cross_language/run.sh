#!/bin/bash
# The cross-language test under Bazel: taskd, taskctl, the Python package and
# the generated reflection/descriptor files come from the runfiles; the Node
# package is its source folder (node_modules from `make node-deps`), found by
# resolving a runfile symlink. Tagged `local` for that reason.
set -euo pipefail

runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
node_pkg="$(dirname "$(readlink -f "${runfiles}/clients/node/package.json")")"
if [[ ! -d "${node_pkg}/node_modules/@grpc/grpc-js" ]]; then
  echo "cross_language: ${node_pkg}/node_modules is missing: run 'make node-deps' first" >&2
  exit 1
fi
if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "cross_language: /usr/bin/python3 lacks grpc: apt-get install python3-grpcio python3-protobuf" >&2
  exit 1
fi
export TASKD_BIN="${runfiles}/services/taskd"
export TASKCTL_BIN="${runfiles}/clients/cpp/taskctl"
export TASKD_NODE_PACKAGE="${node_pkg}"
export XL_DIR="${runfiles}/tests/cross_language"
export PYTHONPATH="${runfiles}/clients/python:${XL_DIR}"
export PYTHONDONTWRITEBYTECODE=1
exec node --test --test-reporter=spec "${XL_DIR}/cross_language.test.js"
