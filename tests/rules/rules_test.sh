#!/bin/bash
# The alert rules k8s/monitoring/prometheus/taskd-rules.yaml pass promtool's
# checks and its unit tests (taskd_rules_test.yaml: each alert fires and
# stays silent), and rules_coverage.py's checks (annotations, runbooks in the
# README, a firing and a silent test per alert). Needs Debian's prometheus
# package (promtool) and python3-yaml; fails when either is missing.
set -euo pipefail
cd "${TEST_SRCDIR}/${TEST_WORKSPACE}"

if ! command -v promtool >/dev/null; then
  echo "FAIL: promtool not found: apt-get install prometheus (make deps)" >&2
  exit 1
fi
rules=k8s/monitoring/prometheus/taskd-rules.yaml
promtool check rules --lint=all --lint-fatal "$rules"
promtool test rules tests/rules/taskd_rules_test.yaml
/usr/bin/python3 tests/rules/rules_coverage.py "$rules" \
  tests/rules/taskd_rules_test.yaml tests/rules/operate_readme.md
