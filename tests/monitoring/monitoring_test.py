"""End-to-end monitoring test: taskd + a real Prometheus on loopback.

Starts taskd (durable, metrics on) and Prometheus (Debian's `prometheus`,
scrape and rule evaluation every 1 s, the alert rules of
k8s/monitoring/prometheus/taskd-rules.yaml loaded when present), runs a
short mixed workload with taskctl and taskd-worker (successes, failures, a
retry, a deduplicated submit, a cancel, a schedule) and then checks through
Prometheus' HTTP API that:
  (a) every expression of every panel of k8s/monitoring/grafana/taskd.json
      (variables substituted) returns data          [when the file exists]
  (b) the counters agree with what the workload did  [always]
  (c) TaskdBacklogWithoutWorkers fires while a queue has pending tasks and
      no worker, and resolves once a worker connects [when the rules exist]
Every wait polls with a deadline; nothing sleeps to synchronise.
Run by Bazel (//tests/monitoring:monitoring_test) with /usr/bin/python3.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", "."), "taskd")
TASKD = os.path.join(RUNFILES, "services/taskd")
TASKCTL = os.path.join(RUNFILES, "clients/cpp/taskctl")
WORKER = os.path.join(RUNFILES, "clients/cpp/taskd-worker")
RULES = os.path.join(RUNFILES, "k8s/monitoring/prometheus/taskd-rules.yaml")
DASHBOARD = os.path.join(RUNFILES, "k8s/monitoring/grafana/taskd.json")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
BUDGET = 55.0  # seconds for the whole test

START = time.monotonic()
failures = []


def log(*args):
    print("[%5.1fs]" % (time.monotonic() - START), *args, flush=True)


def check(ok, what):
    log(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(what, fn, timeout):
    """Calls fn until it returns a truthy value; fails after `timeout`."""
    deadline = min(time.monotonic() + timeout, START + BUDGET)
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError) as e:  # not up yet
            last = e
        time.sleep(0.1)  # poll interval, not a synchronisation
    raise TimeoutError("timed out waiting for %s (last: %r)" % (what, last))


def http_get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


class Env:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.grpc = "127.0.0.1:%d" % free_port()
        self.metrics = "127.0.0.1:%d" % free_port()
        self.prom = "127.0.0.1:%d" % free_port()
        self.procs = []

    def spawn(self, name, args):
        out = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for _, p in reversed(self.procs):
            self.stop(p)

    def dump_logs(self):
        for name, _ in self.procs:
            path = os.path.join(self.tmp, name + ".log")
            with open(path) as f:
                text = f.read()
            print("---- %s (last 2000 chars)\n%s" % (name, text[-2000:]))

    def taskctl(self, *args):
        r = subprocess.run([TASKCTL, "--server", self.grpc] + list(args),
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("taskctl %s: %s%s" % (args, r.stdout, r.stderr))
        return r.stdout.strip()

    def worker(self, name, queue):
        return self.spawn(name, [
            WORKER, "--server", self.grpc, "--queue", queue,
            "--concurrency", "4", "--heartbeat", "1s",
            "--handler", "ok=true",
            "--handler", "bad=exit 3",
            # Fails its first attempt, succeeds on the second.
            "--handler", 'flaky=test "$TASKD_ATTEMPT" -ge 2',
        ])

    # ---- Prometheus HTTP API
    def query(self, expr):
        url = "http://%s/api/v1/query?%s" % (
            self.prom, urllib.parse.urlencode({"query": expr}))
        body = json.loads(http_get(url))
        if body.get("status") != "success":
            raise ValueError("query %s: %s" % (expr, body))
        return body["data"]["result"]

    def value(self, expr):
        """The single value of `expr`, or None when it has no sample."""
        result = self.query(expr)
        if not result:
            return None
        return float(result[0]["value"][1])

    def alerts(self, name):
        body = json.loads(http_get("http://%s/api/v1/alerts" % self.prom))
        return [a for a in body["data"]["alerts"]
                if a["labels"].get("alertname") == name]


def write_prometheus_config(env):
    rule_files = []
    if os.path.exists(RULES):
        # The rules as shipped, with every `for:` shortened so the test can
        # watch an alert fire and resolve within seconds.
        with open(RULES) as f:
            text = f.read()
        short = re.sub(r"(?m)^(\s*for:\s*)\S+", r"\g<1>1s", text)
        path = os.path.join(env.tmp, "taskd-rules.yaml")
        with open(path, "w") as f:
            f.write(short)
        rule_files.append(path)
        # promtool, when present, must accept the shortened copy too.
        promtool = shutil.which("promtool")
        if promtool:
            r = subprocess.run([promtool, "check", "rules", path],
                               capture_output=True, text=True)
            check(r.returncode == 0, "promtool check rules: " + r.stdout[-200:])
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                   "scrape_timeout": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [{"job_name": "taskd",
                            "static_configs": [{"targets": [env.metrics]}]}],
    }
    path = os.path.join(env.tmp, "prometheus.yml")
    with open(path, "w") as f:
        json.dump(config, f)  # JSON is YAML
    return path


def run(env):
    # ---- start taskd and Prometheus
    env.spawn("taskd", [
        TASKD, "--listen", env.grpc, "--metrics-listen", env.metrics,
        "--durability", "sync", "--data-dir", os.path.join(env.tmp, "data"),
        "--threads", "1", "--shutdown-grace", "1s"])
    config = write_prometheus_config(env)
    env.spawn("prometheus", [
        PROMETHEUS, "--config.file", config,
        "--storage.tsdb.path", os.path.join(env.tmp, "tsdb"),
        "--web.listen-address", env.prom, "--log.level", "warn"])
    poll("taskd /metrics",
         lambda: "taskd_build_info" in http_get(
             "http://%s/metrics" % env.metrics), 15)
    poll("Prometheus ready",
         lambda: http_get("http://%s/-/ready" % env.prom), 20)
    log("taskd on", env.grpc, "metrics", env.metrics, "prometheus", env.prom)

    # ---- the workload (queue e2e has a worker, queue sched has none yet)
    env.worker("worker-e2e", "e2e")
    ids, submits = [], 0

    def submit(*args):
        nonlocal submits
        submits += 1
        out = env.taskctl("submit", *args)
        return out.split()[0]

    for _ in range(5):
        ids.append(submit("ok", "--queue", "e2e"))
    for _ in range(2):
        ids.append(submit("bad", "--queue", "e2e", "--retries", "1"))
    ids.append(submit("flaky", "--queue", "e2e", "--retries", "3"))
    first = submit("ok", "--queue", "e2e", "--key", "once")
    again = submit("ok", "--queue", "e2e", "--key", "once")
    check(first == again, "a repeated idempotency key returns the first task")
    ids.append(first)
    later = submit("ok", "--queue", "e2e", "--delay", "1h")
    env.taskctl("cancel", later)
    # A schedule on a queue without workers: its tasks stay pending.
    env.taskctl("schedule", "create", "tick", "--every", "1s", "ok",
                "--queue", "sched")
    r = subprocess.run([TASKCTL, "--server", env.grpc, "await"] + ids +
                       ["--timeout", "30s"], capture_output=True, text=True,
                       timeout=40)
    log("await:", r.returncode, r.stdout.count("\n"), "lines")
    poll("two schedule firings", lambda: env.value(
        'taskd_schedule_firings_total') and
        env.value('taskd_schedule_firings_total') >= 2, 15)
    env.taskctl("schedule", "delete", "tick")
    firings_at_delete = None

    # ---- (b) counters agree with the workload
    expected = {
        'taskd_tasks_submitted_total{queue="e2e"}': 10,
        'taskd_tasks_deduplicated_total{queue="e2e"}': 1,
        'taskd_tasks_finished_total{queue="e2e",state="succeeded"}': 7,
        'taskd_tasks_finished_total{queue="e2e",state="failed"}': 2,
        'taskd_tasks_finished_total{queue="e2e",state="cancelled"}': 1,
        'taskd_task_attempts_total{queue="e2e",outcome="succeeded"}': 7,
        'taskd_task_attempts_total{queue="e2e",outcome="failed"}': 3,
        'taskd_task_retries_total{queue="e2e"}': 1,
        'taskd_task_run_seconds_count{queue="e2e"}': 10,
        'taskd_task_wait_seconds_count{queue="e2e"}': 10,
        'taskd_task_turnaround_seconds_count{queue="e2e"}': 10,
        'sum(grpc_server_handled_total{grpc_method="SubmitTask",'
        'grpc_code="OK"})': submits,
        'taskd_tasks{queue="e2e",state="pending"}': 0,
        'taskd_schedules': 0,
        'taskd_workers{queue="e2e"}': 1,
    }

    def counters_settled():
        got = {e: env.value(e) for e in expected}
        return got if all(got[e] == v for e, v in expected.items()) else None

    try:
        poll("counters to match the workload", counters_settled, 20)
    except TimeoutError:
        pass
    for expr, want in expected.items():
        got = env.value(expr)
        check(got == want, "%s = %s (want %s)" % (expr, got, want))
    firings = env.value("taskd_schedule_firings_total")
    sched = env.value('taskd_tasks_submitted_total{queue="sched"}')
    check(firings is not None and firings >= 2 and sched == firings,
          "schedule firings %s = tasks submitted to sched %s" % (firings, sched))
    check((env.value("taskd_journal_commits_total") or 0) > 0,
          "the journal committed")
    check((env.value("taskd_storage_bytes") or 0) > 0, "storage bytes > 0")
    check(env.value('taskd_build_info') == 1, "taskd_build_info = 1")

    # ---- (a) every dashboard panel returns data
    if os.path.exists(DASHBOARD):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)

        def panels(ps):
            for p in ps:
                yield p
                yield from panels(p.get("panels", []))

        exprs = [(p.get("title", "?"), t["expr"])
                 for p in panels(dashboard.get("panels", []))
                 for t in p.get("targets", []) if t.get("expr")]
        check(len(exprs) > 0, "the dashboard has panel expressions")

        def substitute(expr):
            return (expr.replace("$__rate_interval", "10s")
                    .replace("$__interval", "1s")
                    .replace("${instance}", env.metrics)
                    .replace("$instance", env.metrics)
                    .replace("${queue}", "e2e").replace("$queue", "e2e"))

        # Every series exists by now (the counters above were scraped), so
        # a panel gets a short grace period only for its rate() window.
        for title, expr in exprs:
            q = substitute(expr)
            deadline = time.monotonic() + 3
            while True:
                try:
                    result, error = env.query(q), None
                except (OSError, ValueError) as e:  # e.g. HTTP 400: bad query
                    result, error = [], e
                if result or time.monotonic() > deadline:
                    break
                time.sleep(0.2)  # poll interval
            check(bool(result), "panel %r has data: %s%s" % (
                title, q, " (%s)" % error if error else ""))
    else:
        log("skip (a): no dashboard at", DASHBOARD)

    # ---- (c) the no-worker alert fires, then resolves with a worker
    if os.path.exists(RULES):
        name = "TaskdBacklogWithoutWorkers"

        def firing():
            return [a for a in env.alerts(name) if a["state"] == "firing"
                    and a["labels"].get("queue") == "sched"]
        try:
            poll(name + " firing for queue sched", firing, 15)
            check(True, name + " fires: pending tasks, no worker")
        except TimeoutError as e:
            check(False, str(e))
        env.worker("worker-sched", "sched")
        try:
            poll(name + " resolved", lambda: not [
                a for a in env.alerts(name)
                if a["labels"].get("queue") == "sched"], 15)
            check(True, name + " resolves once a worker connects")
        except TimeoutError as e:
            check(False, str(e))
        down = [a for a in env.alerts("TaskdDown")
                    if a["state"] == "firing"]
        check(not down, "TaskdDown is not firing while taskd is up")
    else:
        log("skip (c): no rules at", RULES)


def main():
    env = Env()
    try:
        run(env)
    except Exception as e:  # report, then clean up
        failures.append("%s: %s" % (type(e).__name__, e))
        log("ERROR", e)
    finally:
        env.stop_all()
    if failures:
        env.dump_logs()
        print("%d check(s) failed:" % len(failures))
        for f in failures:
            print("  " + f)
        return 1
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
