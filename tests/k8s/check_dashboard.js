// Checks the Grafana dashboard k8s/monitoring/grafana/taskd.json against
// issue 7 (item 3) and the metric catalogue, and the alert rules' expressions
// against the catalogue:
// - variables `datasource` (a Prometheus data source), `instance`, `queue`;
//   every panel queries `${datasource}`;
// - the rows, in order, and the panels under each, by title;
// - every panel has a unit and a description, and at least one query;
// - every query names catalogue metrics and labels only, and parses: each
//   is handed to `promtool check rules` as a recording rule, with the
//   dashboard's variables replaced by what Grafana would send.
//
// usage: node check_dashboard.js <directory holding k8s/>

"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const YAML = require("yaml");
const { checkExpr } = require("./promql_catalogue");

const root = path.resolve(process.argv[2] || ".");
const dashboardFile = path.join(root, "k8s/monitoring/grafana/taskd.json");
const rulesFile = path.join(root, "k8s/monitoring/prometheus/taskd-rules.yaml");
const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// Issue 7, item 3: rows and the panels each must hold, in order.
const LAYOUT = [
  ["Throughput", ["Submitted per queue", "Finished per state and queue"]],
  ["Backlog", ["Pending per queue", "Scheduled per queue", "Oldest pending age"]],
  ["Latency", ["Queue wait p50 / p95 / p99", "Run time p50 / p95 / p99", "gRPC handling p99 per method"]],
  ["Errors", ["Failed per queue", "Retried per queue", "Non-OK gRPC responses"]],
  ["Workers", ["Connected workers per queue", "Worker slots busy / free"]],
  ["Storage", ["Commit latency p50 / p99", "Tasks per commit", "Bytes on disk"]],
  ["Process", ["Resident memory", "CPU", "Open file descriptors"]],
];

const dashboard = JSON.parse(fs.readFileSync(dashboardFile, "utf8"));

// ---- variables --------------------------------------------------------------
const vars = Object.fromEntries(((dashboard.templating || {}).list || []).map((v) => [v.name, v]));
if (!vars.datasource || vars.datasource.type !== "datasource" || vars.datasource.query !== "prometheus") {
  problem("variables", "no `datasource` variable of type datasource for prometheus");
}
for (const name of ["instance", "queue"]) {
  const v = vars[name];
  if (!v || v.type !== "query") { problem("variables", `no query variable \`${name}\``); continue; }
  if (!v.datasource || v.datasource.uid !== "${datasource}") problem(`variable ${name}`, "does not query ${datasource}");
  for (const p of checkExpr(v.definition.replace(/^label_values\((.*),\s*\w+\)$/, "$1"))) problem(`variable ${name}`, p);
}

// ---- rows and panels --------------------------------------------------------
const rows = [];
for (const p of dashboard.panels || []) {
  if (p.type === "row") { rows.push({ title: p.title, panels: [...(p.panels || [])] }); continue; }
  if (!rows.length) { problem(p.title, "panel above the first row"); continue; }
  rows[rows.length - 1].panels.push(p);
}
const got = rows.map((r) => [r.title, r.panels.map((p) => p.title)]);
if (JSON.stringify(got) !== JSON.stringify(LAYOUT)) {
  problem("layout", `rows and panels are\n    ${JSON.stringify(got)}\n  want\n    ${JSON.stringify(LAYOUT)}`);
}
const ids = new Set();
const exprs = [];  // [where, expr]
for (const row of rows) {
  for (const p of row.panels) {
    const where = `panel "${p.title}"`;
    if (ids.has(p.id)) problem(where, `duplicate id ${p.id}`);
    ids.add(p.id);
    const unit = p.fieldConfig && p.fieldConfig.defaults && p.fieldConfig.defaults.unit;
    if (!unit) problem(where, "no unit");
    if (!p.description || p.description.trim().length < 20) problem(where, "no description");
    if (!p.datasource || p.datasource.uid !== "${datasource}") problem(where, "does not query ${datasource}");
    if (!p.targets || !p.targets.length) problem(where, "no query");
    for (const t of p.targets || []) {
      if (t.datasource && t.datasource.uid !== "${datasource}") problem(where, `query ${t.refId} does not use \${datasource}`);
      for (const msg of checkExpr(t.expr)) problem(`${where} ${t.refId}`, msg);
      exprs.push([`${where} ${t.refId}`, t.expr]);
    }
    // A panel about a per-queue metric follows the queue variable; every
    // panel follows the instance variable.
    for (const t of p.targets || []) {
      if (!t.expr.includes('instance=~"$instance"')) problem(`${where} ${t.refId}`, "ignores $instance");
      if (/\bqueue\b/.test(t.expr) && !t.expr.includes('queue=~"$queue"')) problem(`${where} ${t.refId}`, "is per queue but ignores $queue");
    }
  }
}

// ---- alert rules use the catalogue too --------------------------------------
const rules = YAML.parse(fs.readFileSync(rulesFile, "utf8"));
for (const g of rules.groups) {
  for (const r of g.rules) {
    for (const msg of checkExpr(r.expr)) problem(`rule ${r.alert || r.record}`, msg);
  }
}

// ---- every panel query parses (promtool) ------------------------------------
// Grafana substitutes its variables before the query reaches Prometheus.
const substitute = (expr) => expr
  .replace(/\$__rate_interval|\$__interval|\$__range/g, "5m")
  .replace(/\$\{?(instance|queue)(:\w+)?\}?/g, ".*");
const tmp = fs.mkdtempSync(path.join(process.env.TEST_TMPDIR || os.tmpdir(), "dashboard-"));
const ruleFile = path.join(tmp, "panels.yaml");
fs.writeFileSync(ruleFile, YAML.stringify({
  groups: [{
    name: "dashboard",
    rules: exprs.map(([, expr], i) => ({ record: `dashboard:query_${i}`, expr: substitute(expr) })),
  }],
}));
try {
  execFileSync("promtool", ["check", "rules", ruleFile], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
} catch (e) {
  problem("promtool", `a panel query does not parse:\n${e.stdout}${e.stderr || e.message}`);
}

if (problems.length) {
  console.error(`FAIL: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
const panels = rows.reduce((n, r) => n + r.panels.length, 0);
console.log(`OK: ${rows.length} rows, ${panels} panels, ${exprs.length} queries; all on the catalogue, all parse`);
