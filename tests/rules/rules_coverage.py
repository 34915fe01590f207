"""Checks what promtool does not about k8s/monitoring/prometheus/taskd-rules.yaml.

- the alerts issue 7 asks for exist;
- each has `for`, a severity, a summary, a description and a runbook_url
  naming its section of the README ("Operate" > a heading with its name);
- the promtool unit tests make each alert fire (an eval expecting it) and not
  fire (an eval expecting none of it).

usage: rules_coverage.py RULES TESTS README
"""

import re
import sys

import yaml

REQUIRED = {
    "TaskdDown",
    "TaskdBacklogWithoutWorkers",
    "TaskdOldestPendingTooOld",
    "TaskdFailureRatioHigh",
    "TaskdCommitLatencyHigh",
    "TaskdNearMaxTasks",
}


def main(rules_path, tests_path, readme_path):
    problems = []
    with open(rules_path) as f:
        rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    for name in sorted(REQUIRED - alerts.keys()):
        problems.append(f"missing alert {name}")

    with open(readme_path) as f:
        readme = f.read()
    operate = re.search(r"^## Operate\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    if not operate:
        problems.append("README.md has no '## Operate' section")
    headings = set(re.findall(r"^#{3,5} +(\w+) *$", operate.group(1) if operate else "", re.M))

    for name, rule in sorted(alerts.items()):
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key, "").strip():
                problems.append(f"{name}: no {key}")
        if annotations.get("runbook_url") != f"README.md#{name.lower()}":
            problems.append(f"{name}: runbook_url is not README.md#{name.lower()}")
        if name not in headings:
            problems.append(f"{name}: no runbook heading '#### {name}' in README's Operate section")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
            problems.append(f"{name}: severity is not critical or warning")
        if "for" not in rule:
            problems.append(f"{name}: no `for` (fires on one bad sample)")

    with open(tests_path) as f:
        tests = yaml.safe_load(f)["tests"]
    fires, silent = set(), set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    for name in sorted(alerts):
        if name not in fires:
            problems.append(f"{name}: no unit test where it fires")
        if name not in silent:
            problems.append(f"{name}: no unit test where it stays silent")

    if problems:
        print("FAIL:\n  " + "\n  ".join(problems))
        return 1
    print(f"OK: {len(alerts)} alerts, each with annotations, a runbook, "
          "and unit tests firing and silent")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
