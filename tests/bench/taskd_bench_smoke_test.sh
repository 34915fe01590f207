#!/bin/sh
# taskd_bench --quick against the services/taskd of this build; fails unless
# it exits 0 and every expected row is in its JSON lines (check_bench_output.py).
# Figures are printed, never judged. Runs from the runfiles root.
set -eu
out="${TEST_TMPDIR:-$(mktemp -d)}"
# Bounded: --quick runs take a few seconds, at most 50 s; `timeout` stops a hang.
timeout 50 tests/bench/taskd_bench --quick \
  --json_out="$out/bench.jsonl" --dir="$out"
exec /usr/bin/python3 tests/bench/check_bench_output.py \
  --modes=memory,async,sync "$out/bench.jsonl"
