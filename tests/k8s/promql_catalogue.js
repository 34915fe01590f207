// Checks that a PromQL expression (a dashboard panel's or an alert rule's)
// names only metrics and labels of taskd's metric catalogue (API.md,
// "Metrics"; copied in metric_catalogue.json), and label values where the
// catalogue fixes them. It reads tokens, not a full grammar: syntax is
// promtool's job (dashboard_test runs every expression through it).
//
//   const { checkExpr } = require("./promql_catalogue");
//   const problems = checkExpr('sum by (queue) (taskd_tasks{state="pending"})');
//   // [] when the expression sticks to the catalogue

"use strict";

const catalogue = require("./metric_catalogue.json");

const KEYWORDS = new Set([
  "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
]);
const GROUPING = new Set([
  "by", "without", "on", "ignoring", "group_left", "group_right",
]);
const FUNCTIONS = new Set([
  // aggregations
  "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
  "count_values", "bottomk", "topk", "quantile",
  // functions (Prometheus 2.x)
  "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max",
  "clamp_min", "day_of_month", "day_of_week", "day_of_year", "days_in_month",
  "delta", "deriv", "exp", "floor", "histogram_quantile", "holt_winters",
  "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
  "log2", "log10", "minute", "month", "predict_linear", "rate", "resets",
  "round", "scalar", "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp",
  "vector", "year", "avg_over_time", "min_over_time", "max_over_time",
  "sum_over_time", "count_over_time", "quantile_over_time",
  "stddev_over_time", "stdvar_over_time", "last_over_time",
  "present_over_time",
]);
const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"];

// Splits an expression into tokens: identifiers, strings, numbers and
// durations, and single punctuation/operator characters.
function tokenize(expr) {
  const tokens = [];
  let i = 0;
  while (i < expr.length) {
    const c = expr[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === "#") {  // a comment runs to the end of the line
      while (i < expr.length && expr[i] !== "\n") i++;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      let value = "";
      while (j < expr.length && expr[j] !== c) {
        if (expr[j] === "\\" && c !== "`") { value += expr[j + 1]; j += 2; continue; }
        value += expr[j++];
      }
      if (j >= expr.length) throw new Error(`unterminated string in: ${expr}`);
      tokens.push({ kind: "string", value });
      i = j + 1;
      continue;
    }
    const ident = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i));
    if (ident) { tokens.push({ kind: "ident", value: ident[0] }); i += ident[0].length; continue; }
    const num = /^[0-9.][0-9.eE+]*[a-zA-Z]*/.exec(expr.slice(i));
    if (num) { tokens.push({ kind: "number", value: num[0] }); i += num[0].length; continue; }
    const op = /^(=~|!~|!=|==|>=|<=|\$\{[^}]*\}|\$[A-Za-z_]+)/.exec(expr.slice(i));
    if (op) { tokens.push({ kind: "punct", value: op[0] }); i += op[0].length; continue; }
    tokens.push({ kind: "punct", value: c });
    i++;
  }
  return tokens;
}

// Returns the catalogue entry of a series name (histograms through their
// _bucket/_sum/_count series), or null.
function lookup(name) {
  if (catalogue.metrics[name]) return { base: name, entry: catalogue.metrics[name], suffix: "" };
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const entry = catalogue.metrics[base];
    if (entry && entry.type === "histogram") return { base, entry, suffix };
  }
  return null;
}

function allowedLabels(found) {
  const labels = new Set([...found.entry.labels, ...catalogue.target_labels]);
  if (found.suffix === "_bucket") labels.add("le");
  return labels;
}

function allowedValues(found, label) {
  return (found.entry.values && found.entry.values[label]) || catalogue.label_values[label] || null;
}

// Literal alternatives of a matcher value ("a|b" -> [a, b]), or null when
// the value is a real regular expression or holds a dashboard variable.
function literalAlternatives(value) {
  return /^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$/.test(value) ? value.split("|") : null;
}

// Returns a list of problems (strings); empty when the expression uses only
// catalogue metrics, their labels and their fixed label values.
function checkExpr(expr) {
  const problems = [];
  const tokens = tokenize(expr);
  const metrics = [];        // catalogue entries met in the expression
  const groupingLabels = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === "punct" && t.value === "[") {  // range or subquery: skip
      while (i < tokens.length && tokens[i].value !== "]") i++;
      continue;
    }
    if (t.kind !== "ident") continue;
    const next = tokens[i + 1];
    const name = t.value;
    if (GROUPING.has(name)) {
      if (next && next.value === "(") {
        let j = i + 2;
        for (; j < tokens.length && tokens[j].value !== ")"; j++) {
          if (tokens[j].kind === "ident") groupingLabels.push(tokens[j].value);
        }
        i = j;
      }
      continue;
    }
    if (KEYWORDS.has(name.toLowerCase())) continue;
    if (next && (next.value === "(" || (FUNCTIONS.has(name) && GROUPING.has(next.value)))) {
      if (!FUNCTIONS.has(name)) problems.push(`unknown function ${name}()`);
      continue;
    }
    const found = lookup(name);
    if (!found) {
      problems.push(`${name} is not in the metric catalogue`);
      if (next && next.value === "{") {
        while (i < tokens.length && tokens[i].value !== "}") i++;
      }
      continue;
    }
    metrics.push(found);
    if (!next || next.value !== "{") continue;
    // Label matchers: name op "value" [, ...] }
    let j = i + 2;
    while (j < tokens.length && tokens[j].value !== "}") {
      const label = tokens[j], op = tokens[j + 1], value = tokens[j + 2];
      if (!label || label.kind !== "ident" || !op || !value || value.kind !== "string") {
        problems.push(`${name}: cannot read the matchers of ${expr}`);
        break;
      }
      if (!allowedLabels(found).has(label.value)) {
        problems.push(`${name} has no label ${label.value}`);
      } else {
        const allowed = allowedValues(found, label.value);
        const literals = op.value === "=" || op.value === "!=" ? [value.value]
                                                               : literalAlternatives(value.value);
        for (const v of (allowed && literals) || []) {
          if (!allowed.includes(v)) problems.push(`${name}{${label.value}}: "${v}" is not one of ${allowed.join(", ")}`);
        }
      }
      j += 3;
      if (tokens[j] && tokens[j].value === ",") j++;
    }
    i = j;
  }
  const known = new Set(catalogue.target_labels);
  for (const m of metrics) for (const l of allowedLabels(m)) known.add(l);
  for (const l of groupingLabels) {
    if (!known.has(l)) problems.push(`grouping label ${l} belongs to none of the expression's metrics`);
  }
  if (metrics.length === 0) problems.push(`no catalogue metric in: ${expr}`);
  return problems;
}

module.exports = { checkExpr, tokenize };
