#!/bin/bash
# Runs one of this folder's Node checks (argument: its file name) on the
# runfiles tree. The npm packages are in tests/k8s/node_modules, put there by
# `npm ci` (make test does it: mk/ops.mk); node finds them because it
# resolves the script's runfiles link to the source folder.
set -euo pipefail
cd "${TEST_SRCDIR}/${TEST_WORKSPACE}"
for tool in node kubectl promtool; do
  if ! command -v "$tool" >/dev/null; then
    echo "FAIL: $tool not found on PATH (see mk/ops.mk)" >&2
    exit 1
  fi
done
script=$(readlink -f "tests/k8s/$1")
if [ ! -d "$(dirname "$script")/node_modules/kubernetes-models" ]; then
  echo "FAIL: npm packages missing: run 'npm ci' in tests/k8s (make test does)" >&2
  exit 1
fi
# Kustomize refuses a kustomization.yaml that is a link, as runfiles are:
# check a plain copy.
tree="${TEST_TMPDIR}/tree"
mkdir -p "$tree"
cp -rL k8s "$tree/"
exec node "$script" "$tree"
