// Renders every Kustomize directory under k8s/ with `kubectl kustomize` and
// checks each object offline:
// - against its schema (npm kubernetes-models, @kubernetes-models/
//   prometheus-operator, @kubernetes-models/keda), unknown fields included:
//   the schemas accept any extra field, so the validation runs on a proxy
//   that records every field the validator looks at, and a field it never
//   looked at is one the schema does not know (a typo, a wrong level);
// - against the rules of issue 7 for taskd's deployment (probes, grace
//   period, hardening, named ports, the PrometheusRule being the rule file,
//   the dashboard ConfigMap being the dashboard, the ScaledObject's target).
//
// usage: node validate_manifests.js <directory holding k8s/>
// Exits 1 listing every problem; prints one line per object otherwise.

"use strict";

const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const util = require("util");
const YAML = require("yaml");
const { checkExpr } = require("./promql_catalogue");

const root = path.resolve(process.argv[2] || ".");
const k8s = path.join(root, "k8s");
const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// Kustomize directories that must exist (more are rendered if present).
const REQUIRED_DIRS = ["base", "workers", "monitoring", "overlays/production", "overlays/standalone"];

// apiVersion -> module directories that hold one model per kind.
const MODEL_DIRS = {
  "v1": ["kubernetes-models/v1"],
  "apps/v1": ["kubernetes-models/apps/v1"],
  "policy/v1": ["kubernetes-models/policy/v1"],
  "networking.k8s.io/v1": ["kubernetes-models/networking.k8s.io/v1"],
  "monitoring.coreos.com/v1": ["@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1"],
  "keda.sh/v1alpha1": ["@kubernetes-models/keda/keda.sh/v1alpha1"],
  "cert-manager.io/v1": ["@kubernetes-models/cert-manager/cert-manager.io/v1"],
};

function findModel(apiVersion, kind) {
  for (const dir of MODEL_DIRS[apiVersion] || []) {
    try {
      const mod = require(`${dir}/${kind}`);
      if (mod[kind]) return mod[kind];
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND") throw e;
    }
  }
  return null;
}

// A read-only view of `value` that adds the path of every field read to `seen`.
function track(value, at, seen) {
  if (value === null || typeof value !== "object") return value;
  return new Proxy(value, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key !== "string") return v;
      seen.add(`${at}/${key}`);
      return track(v, `${at}/${key}`, seen);
    },
    has(target, key) {
      if (typeof key === "string") seen.add(`${at}/${key}`);
      return Reflect.has(target, key);
    },
  });
}

function fieldPaths(value, at, out) {
  if (value === null || typeof value !== "object") return out;
  for (const key of Object.keys(value)) {
    out.push(`${at}/${key}`);
    fieldPaths(value[key], `${at}/${key}`, out);
  }
  return out;
}

function validateSchema(where, obj) {
  const Model = findModel(obj.apiVersion, obj.kind);
  if (!Model) {
    problem(where, `no schema for ${obj.apiVersion} ${obj.kind}`);
    return;
  }
  const seen = new Set();
  try {
    Model.prototype.validate.call(track(obj, "", seen));
  } catch (e) {
    problem(where, `schema: ${e.message}`);
    return;
  }
  // A field is unknown when the validator never read it; a map (labels,
  // annotations, data) is read key by key, so its entries count as read.
  const unknown = fieldPaths(obj, "", []).filter((p) => !seen.has(p));
  const outermost = unknown.filter((p) => !unknown.some((q) => p.startsWith(q + "/")));
  for (const p of outermost) problem(where, `field ${p} is not in the ${obj.kind} schema`);
}

// ---- rules of the deployment ----------------------------------------------

function argValue(args, flag) {
  // --flag=value or --flag value, dashes or underscores in the name
  const norm = (s) => s.replace(/^--/, "").replace(/_/g, "-");
  for (let i = 0; i < args.length; i++) {
    const [name, ...rest] = args[i].split("=");
    if (norm(name) !== norm(flag)) continue;
    return rest.length ? rest.join("=") : args[i + 1];
  }
  return undefined;
}

function seconds(duration) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(duration || "");
  if (!m) return NaN;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

function checkHardening(where, podSpec) {
  const pod = podSpec.securityContext || {};
  if (podSpec.automountServiceAccountToken !== false) problem(where, "mounts a service account token it does not use");
  for (const c of podSpec.containers || []) {
    const at = `${where} container ${c.name}`;
    const sc = c.securityContext || {};
    const nonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
    const uid = sc.runAsUser ?? pod.runAsUser;
    if (nonRoot !== true) problem(at, "runAsNonRoot is not true");
    if (!(uid > 0)) problem(at, "runAsUser is not a non-zero uid");
    if (sc.readOnlyRootFilesystem !== true) problem(at, "root filesystem is not read-only");
    if (sc.allowPrivilegeEscalation !== false) problem(at, "allowPrivilegeEscalation is not false");
    if (sc.privileged) problem(at, "is privileged");
    const drop = (sc.capabilities && sc.capabilities.drop) || [];
    if (!drop.includes("ALL")) problem(at, "does not drop ALL capabilities");
    if ((sc.capabilities && sc.capabilities.add || []).length) problem(at, "adds capabilities");
    const seccomp = (sc.seccompProfile || pod.seccompProfile || {}).type;
    if (seccomp !== "RuntimeDefault") problem(at, `seccomp profile is ${seccomp}, not RuntimeDefault`);
    const r = c.resources || {};
    for (const kind of ["requests", "limits"]) {
      for (const res of ["cpu", "memory"]) {
        if (!(r[kind] && r[kind][res])) problem(at, `no ${kind}.${res}`);
      }
    }
  }
}

function checkTaskdStatefulSet(where, sts, services) {
  const spec = sts.spec;
  const pod = spec.template.spec;
  const c = pod.containers.find((x) => x.name === "taskd");
  if (!c) return problem(where, "no container named taskd");
  if (spec.replicas !== 1) problem(where, `replicas ${spec.replicas}, taskd runs one`);
  if (!services.some((s) => s.metadata.name === spec.serviceName && s.spec.clusterIP === "None")) {
    problem(where, `serviceName ${spec.serviceName} is not a headless Service of the same render`);
  }
  // The data directory lives on the claim template's volume.
  const claims = (spec.volumeClaimTemplates || []).map((t) => t.metadata.name);
  const dataDir = argValue(c.args || [], "--data-dir");
  const mount = (c.volumeMounts || []).find((m) => dataDir && (dataDir === m.mountPath || dataDir.startsWith(m.mountPath + "/")));
  if (!mount) problem(where, `--data-dir ${dataDir} is on no volume mount`);
  else if (!claims.includes(mount.name)) problem(where, `--data-dir is on ${mount.name}, not a volumeClaimTemplate`);
  // Ports named grpc and metrics, matching the flags.
  const ports = Object.fromEntries((c.ports || []).map((p) => [p.name, p.containerPort]));
  if (!ports.grpc || !ports.metrics) problem(where, "container ports grpc and metrics are not both named");
  const listen = argValue(c.args || [], "--listen") || "";
  const metricsListen = argValue(c.args || [], "--metrics-listen") || "";
  if (!listen.endsWith(`:${ports.grpc}`)) problem(where, `--listen ${listen} is not the grpc port ${ports.grpc}`);
  if (!metricsListen.endsWith(`:${ports.metrics}`)) problem(where, `--metrics-listen ${metricsListen} is not the metrics port ${ports.metrics}`);
  if (!/^0\.0\.0\.0:|^\[::\]:/.test(listen) || !/^0\.0\.0\.0:|^\[::\]:/.test(metricsListen)) {
    problem(where, "taskd must listen on all interfaces in a pod (probes and the Service dial the pod IP)");
  }
  // Issue 11: a pod's address is reachable from the cluster, so the gRPC
  // port serves TLS and checks callers (tokens or client certificates);
  // taskd refuses to start otherwise (unless --insecure).
  const args = c.args || [];
  const tls = argValue(args, "--tls-cert") && argValue(args, "--tls-key");
  const callers = argValue(args, "--auth-tokens") || argValue(args, "--tls-client-ca");
  if (!(tls && callers) && !args.includes("--insecure")) {
    problem(where, "the gRPC port needs --tls-cert/--tls-key and --auth-tokens (or --tls-client-ca)");
  }
  for (const flag of ["--tls-cert", "--tls-key", "--auth-tokens", "--tls-client-ca"]) {
    const file = argValue(args, flag);
    if (file && !(c.volumeMounts || []).some((m) => file.startsWith(m.mountPath + "/"))) {
      problem(where, `${flag} ${file} is on no volume mount (mount it from a Secret)`);
    }
  }
  // Native gRPC probes on the health service: kubelet speaks no TLS, so with
  // TLS they use the plaintext health-only port (--health-listen).
  const healthListen = argValue(args, "--health-listen") || "";
  const probePort = tls ? ports.health : ports.grpc;
  if (tls && !(ports.health && healthListen.endsWith(`:${ports.health}`) && /^0\.0\.0\.0:|^\[::\]:/.test(healthListen))) {
    problem(where, "with TLS, --health-listen must be on all interfaces at the container port named health");
  }
  for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
    const p = c[probe];
    if (!p) { problem(where, `no ${probe}`); continue; }
    if (!p.grpc || p.grpc.port !== probePort) problem(where, `${probe} is not a gRPC probe on the ${tls ? "health" : "grpc"} port`);
  }
  // The pod outlives the server's own shutdown grace.
  const grace = seconds(argValue(c.args || [], "--shutdown-grace"));
  if (!(grace > 0)) problem(where, "no --shutdown-grace to compare the termination grace period with");
  else if (!(pod.terminationGracePeriodSeconds > grace)) {
    problem(where, `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} is not longer than --shutdown-grace ${grace}s`);
  }
  checkHardening(where, pod);
}

function checkService(where, svc) {
  const names = (svc.spec.ports || []).map((p) => p.name);
  if (svc.spec.clusterIP !== "None" && !(names.includes("grpc") && names.includes("metrics"))) {
    problem(where, `ports ${names} lack grpc or metrics`);
  }
}

const selects = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);

function checkRender(dir, objects) {
  const where = (o) => `${dir}: ${o.kind}/${o.metadata && o.metadata.name}`;
  const byKind = (kind) => objects.filter((o) => o.kind === kind);
  const services = byKind("Service");
  const namespaces = new Set(objects.filter((o) => o.kind !== "Namespace").map((o) => o.metadata.namespace));
  if (dir.startsWith("overlays/") && (namespaces.size !== 1 || namespaces.has(undefined))) {
    problem(dir, `objects are not all in one namespace: ${[...namespaces]}`);
  }
  for (const o of objects) {
    if (o.kind === "StatefulSet") checkTaskdStatefulSet(where(o), o, services);
    if (o.kind === "Deployment") checkHardening(where(o), o.spec.template.spec);
    if (o.kind === "Service") checkService(where(o), o);
  }
  const sts = byKind("StatefulSet")[0];
  if (sts) {
    const podLabels = sts.spec.template.metadata.labels;
    for (const kind of ["PodDisruptionBudget", "NetworkPolicy"]) {
      const matching = byKind(kind).filter((o) =>
        selects((o.spec.selector || o.spec.podSelector).matchLabels, podLabels));
      if (matching.length !== 1) problem(dir, `${matching.length} ${kind}s select the taskd pod, want 1`);
    }
    const svc = services.find((s) => s.spec.clusterIP !== "None" && selects(s.spec.selector, podLabels));
    if (!svc) problem(dir, "no Service with a cluster IP selects the taskd pod");
    const sm = byKind("ServiceMonitor")[0];
    if (sm && svc) {
      if (!selects(sm.spec.selector.matchLabels, svc.metadata.labels)) problem(where(sm), "does not select the taskd Service");
      if (!sm.spec.endpoints.some((e) => e.port === "metrics")) problem(where(sm), "scrapes no port named metrics");
    }
  }
  for (const so of byKind("ScaledObject")) {
    const target = so.spec.scaleTargetRef;
    if (dir.startsWith("overlays/") && !objects.some((o) => o.kind === (target.kind || "Deployment") && o.metadata.name === target.name)) {
      problem(where(so), `scales ${target.name}, which this render does not contain`);
    }
    for (const t of so.spec.triggers) {
      if (t.type !== "prometheus") continue;
      for (const p of checkExpr(t.metadata.query)) problem(where(so), `query: ${p}`);
    }
  }
  const rulesFile = path.join(k8s, "monitoring/prometheus/taskd-rules.yaml");
  for (const pr of byKind("PrometheusRule")) {
    const fromFile = YAML.parse(fs.readFileSync(rulesFile, "utf8")).groups;
    if (!util.isDeepStrictEqual(pr.spec.groups, fromFile)) {
      problem(where(pr), "spec.groups differ from monitoring/prometheus/taskd-rules.yaml: run `make k8s-rules`");
    }
  }
  for (const cm of byKind("ConfigMap")) {
    if (!cm.data || !cm.data["taskd.json"]) continue;
    if (!cm.metadata.labels || cm.metadata.labels.grafana_dashboard !== "1") problem(where(cm), "not labelled grafana_dashboard=1 for Grafana's sidecar");
    const file = fs.readFileSync(path.join(k8s, "monitoring/grafana/taskd.json"), "utf8");
    if (cm.data["taskd.json"] !== file) problem(where(cm), "data differs from monitoring/grafana/taskd.json");
  }
}

// ---- main -------------------------------------------------------------------

function kustomizeDirs() {
  const dirs = [];
  const walk = (rel) => {
    const abs = path.join(k8s, rel);
    if (fs.existsSync(path.join(abs, "kustomization.yaml"))) dirs.push(rel);
    for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
      if (e.isDirectory()) walk(rel ? `${rel}/${e.name}` : e.name);
    }
  };
  walk("");
  return dirs.sort();
}

const dirs = kustomizeDirs();
for (const d of REQUIRED_DIRS) if (!dirs.includes(d)) problem("k8s", `missing kustomization ${d}/`);

// The generated PrometheusRule is the generator's output.
const generated = execFileSync("sh", [path.join(k8s, "monitoring/gen-prometheusrule.sh")], { encoding: "utf8" });
if (generated !== fs.readFileSync(path.join(k8s, "monitoring/prometheusrule.yaml"), "utf8")) {
  problem("k8s/monitoring/prometheusrule.yaml", "is not the output of gen-prometheusrule.sh: run `make k8s-rules`");
}

let count = 0;
const kinds = new Set();
for (const dir of dirs) {
  let out;
  try {
    out = execFileSync("kubectl", ["kustomize", path.join(k8s, dir)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    problem(dir, `kubectl kustomize failed: ${e.stderr || e.message}`);
    continue;
  }
  const objects = YAML.parseAllDocuments(out).map((d) => d.toJS()).filter(Boolean);
  if (objects.length === 0) problem(dir, "renders no object");
  for (const o of objects) {
    validateSchema(`${dir}: ${o.kind}/${o.metadata && o.metadata.name}`, o);
    kinds.add(o.kind);
    count++;
  }
  checkRender(dir, objects);
  console.log(`${dir}: ${objects.length} objects: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(" ")}`);
}
for (const kind of ["StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy", "Deployment",
                    "ServiceMonitor", "PrometheusRule", "ConfigMap", "ScaledObject", "Namespace"]) {
  if (!kinds.has(kind)) problem("k8s", `no ${kind} in any render`);
}

if (problems.length) {
  console.error(`FAIL: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`OK: ${dirs.length} kustomizations, ${count} objects valid`);
