"""Checks taskd_bench's JSON lines: each parses, and every row is there.

    check_bench_output.py --modes=memory,async,sync bench-results.jsonl

Exit status 0 when every expected (row, mode) has a figure with a numeric
value; 1 naming what is missing or malformed. Nothing timed is judged.
"""

import argparse
import json
import math
import sys

# Rows of the null-RPC baseline (mode "null_rpc").
NULL_ROWS = ["submit_1", "submit_64", "submit_batch", "cpu_submit_64",
             "rtt_p50", "rtt_p99", "held_idle_stream_bytes",
             "held_idle_stream_register_s", "held_idle_stream_cpu_us"]
# Rows of taskd in every mode of --modes.
MODE_ROWS = ["submit_1", "submit_64", "submit_batch", "cpu_submit_64",
             "e2e_1", "e2e_64", "e2e_batch", "cpu_e2e_64", "rtt_p50",
             "rtt_p99"]
# What one journal commit carried, in the durable modes only.
DURABLE_ROWS = ["journal_records_per_commit_64"]
# Rows of the held-calls mode (--held_mode).
HELD_ROWS = ["held_stream_bytes", "held_stream_register_s",
             "held_stream_cpu_us", "held_await_bytes", "held_await_register_s",
             "held_await_cpu_us"]
# Rows of the queued-backlog mode (--queued_mode).
QUEUED_ROWS = ["queued_fill", "queued_rss", "queued_bytes_per_task",
               "queued_data_dir", "queued_recovery_s", "dispatch_small",
               "dispatch_backlog"]
# Rows of the metrics on/off mode (--metrics_mode).
METRICS_ROWS = ["metrics_on_rate", "metrics_off_rate", "metrics_on_cpu_us",
                "metrics_off_cpu_us"]
# Rows compared with a reference name it (and carry a ratio unless the
# reference is 0, e.g. CPU time below /proc's 10 ms tick in a --quick run).
WITH_RATIO = set(MODE_ROWS) | {"held_stream_bytes", "held_await_bytes",
                               "dispatch_backlog", "metrics_on_rate",
                               "metrics_on_cpu_us"}


def expected_rows(modes, held_mode, queued_mode, metrics_mode):
    rows = [(row, "null_rpc") for row in NULL_ROWS]
    for mode in modes:
        rows += [(row, mode) for row in MODE_ROWS]
        if mode != "memory":
            rows += [(row, mode) for row in DURABLE_ROWS]
    rows += [(row, held_mode) for row in HELD_ROWS]
    rows += [(row, queued_mode) for row in QUEUED_ROWS]
    rows += [(row, metrics_mode) for row in METRICS_ROWS]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modes", default="memory,async,sync")
    parser.add_argument("--held_mode", default="memory")
    parser.add_argument("--queued_mode", default="async")
    parser.add_argument("--metrics_mode", default="memory")
    parser.add_argument("jsonl")
    args = parser.parse_args()

    problems = []
    figures = {}
    with open(args.jsonl, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                figure = json.loads(line)
            except ValueError as e:
                problems.append(f"line {number} is not JSON: {e}")
                continue
            if not isinstance(figure, dict) or "row" not in figure \
                    or "mode" not in figure:
                problems.append(f"line {number} has no row or mode")
                continue
            figures[(figure["row"], figure["mode"])] = figure

    modes = [m for m in args.modes.split(",") if m]
    for row, mode in expected_rows(modes, args.held_mode, args.queued_mode,
                                   args.metrics_mode):
        figure = figures.get((row, mode))
        if figure is None:
            problems.append(f"missing row {row} ({mode})")
            continue
        value = figure.get("value")
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"row {row} ({mode}) has no numeric value: "
                            f"{value!r}")
        if mode != "null_rpc" and row in WITH_RATIO:
            reference = figure.get("reference")
            if not isinstance(reference, (int, float)):
                problems.append(f"row {row} ({mode}) has no reference")
            elif reference != 0 and \
                    not isinstance(figure.get("ratio"), (int, float)):
                problems.append(f"row {row} ({mode}) has no ratio")

    for problem in problems:
        print(f"check_bench_output: {problem}")
    print(f"check_bench_output: {len(figures)} figures, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
