#!/bin/bash
# The cross-language test under Bazel: taskctl, the Python package and the
# generated reflection/descriptor files come from the runfiles; taskd and the
# Node package are set up by clients/node/node_test.sh (tagged `local`: the
# Node package's node_modules stay in its source folder).
set -euo pipefail

runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "cross_language: /usr/bin/python3 lacks grpc: apt-get install python3-grpcio python3-protobuf" >&2
  exit 1
fi
export TASKCTL_BIN="${runfiles}/clients/cpp/taskctl"
export XL_DIR="${runfiles}/tests/cross_language"
export PYTHONPATH="${runfiles}/clients/python:${XL_DIR}"
export PYTHONDONTWRITEBYTECODE=1
exec "${runfiles}/clients/node/node_test.sh" "${XL_DIR}/cross_language.test.js"
