#!/usr/bin/env bash
# Runs every fuzzer for SECONDS each (default 30) from its seed corpus in
# tests/fuzz/corpus/<name> (new inputs go to a scratch copy, not the repo),
# prints executions per second, and fails when any fuzzer finds a crash.
#
#   tests/fuzz/run.sh [SECONDS] [OUT]
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-30}"
out="${2:-$root/tests/fuzz/out}"
"$root/tests/fuzz/build.sh" "$out" >/dev/null || exit 1
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
status=0
for fuzzer in validation cron recovery engine; do
  mkdir -p "$scratch/$fuzzer"
  cp -r "$root/tests/fuzz/corpus/$fuzzer/." "$scratch/$fuzzer/" 2>/dev/null
  log="$scratch/$fuzzer.log"
  (cd "$scratch" && "$out/${fuzzer}_fuzzer" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
      "$scratch/$fuzzer" "$root/tests/fuzz/corpus/$fuzzer" >"$log" 2>&1)
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  rate=$(( ${runs:-0} / (seconds > 0 ? seconds : 1) ))
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "FUZZ ${fuzzer}: CRASH after ${runs:-?} runs (exit $rc)"
    grep -m 20 -E 'ERROR|SUMMARY|abort|#[0-9]+ ' "$log"
    ls "$scratch"/crash-* "$scratch"/timeout-* "$scratch"/oom-* 2>/dev/null | \
      while read -r f; do echo "  input: $(xxd -p "$f" | tr -d '\n' | head -c 400)"; done
  else
    echo "FUZZ ${fuzzer}: ${runs:-0} runs in ${seconds} s (${rate}/s), no crash"
  fi
done
exit "$status"
