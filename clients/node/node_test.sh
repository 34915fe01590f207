#!/bin/bash
# Runs Node test files (the arguments: relative to the package, or absolute)
# with `node --test`, against the taskd binary from the runfiles. Also used
# by tests/cross_language/run.sh.
#
# The test is tagged `local`: node_modules is not a Bazel input, it stays in
# the package's source folder (`make node-deps` = npm ci), found here by
# resolving a runfile symlink back to the source tree.
set -euo pipefail

runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
pkg="$(dirname "$(readlink -f "${runfiles}/clients/node/package.json")")"
if [[ ! -d "${pkg}/node_modules/@grpc/grpc-js" ]]; then
  echo "node_test: ${pkg}/node_modules is missing: run 'make node-deps' (npm ci) first" >&2
  exit 1
fi
export TASKD_BIN="${runfiles}/services/taskd"
export TASKD_API_PROTO="${runfiles}/api/taskd/v1/taskd.proto"
export TASKD_NODE_PACKAGE="${pkg}"
cd "${pkg}"
exec node --test --test-reporter=spec "$@"
