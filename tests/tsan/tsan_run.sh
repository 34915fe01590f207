#!/usr/bin/env bash
# --run_under wrapper of the tsan test config (.bazelrc): runs the test with
# the ThreadSanitizer reports of its own process and of every process it
# starts (a taskd server, taskd-worker...) written to files, and fails the
# test when any was written, quoting them. A server's report would otherwise
# end up in a pipe the test may never show, or make the test fail for a
# reason it cannot name.
set -uo pipefail

reports="${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-/tmp}}/tsan"
mkdir -p "$reports"
export TSAN_OPTIONS="${TSAN_OPTIONS:-}:log_path=${reports}/report"

"$@"
rc=$?

shopt -s nullglob
written=("$reports"/report.*)
if [ "${#written[@]}" -gt 0 ]; then
  for report in "${written[@]}"; do
    echo "==== ThreadSanitizer report of pid ${report##*.}:" >&2
    cat "$report" >&2
  done
  echo "tsan_run: ${#written[@]} process(es) wrote a ThreadSanitizer report" >&2
  # The test's own XML may say every case passed (the report came from a
  # child); without it Bazel writes one that records this failure.
  if [ -n "${XML_OUTPUT_FILE:-}" ]; then rm -f "$XML_OUTPUT_FILE"; fi
  [ "$rc" -eq 0 ] && rc=66
fi
exit "$rc"
