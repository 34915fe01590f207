#!/bin/bash
# Runs statefulset_args_test.py with Debian's python3 (python3-grpcio,
# python3-yaml), not whatever python3 comes first on PATH.
set -euo pipefail
if ! /usr/bin/python3 -c 'import grpc, yaml' 2>/dev/null; then
  echo "FAIL: /usr/bin/python3 lacks grpc or yaml: apt-get install python3-grpcio python3-yaml (make deps)" >&2
  exit 1
fi
exec /usr/bin/python3 "${TEST_SRCDIR}/${TEST_WORKSPACE}/tests/k8s/statefulset_args_test.py"
