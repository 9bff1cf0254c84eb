// Validates rendered pstore manifests (kubectl kustomize output):
//   1. every object against its Kubernetes schema (npm kubernetes-models,
//      the per-kind class's validate()), plus a strict-fields pass that
//      rejects any field the API type does not have (the schemas alone
//      accept misspelt fields), using the same package's type declarations;
//   2. cross-checks between objects and against pstored: flags, $(VAR)
//      references, probe and Service ports, volumes and their mounts,
//      labels and selectors, sizes, the drain against the grace period,
//      and the security context.
//
// Usage: node validate_k8s.mjs NPM_PREFIX FLAGS_FILE NAME=RENDERED.yaml...
//   NPM_PREFIX  holds node_modules/kubernetes-models and node_modules/yaml
//   FLAGS_FILE  the flag names `pstored --help` lists, one per line
//   NAME        dev, prod, or NAME+servicemonitor (a render that includes
//               components/servicemonitor)
// Prints one line per finding; exits 1 if any check fails.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [prefix, flagsFile, ...renders] = process.argv.slice(2);
if (!prefix || !flagsFile || renders.length === 0) {
  console.error("usage: validate_k8s.mjs NPM_PREFIX FLAGS_FILE NAME=FILE...");
  process.exit(2);
}
const require = createRequire(path.join(prefix, "node_modules", "x.js"));
const YAML = require("yaml");
const modelsDir = path.dirname(require.resolve("kubernetes-models/package.json"));
const nodeModules = path.dirname(modelsDir);

const pstoredFlags = new Set(
  fs.readFileSync(flagsFile, "utf8").split("\n").map((s) => s.trim()).filter(Boolean));

let failures = 0;
let where = "";
function fail(message) {
  failures++;
  console.log(`FAIL [${where}] ${message}`);
}
function check(condition, message) {
  if (!condition) fail(message);
  return Boolean(condition);
}

// ---------------------------------------------------------------------------
// Strict fields: the property names of each API type, read from the
// kubernetes-models type declarations (.d.ts), followed through imports.

const typeCache = new Map();  // .d.ts path -> {props: Map(name -> ref)} | null

// Returns the .d.ts file an import specifier names, seen from `fromFile`.
function resolveDts(spec, fromFile) {
  const base = spec.startsWith(".")
    ? path.resolve(path.dirname(fromFile), spec)
    : path.join(nodeModules, spec);
  return base + ".d.ts";
}

// Parses the first interface of a .d.ts file: its properties and, for each,
// the .d.ts of the interface its value (or array element) has, if any.
function loadType(file) {
  if (typeCache.has(file)) return typeCache.get(file);
  let result = null;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
      imports.set(m[1], resolveDts(m[2], file));
    }
    const body = text.match(/^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m);
    if (body) {
      const props = new Map();
      const lines = body[1].split("\n");
      for (let i = 0; i < lines.length; i++) {
        const m = lines[i].match(/^ {4}"([^"]+)"\??: (.*)$/);
        if (!m) continue;
        let type = m[2].replace(/;$/, "");
        let ref = null;
        if (type === "{") {
          ref = { map: true };  // free-form keys (labels, resources...)
        } else {
          const array = type.match(/^Array<(\w+)>$/);
          if (array) type = array[1];
          if (imports.has(type)) ref = { file: imports.get(type) };
        }
        props.set(m[1], ref);
      }
      result = { props };
    }
  }
  typeCache.set(file, result);
  return result;
}

// Reports every field of `value` its type does not declare, recursively.
function checkFields(value, file, at) {
  const type = loadType(file);
  if (!type || value === null || typeof value !== "object") return;
  const items = Array.isArray(value) ? value : [value];
  items.forEach((item, index) => {
    const itemAt = Array.isArray(value) ? `${at}[${index}]` : at;
    if (item === null || typeof item !== "object") return;
    for (const [key, child] of Object.entries(item)) {
      if (!type.props.has(key)) {
        fail(`${itemAt}.${key}: no such field in ${path.basename(file, ".d.ts")}`);
        continue;
      }
      const ref = type.props.get(key);
      if (ref && ref.file) checkFields(child, ref.file, `${itemAt}.${key}`);
    }
  });
}

// ---------------------------------------------------------------------------
// Schema validation with the per-kind classes.

function modelFor(object) {
  const { apiVersion, kind } = object;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  let module;
  try {
    module = require(`kubernetes-models/${apiVersion}`);
  } catch {
    return null;
  }
  const Model = module[kind];
  if (!Model) return null;
  return { Model, dts: path.join(modelsDir, apiVersion, `${kind}.d.ts`) };
}

function validateSchema(object, optionalKinds) {
  const name = `${object.kind}/${object.metadata?.name}`;
  const model = modelFor(object);
  if (!model) {
    if (optionalKinds.has(object.kind)) {
      console.log(`note [${where}] ${name}: a custom resource, no schema here`);
      return;
    }
    fail(`${name}: no kubernetes-models class for ${object.apiVersion} ${object.kind}`);
    return;
  }
  try {
    new model.Model(object).validate();
  } catch (error) {
    const details = (error.errors || []).map((e) => `${e.instancePath} ${e.message}`);
    fail(`${name}: schema: ${details.length ? details.join("; ") : error.message}`);
  }
  checkFields(object, model.dts, name);
}

// ---------------------------------------------------------------------------
// Helpers for the cross-checks.

// Bytes in a Kubernetes quantity ("10752Mi", "10.5Gi", "8G", "1024").
function quantityBytes(q) {
  const m = String(q).match(/^([0-9.]+)([KMGTPE]i?)?$/);
  if (!m) return NaN;
  const unit = m[2] || "";
  const powers = { K: 1, M: 2, G: 3, T: 4, P: 5, E: 6 };
  const base = unit.endsWith("i") ? 1024 : 1000;
  return Number(m[1]) * (unit ? base ** powers[unit[0]] : 1);
}

// Bytes in a pstored size flag ("8GiB", "512MiB", "0"), as util/units.cc.
function flagBytes(text) {
  const m = String(text).trim().match(/^([0-9]+(?:\.[0-9]+)?)\s*(B|KiB|MiB|GiB|TiB)?$/i);
  if (!m) return NaN;
  const unit = (m[2] || "B").toLowerCase();
  const powers = { b: 0, kib: 1, mib: 2, gib: 3, tib: 4 };
  if (m[1].includes(".") && unit === "b") return NaN;
  return Number(m[1]) * 1024 ** powers[unit];
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const fmt = (bytes) => `${(bytes / MiB).toFixed(0)} MiB`;

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels?.[k] === v);
}

function portOf(address) {
  const m = String(address).match(/^(.*):([0-9]+)$/);
  return m ? { host: m[1], port: Number(m[2]) } : null;
}

const SIZE_FLAGS = ["dram_bytes", "pin_budget_bytes", "nvme_bytes", "block_bytes", "readahead_bytes"];
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "critical", "off"];

// ---------------------------------------------------------------------------

function checkRender(name, objects) {
  const overlay = name.split("+")[0];
  const withServiceMonitor = name.includes("+servicemonitor");
  const byKind = (kind) => objects.filter((o) => o.kind === kind);

  for (const object of objects) validateSchema(object, new Set(["ServiceMonitor"]));

  const kinds = objects.map((o) => o.kind).sort();
  console.log(`[${where}] ${objects.length} objects: ${kinds.join(", ")}`);

  // The workload: a StatefulSet (one machine's store per pod: dev, prod) or
  // a DaemonSet (cache nodes over Ceph: cluster).
  const workloads = [...byKind("StatefulSet"), ...byKind("DaemonSet")];
  if (!check(workloads.length === 1, `want one StatefulSet or DaemonSet, found ${workloads.length}`)) return;
  const sts = workloads[0];
  const daemonSet = sts.kind === "DaemonSet";
  check(daemonSet === (overlay === "cluster"), `${overlay} renders a ${sts.kind}`);
  const spec = sts.spec;
  const pod = spec.template.spec;
  const podLabels = spec.template.metadata?.labels || {};
  const configMaps = new Map(byKind("ConfigMap").map((c) => [c.metadata.name, c]));
  const namespace = sts.metadata.namespace;

  check(namespace, `the ${sts.kind} has no namespace (the overlay sets one)`);
  for (const o of objects) {
    check(o.metadata.namespace === namespace, `${o.kind}/${o.metadata.name} is in namespace ${o.metadata.namespace}, not ${namespace}`);
  }

  // Replicas per overlay.
  const wantReplicas = { dev: 1, prod: 3 }[overlay];
  if (wantReplicas !== undefined) {
    check(spec.replicas === wantReplicas, `replicas ${spec.replicas}, want ${wantReplicas} in ${overlay}`);
  }
  check(matches(spec.selector.matchLabels, podLabels), `the ${sts.kind}'s selector does not match its pod template's labels`);
  check(spec.updateStrategy?.type !== "OnDelete", "updateStrategy OnDelete: upgrades would not roll");

  // Exactly one container: pstored.
  check(pod.containers.length === 1, `want one container, found ${pod.containers.length}`);
  const c = pod.containers[0];
  check(/:[\w][\w.-]*$|@sha256:/.test(c.image) && !c.image.endsWith(":latest"),
    `image ${c.image} has no pinned tag (the overlay's images: sets one)`);

  // Environment: env and envFrom ConfigMaps, for $(VAR) references.
  const env = new Map();
  for (const from of c.envFrom || []) {
    if (from.configMapRef) {
      const cm = configMaps.get(from.configMapRef.name);
      if (check(cm, `envFrom names ConfigMap ${from.configMapRef.name}, which is not in the render`)) {
        for (const [k, v] of Object.entries(cm.data || {})) env.set((from.prefix || "") + k, v);
      }
    }
  }
  for (const e of c.env || []) env.set(e.name, e.value ?? "(from a source)");

  // Flags: names pstored accepts, $(VAR)s defined, values well-formed.
  check(!c.command, "the container overrides command: keep the image's ENTRYPOINT (pstored)");
  const flags = new Map();
  for (const arg of c.args || []) {
    const m = arg.match(/^--([A-Za-z0-9_-]+)=(.*)$/);
    if (!check(m, `argument '${arg}' is not --flag=value`)) continue;
    const [, flag, raw] = m;
    check(pstoredFlags.has(flag), `--${flag} is not a pstored flag (pstored --help)`);
    check(!flags.has(flag), `--${flag} is given twice`);
    const value = raw.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, v) => {
      if (!check(env.has(v), `--${flag} uses $(${v}), which no env or envFrom ConfigMap defines (it would reach pstored as the literal text)`)) return all;
      return env.get(v);
    });
    flags.set(flag, value);
  }
  for (const flag of SIZE_FLAGS) {
    if (flags.has(flag)) check(!Number.isNaN(flagBytes(flags.get(flag))), `--${flag}=${flags.get(flag)} is not a size pstored parses`);
  }
  if (flags.has("drain_seconds")) check(/^[0-9]+(\.[0-9]+)?$/.test(flags.get("drain_seconds")), `--drain_seconds=${flags.get("drain_seconds")} is not a number`);
  if (flags.has("worker_threads")) {
    const n = Number(flags.get("worker_threads"));
    check(Number.isInteger(n) && n >= 1 && n <= 256, `--worker_threads=${flags.get("worker_threads")} is not in [1, 256]`);
  }
  for (const flag of ["io_uring", "sync_commits"]) {
    if (flags.has(flag)) check(/^(true|false|1|0)$/.test(flags.get(flag)), `--${flag}=${flags.get(flag)} is not a boolean`);
  }
  if (flags.has("log_level")) check(LOG_LEVELS.includes(flags.get("log_level")), `--log_level=${flags.get("log_level")} is not a level`);

  // Listeners: all interfaces (the kubelet probes the pod IP), ports
  // declared as container ports.
  const ports = new Map((c.ports || []).map((p) => [p.name, p.containerPort]));
  const portNumbers = new Set((c.ports || []).map((p) => p.containerPort));
  const listen = portOf(flags.get("listen") || "");
  const metrics = portOf(flags.get("metrics_listen") || "");
  if (check(listen, "no --listen=HOST:PORT")) {
    check(["0.0.0.0", "[::]", ""].includes(listen.host), `--listen=${flags.get("listen")} is not all interfaces: probes and Services could not reach it`);
    check(ports.get("grpc") === listen.port, `container port "grpc" (${ports.get("grpc")}) is not the --listen port ${listen.port}`);
  }
  if (check(metrics, "no --metrics_listen=HOST:PORT")) {
    check(["0.0.0.0", "[::]", ""].includes(metrics.host), `--metrics_listen=${flags.get("metrics_listen")} is not all interfaces: Prometheus could not reach it`);
    check(ports.get("metrics") === metrics.port, `container port "metrics" (${ports.get("metrics")}) is not the --metrics_listen port ${metrics.port}`);
  }

  // Probes: Kubernetes' gRPC probe on the --listen port, health service "".
  for (const kind of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const probe = c[kind];
    if (!check(probe, `no ${kind}`)) continue;
    if (!check(probe.grpc, `${kind} is not a gRPC probe`)) continue;
    check(listen && probe.grpc.port === listen.port, `${kind} probes port ${probe.grpc.port}, but pstored's gRPC listens on ${listen?.port}`);
    check(portNumbers.has(probe.grpc.port), `${kind} port ${probe.grpc.port} is not a container port`);
    check(!probe.grpc.service, `${kind} asks for health service '${probe.grpc.service}'; pstored reports on ""`);
  }
  if (c.livenessProbe && c.readinessProbe) {
    const liveFor = (c.livenessProbe.periodSeconds ?? 10) * (c.livenessProbe.failureThreshold ?? 3);
    check(liveFor > (c.readinessProbe.periodSeconds ?? 10) * (c.readinessProbe.failureThreshold ?? 3),
      "the liveness probe gives up no later than readiness: a busy pod would be restarted, not just taken out of Services");
  }

  // Prometheus annotations.
  const annotations = spec.template.metadata?.annotations || {};
  const scrape = annotations["prometheus.io/scrape"];
  check(scrape === (withServiceMonitor ? "false" : "true"), `prometheus.io/scrape is '${scrape}'`);
  check(metrics && annotations["prometheus.io/port"] === String(metrics.port), `prometheus.io/port '${annotations["prometheus.io/port"]}' is not the metrics port ${metrics?.port}`);
  check(annotations["prometheus.io/path"] === "/metrics", "prometheus.io/path is not /metrics");

  // Volumes: every mount has a volume or claim template; every volume and
  // claim template is mounted; no name is both.
  const volumes = new Map((pod.volumes || []).map((v) => [v.name, v]));
  const claims = new Map((spec.volumeClaimTemplates || []).map((t) => [t.metadata.name, t]));
  for (const n of volumes.keys()) check(!claims.has(n), `volume ${n} is both a pod volume and a volumeClaimTemplate`);
  const mounts = new Map();
  for (const m of c.volumeMounts || []) {
    check(volumes.has(m.name) || claims.has(m.name), `volumeMount ${m.name} (${m.mountPath}) has no volume or volumeClaimTemplate`);
    check(![...mounts.values()].includes(m.mountPath), `two mounts at ${m.mountPath}`);
    mounts.set(m.name, m.mountPath);
  }
  for (const n of [...volumes.keys(), ...claims.keys()]) check(mounts.has(n), `volume ${n} is never mounted`);
  const rados = flags.get("backend") === "rados";
  check(rados === daemonSet, `--backend=${flags.get("backend") ?? "rocksdb"} with a ${sts.kind}`);
  for (const [dir, volume] of rados ? [["nvme_dir", "nvme"]] : [["nvme_dir", "nvme"], ["cold_dir", "cold"]]) {
    check(flags.get(dir) === mounts.get(volume), `--${dir}=${flags.get(dir)} is not where volume ${volume} is mounted (${mounts.get(volume)})`);
  }
  if (rados) {
    // The Ceph conf and keyring: from a Secret, mounted read-only, where
    // --ceph_conf points; a pool named.
    const conf = flags.get("ceph_conf") || "";
    const secretMount = (c.volumeMounts || []).find((m) => volumes.get(m.name)?.secret && conf.startsWith(m.mountPath + "/"));
    check(secretMount, `--ceph_conf=${conf} is not in a mounted Secret volume`);
    check(secretMount?.readOnly === true, "the Ceph Secret is not mounted readOnly");
    check(flags.get("rados_pool"), "no --rados_pool");
    check(!mounts.has("cold"), "a cold volume with --backend=rados: the durable copy is in Ceph");
  }
  if (overlay === "dev") {
    check(claims.size === 0, "dev has volumeClaimTemplates; want emptyDir volumes");
    for (const n of ["nvme", "cold"]) {
      const v = volumes.get(n);
      if (check(v && v.emptyDir, `dev volume ${n} is not an emptyDir`)) {
        check(v.emptyDir.medium !== "Memory", `dev volume ${n} is tmpfs: O_DIRECT fails there, and it counts against memory`);
      }
    }
  }
  if (overlay === "prod") {
    for (const n of ["nvme", "cold"]) check(claims.has(n) && !volumes.has(n), `prod volume ${n} is not a volumeClaimTemplate`);
    check(claims.get("nvme")?.spec?.storageClassName, "prod's nvme claim sets no storageClassName (a local NVMe class)");
  }
  // The NVMe tier must fit its volume.
  const nvmeBytes = flagBytes(flags.get("nvme_bytes") ?? "4GiB");
  const nvmeVolume = claims.get("nvme")?.spec?.resources?.requests?.storage ??
    volumes.get("nvme")?.ephemeral?.volumeClaimTemplate?.spec?.resources?.requests?.storage ??
    volumes.get("nvme")?.emptyDir?.sizeLimit;
  if (check(nvmeVolume, "the nvme volume has no size (claim request or emptyDir sizeLimit)")) {
    check(nvmeBytes <= 0.95 * quantityBytes(nvmeVolume), `--nvme_bytes=${flags.get("nvme_bytes")} does not leave 5% of the ${nvmeVolume} nvme volume free`);
  }
  if (!rados) {
    check(claims.get("cold")?.spec?.resources?.requests?.storage ?? volumes.get("cold")?.emptyDir?.sizeLimit,
      "the cold volume has no size (claim request or emptyDir sizeLimit)");
  }

  // Memory: the DRAM budget + 20% + 256 MiB, + 5% for the estimate's error,
  // under the limit; request = limit.
  const dram = flagBytes(flags.get("dram_bytes") ?? "1GiB");
  const pin = flagBytes(flags.get("pin_budget_bytes") ?? "0");
  check(pin <= dram, `--pin_budget_bytes=${flags.get("pin_budget_bytes")} is above --dram_bytes=${flags.get("dram_bytes")}`);
  const limit = quantityBytes(c.resources?.limits?.memory);
  const request = quantityBytes(c.resources?.requests?.memory);
  const peak = dram * 1.2 + 256 * MiB;
  if (check(!Number.isNaN(limit), "no memory limit")) {
    check(peak * 1.05 <= limit, `expected peak RSS ${fmt(peak)} (dram ${fmt(dram)} x 1.2 + 256 MiB) + 5% is above the memory limit ${c.resources.limits.memory}`);
    check(request === limit, `memory request ${c.resources?.requests?.memory} is not the limit ${c.resources.limits.memory}`);
    console.log(`[${where}] memory: dram ${fmt(dram)}, expected peak ${fmt(peak)}, limit ${fmt(limit)} (${fmt(limit - peak)} headroom)`);
  }

  // Shutdown: the drain finishes before the kubelet's SIGKILL.
  const drain = Number(flags.get("drain_seconds") ?? 30);
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  // After the drain pstored waits up to 10 s for cancelled calls to let go of
  // the store, then closes RocksDB (flushing its memtable): 15 s at least.
  check(grace >= drain + 15, `terminationGracePeriodSeconds ${grace} is not at least --drain_seconds ${drain} + 15 s (cancelled calls let go, RocksDB closes)`);

  // Security context.
  const psc = pod.securityContext || {};
  const csc = c.securityContext || {};
  check(psc.runAsNonRoot === true || csc.runAsNonRoot === true, "runAsNonRoot is not true");
  check((csc.runAsUser ?? psc.runAsUser) > 0, "runAsUser is not a non-root uid");
  check(psc.fsGroup > 0, "no fsGroup: the volumes would not be writable by the pstore user");
  check((csc.seccompProfile ?? psc.seccompProfile)?.type === "RuntimeDefault", "seccompProfile is not RuntimeDefault");
  check(csc.allowPrivilegeEscalation === false, "allowPrivilegeEscalation is not false");
  check(csc.readOnlyRootFilesystem === true, "readOnlyRootFilesystem is not true");
  check(csc.privileged !== true, "the container is privileged");
  check((csc.capabilities?.drop || []).includes("ALL"), "capabilities do not drop ALL");
  check(!(csc.capabilities?.add || []).length, `capabilities add ${csc.capabilities?.add}`);

  // Services: a headless one named by serviceName, a ClusterIP one; every
  // selector picks the pods, every targetPort is a container port.
  const services = byKind("Service");
  const headless = daemonSet ? undefined : services.find((s) => s.metadata.name === spec.serviceName);
  if (!daemonSet && check(headless, `serviceName ${spec.serviceName} names no Service in the render`)) {
    check(headless.spec.clusterIP === "None", `Service ${spec.serviceName} is not headless (clusterIP: None)`);
  }
  if (daemonSet) {
    // Workers reach their own node's pstored.
    check(services.some((s) => s.spec.internalTrafficPolicy === "Local"),
      "no Service with internalTrafficPolicy: Local routes workers to their own node's pstored");
  }
  check(services.some((s) => s !== headless && (s.spec.type ?? "ClusterIP") === "ClusterIP" && s.spec.clusterIP !== "None"),
    "no ClusterIP Service for clients");
  for (const s of services) {
    check(s.spec.selector && matches(s.spec.selector, podLabels), `Service ${s.metadata.name}'s selector does not pick the pstore pods`);
    for (const p of s.spec.ports || []) {
      const target = p.targetPort ?? p.port;
      check(typeof target === "number" ? portNumbers.has(target) : ports.has(target),
        `Service ${s.metadata.name} port ${p.name} targets ${target}, which is not a container port`);
    }
  }

  // PodDisruptionBudget: picks the pods, lets one go at a time.
  const pdbs = byKind("PodDisruptionBudget");
  if (check(pdbs.length === 1, `want one PodDisruptionBudget, found ${pdbs.length}`)) {
    const pdb = pdbs[0].spec;
    check(matches(pdb.selector?.matchLabels, podLabels) && Object.keys(pdb.selector?.matchLabels || {}).length > 0,
      "the PodDisruptionBudget's selector does not pick the pstore pods");
    if (pdb.minAvailable !== undefined && !daemonSet) {
      check(Number(pdb.minAvailable) < spec.replicas, `minAvailable ${pdb.minAvailable} with ${spec.replicas} replicas blocks every node drain`);
    } else {
      check(pdb.maxUnavailable !== undefined && pdb.maxUnavailable !== 0 && pdb.maxUnavailable !== "0%",
        "the PodDisruptionBudget allows no disruption: node drains would hang");
    }
  }

  // The optional ServiceMonitor scrapes a Service port named in its endpoints.
  const monitors = byKind("ServiceMonitor");
  check(monitors.length === (withServiceMonitor ? 1 : 0), `${monitors.length} ServiceMonitors`);
  for (const sm of monitors) {
    for (const endpoint of sm.spec.endpoints || []) {
      const scraped = services.filter((s) => matches(sm.spec.selector?.matchLabels, s.metadata.labels) &&
        (s.spec.ports || []).some((p) => p.name === endpoint.port));
      check(scraped.length > 0, `ServiceMonitor port ${endpoint.port} matches no port of a selected Service`);
      check(endpoint.path === "/metrics", "ServiceMonitor path is not /metrics");
    }
  }
}

for (const arg of renders) {
  const eq = arg.indexOf("=");
  const name = arg.slice(0, eq);
  const file = arg.slice(eq + 1);
  where = name;
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  const objects = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      fail(`YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const object = doc.toJS();
    if (object) objects.push(object);
  }
  const before = failures;
  checkRender(name, objects);
  console.log(`${failures === before ? "ok" : "FAILED"} [${name}]`);
}

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log("OK: every object matches its schema and the cross-checks hold");
