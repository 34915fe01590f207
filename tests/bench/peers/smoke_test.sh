#!/bin/bash
# `make bench-peers` in miniature under Bazel: every peer (Celery, RQ,
# BullMQ) runs the whole workload on N = 200 tasks and 50 round trips, and
# the test fails unless each peer reports every figure, complete.
#
# Tagged `local`: node_modules (BullMQ, installed by `make peers-node-deps`,
# which `make test` runs first) is not a Bazel input; it stays in the source
# folder, found by resolving a runfile symlink back to the source tree.
set -euo pipefail

runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
dir="$(dirname "$(readlink -f "${runfiles}/tests/bench/peers/bench_peers.py")")"
if [[ ! -d "${dir}/node_modules/bullmq" ]]; then
  echo "smoke_test: ${dir}/node_modules is missing: run 'make peers-node-deps' (npm ci) first" >&2
  exit 1
fi
out="${TEST_TMPDIR}/bench-peers.jsonl"
export PYTHONDONTWRITEBYTECODE=1
/usr/bin/python3 "${dir}/bench_peers.py" --tasks 200 --round_trips 50 --phase_limit_s 60 \
  --json_out "${out}"

/usr/bin/python3 - "${out}" <<'PY'
import json
import sys

want = ["submit_1", "submit_64", "submit_batch", "cpu_submit_64", "e2e_1", "e2e_64",
        "e2e_batch", "cpu_e2e_64", "rtt_p50", "rtt_p99"]
got = {}
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    got[(r["mode"], r["row"])] = r
bad = []
for peer in ("celery", "rq", "bullmq"):
    for figure in want:
        r = got.get((peer, figure))
        if r is None:
            bad.append(f"{peer} {figure}: missing")
        elif r["time_limited"] or r["errors"] or r["value"] is None or r["value"] < 0:
            bad.append(f"{peer} {figure}: incomplete: {json.dumps(r)}")
for b in bad:
    print("FAIL", b)
passed = 3 * len(want) - len(bad)
print(f"smoke: {passed} figures complete, {len(bad)} missing or incomplete")
sys.exit(1 if bad else 0)
PY
