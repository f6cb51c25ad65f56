// Offline validation of convoy's Kubernetes manifests, run by ctest (k8s_manifests):
//
//   node deploy/k8s/validate/validate.mjs --convoy build/launcher/convoy
//
// For every overlay in deploy/k8s/overlays/: render it with `kubectl kustomize` (in a scratch
// copy, with the token and TLS files an operator would create), then
//   - lint the committed YAML and the rendered YAML with yamllint;
//   - validate every object with ajv, unknown fields being errors as the API server's strict
//     field validation makes them (object schemas get additionalProperties: false unless they
//     preserve unknown fields): core objects against the Kubernetes API schemas the
//     kubernetes-models package ships, the MPIJob against the CRD's openAPIV3Schema (vendored
//     here from mpi-operator, Apache-2.0; or CONVOY_MPIJOB_CRD); pod templates of core kinds
//     also against the PodTemplateSpec schema the CRD embeds;
//   - cross-check what no schema does: probe and Service ports are ports the containers declare;
//     every Secret, ConfigMap and PersistentVolumeClaim referenced is in the overlay; images are
//     the one deploy/image/build.sh builds; every convoy command line is accepted by this build's
//     convoy (launch --dry-run; the coordinator started on 127.0.0.1 and stopped).
// --self-test also breaks the small overlay in known ways and requires each to be caught.
// Prints one line per overlay and exits 1 with every problem found, one per line.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const k8s = path.resolve(here, "..");
const root = path.resolve(k8s, "../..");
const args = process.argv.slice(2);
const convoy = path.resolve(args[args.indexOf("--convoy") + 1] ?? "build/launcher/convoy");
const crdPath =
  process.env.CONVOY_MPIJOB_CRD ?? path.resolve(root, "deploy/k8s/validate/kubeflow.org_mpijobs.yaml");
const problems = [];
const problem = (where, text) => problems.push(`${where}: ${text}`);

// The strict form of an OpenAPI v3 schema, as the API server applies it with fieldValidation=Strict.
function strict(schema) {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== "object") return schema;
  const out = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] = key === "properties"
      ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strict(v)]))
      : strict(value);
  }
  if (out.properties && out.additionalProperties === undefined &&
      !out["x-kubernetes-preserve-unknown-fields"]) {
    out.additionalProperties = false;
  }
  return out;
}

const crd = YAML.parse(fs.readFileSync(crdPath, "utf8"));
const v2beta1 = crd.spec.versions.find((v) => v.name === "v2beta1");
const mpijobSchema = strict(v2beta1.schema.openAPIV3Schema);
// Formats (int32, int64, byte) are advisory in OpenAPI; types and values are checked.
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, logger: false });
ajv.addKeyword("x-kubernetes-int-or-string");
const validateMpiJob = ajv.compile(mpijobSchema);
const validatePodTemplate = ajv.compile(
  mpijobSchema.properties.spec.properties.mpiReplicaSpecs.additionalProperties.properties.template);

// Core kinds: kubernetes-models' schemas (generated from the Kubernetes API's OpenAPI), made strict
// the same way and validated with ajv. The package registers each schema through
// @kubernetes-models/validate's register(); that module is replaced (before kubernetes-models
// loads) by one that keeps the schemas in a strict ajv of our own, with the package's formats.
const require = createRequire(import.meta.url);
const coreAjv = new Ajv({ strict: false, strictTypes: false, allErrors: true, logger: false });
addFormats(coreAjv);
coreAjv.addFormat("byte", { type: "string", validate: /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/ });
coreAjv.addFormat("quantity", { type: "string", validate: /^[+-]?(?:\d+|\d+\.\d+|\d+\.|\.\d+)(?:[KMGTPE]i|[YZEPTGMkhdcmunpfazy]|da|[eE][+-]?\d+)?$/ });
for (const f of ["int32", "int64", "double", "float", "string"]) coreAjv.addFormat(f, true);
require.cache[require.resolve("@kubernetes-models/validate")] = {
  id: "strict-validate", loaded: true,
  exports: {
    register(id, schema) { if (!coreAjv.getSchema(id)) coreAjv.addSchema(strict(schema), id); },
    validate(id, data) {
      if (!coreAjv.validate(id, data)) {
        throw new Error(coreAjv.errors.filter((e) => e.keyword !== "oneOf" && !(e.keyword === "type" && e.params.type === "null"))
          .map((e) => `${e.instancePath} ${e.message}${e.params.additionalProperty ? ` '${e.params.additionalProperty}'` : ""}`).join("; "));
      }
    },
  },
};

async function validateCore(object) {
  if (object.kind === "Secret" && object.data) {
    // kustomize wraps long base64 values over lines; the API server's decoder skips the newlines
    // (Go's encoding/base64), the models' "byte" format does not.
    object = { ...object, data: Object.fromEntries(
      Object.entries(object.data).map(([k, v]) => [k, v.replace(/\s/g, "")])) };
  }
  const [group, version] = object.apiVersion.includes("/")
    ? object.apiVersion.split("/")
    : ["", object.apiVersion];
  const module = `kubernetes-models/${group ? group + "/" : ""}${version}/${object.kind}`;
  const { [object.kind]: Model } = require(module);
  new Model(object).validate();
}

const podTemplates = (o) =>
  o.kind === "MPIJob"
    ? Object.values(o.spec.mpiReplicaSpecs).map((r) => r.template)
    : o.spec?.template ? [o.spec.template] : [];

function crossCheck(where, objects, image) {
  const byKind = (kind) => objects.filter((o) => o.kind === kind).map((o) => o.metadata.name);
  const secrets = byKind("Secret"), claims = byKind("PersistentVolumeClaim");
  const configMaps = byKind("ConfigMap");
  for (const o of objects) {
    for (const t of podTemplates(o)) {
      const spec = t.spec;
      for (const v of spec.volumes ?? []) {
        if (v.secret && !secrets.includes(v.secret.secretName)) {
          problem(where, `${o.kind}/${o.metadata.name} mounts Secret '${v.secret.secretName}', which the overlay does not define`);
        }
        if (v.persistentVolumeClaim && !claims.includes(v.persistentVolumeClaim.claimName)) {
          problem(where, `${o.kind}/${o.metadata.name} uses claim '${v.persistentVolumeClaim.claimName}', which the overlay does not define`);
        }
        if (v.configMap && !configMaps.includes(v.configMap.name)) {
          problem(where, `${o.kind}/${o.metadata.name} mounts ConfigMap '${v.configMap.name}', which the overlay does not define`);
        }
      }
      for (const c of spec.containers) {
        if (c.image !== image) problem(where, `${o.metadata.name}/${c.name} runs image '${c.image}', not '${image}'`);
        const ports = (c.ports ?? []).flatMap((p) => [p.containerPort, p.name]);
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
          const port = probe?.grpc?.port ?? probe?.tcpSocket?.port ?? probe?.httpGet?.port;
          if (probe && !ports.includes(port)) {
            problem(where, `${o.metadata.name}/${c.name}: a probe checks port ${port}, which the container does not declare`);
          }
        }
        const mounts = (c.volumeMounts ?? []).map((m) => m.name);
        for (const m of mounts) {
          if (!(spec.volumes ?? []).some((v) => v.name === m)) problem(where, `${o.metadata.name}/${c.name} mounts undefined volume '${m}'`);
        }
      }
    }
  }
  for (const s of objects.filter((o) => o.kind === "Service")) {
    const targets = objects.filter((o) => podTemplates(o).some((t) =>
      Object.entries(s.spec.selector ?? {}).every(([k, v]) => t.metadata?.labels?.[k] === v)));
    if (targets.length === 0) problem(where, `Service/${s.metadata.name} selects no pods`);
    for (const p of s.spec.ports) {
      const port = p.targetPort ?? p.port;
      const declared = targets.some((o) => podTemplates(o).some((t) => t.spec.containers.some(
        (c) => (c.ports ?? []).some((q) => q.name === port || q.containerPort === port))));
      if (!declared) problem(where, `Service/${s.metadata.name} targets port ${port}, which no selected container declares`);
    }
  }
}

// Runs a convoy command line of a manifest with this build, paths replaced by scratch files.
async function checkCommand(where, command, scratch) {
  if (command[0] !== "convoy") return;
  const files = { "/etc/mpi/hostfile": path.join(scratch, "hostfile") };
  fs.writeFileSync(files["/etc/mpi/hostfile"], "localhost slots=2\n");
  const argv = command.slice(1).map((a) => files[a] ?? a);
  if (argv[0] === "launch") {
    try {
      execFileSync(convoy, [argv[0], "--dry-run", ...argv.slice(1)], { stdio: "pipe" });
    } catch (e) {
      problem(where, `'${command.join(" ")}' is refused by this convoy: ${e.stderr.toString().trim()}`);
    }
    return;
  }
  if (argv[0] === "coordinator") {
    // Started for real on 127.0.0.1 with scratch state, token and certificate; stopped once it
    // listens.
    const swap = (flag, value) => { const i = argv.indexOf(flag); if (i >= 0) argv[i + 1] = value; };
    swap("--listen", "127.0.0.1:0");
    swap("--http-listen", "127.0.0.1:0");
    swap("--state-dir", path.join(scratch, "state"));
    swap("--auth-token-file", path.join(scratch, "token"));
    swap("--tls-cert", path.join(scratch, "tls.crt"));
    swap("--tls-key", path.join(scratch, "tls.key"));
    const child = spawn(convoy, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 20000);
      const poll = setInterval(() => { if (out.includes("listening")) child.kill("SIGTERM"); }, 50);
      child.on("exit", (c) => { clearTimeout(timer); clearInterval(poll); resolve(c); });
    });
    if (!out.includes("listening") || code !== 0) {
      problem(where, `'${command.join(" ")}' does not start with this convoy: ${err.trim()}`);
    }
    return;
  }
  problem(where, `unexpected convoy command '${argv[0]}'`);
}

async function checkObjects(where, objects, scratch) {
  for (const o of objects) {
    const name = `${where} ${o.kind}/${o.metadata?.name}`;
    if (o.kind === "MPIJob") {
      if (!validateMpiJob(o)) {
        for (const e of validateMpiJob.errors) problem(name, `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
      }
    } else {
      try { await validateCore(o); } catch (e) { problem(name, e.message); }
      for (const t of podTemplates(o)) {
        if (!validatePodTemplate(t)) {
          for (const e of validatePodTemplate.errors) problem(name, `template${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
        }
      }
    }
    for (const t of podTemplates(o)) {
      for (const c of t.spec.containers) await checkCommand(name, c.command ?? [], scratch);
    }
  }
  crossCheck(where, objects, image);
}

// --self-test: each of these broken variants of the small overlay must be caught, so that the
// checks above are known to be able to fail.
async function mutationsAreCaught(where, objects, scratch) {
  const find = (os, kind) => os.find((o) => o.kind === kind);
  const worker = (os) => find(os, "MPIJob").spec.mpiReplicaSpecs.Worker.template.spec;
  const launcher = (os) => find(os, "MPIJob").spec.mpiReplicaSpecs.Launcher.template.spec;
  const coordinator = (os) => find(os, "Deployment").spec.template.spec;
  const mutations = {
    "an unknown field in an MPIJob container": (os) => { worker(os).containers[0].imagee = "x"; },
    "an unknown field in a Deployment's pod": (os) => { coordinator(os).containerz = []; },
    "an unknown field in a Service": (os) => { find(os, "Service").spec.portz = []; },
    "an unknown field in a Deployment's spec": (os) => { find(os, "Deployment").spec.replicaz = 2; },
    "an unknown field in a volume claim": (os) => { find(os, "PersistentVolumeClaim").spec.size = "1Gi"; },
    "a wrong type in the MPIJob": (os) => { find(os, "MPIJob").spec.slotsPerWorker = "two"; },
    "a wrong type in a Service": (os) => { find(os, "Service").spec.ports[0].port = "grpc"; },
    "a probe on an undeclared port": (os) => { coordinator(os).containers[0].readinessProbe.grpc.port = 7071; },
    "a Service targeting an undeclared port": (os) => { find(os, "Service").spec.ports[0].targetPort = "no-such-port"; },
    "a Secret the overlay lacks": (os) => { os.splice(os.indexOf(find(os, "Secret")), 1); },
    "a claim the overlay lacks": (os) => { os.splice(os.indexOf(find(os, "PersistentVolumeClaim")), 1); },
    "another image": (os) => { worker(os).containers[0].image = "convoy:latest"; },
    "a train flag this convoy refuses": (os) => { launcher(os).containers[0].command.push("--epochz", "1"); },
    "a model this convoy lacks": (os) => {
      const c = launcher(os).containers[0].command; c[c.indexOf("fashion_cnn")] = "resnet9000";
    },
    "a coordinator flag this convoy refuses": (os) => { coordinator(os).containers[0].command.push("--verbose"); },
  };
  for (const [name, mutate] of Object.entries(mutations)) {
    const copy = structuredClone(objects);
    mutate(copy);
    const before = problems.length;
    await checkObjects(`${where} [${name}]`, copy, scratch);
    const found = problems.splice(before);
    if (found.length === 0) problem(where, `self-test: ${name} was not caught`);
    else console.log(`self-test: ${name}: caught (${found[0].slice(0, 140)})`);
  }
}

const selfTest = args.includes("--self-test");
const version = execFileSync(convoy, ["--version"]).toString().trim().split(" ")[1];
const image = `localhost/convoy:${version}`;
execFileSync("yamllint", ["-c", path.join(here, "yamllint.yaml"), path.join(k8s, "base"),
  path.join(k8s, "overlays")], { stdio: "inherit" });
for (const overlay of fs.readdirSync(path.join(k8s, "overlays")).sort()) {
  const where = `overlays/${overlay}`;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "convoy-k8s-"));
  try {
    // What an operator creates before applying: a token, a certificate.
    fs.cpSync(k8s, path.join(scratch, "k8s"), { recursive: true, filter: (p) => !p.includes("node_modules") });
    const dir = path.join(scratch, "k8s/overlays", overlay);
    fs.writeFileSync(path.join(dir, "token"), "0123456789abcdef0123456789abcdef\n");
    fs.writeFileSync(path.join(scratch, "token"), "0123456789abcdef0123456789abcdef\n");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
      "-subj", "/CN=convoy-coordinator", "-keyout", path.join(dir, "tls.key"),
      "-out", path.join(dir, "tls.crt")], { stdio: "pipe" });
    fs.copyFileSync(path.join(dir, "tls.key"), path.join(scratch, "tls.key"));
    fs.copyFileSync(path.join(dir, "tls.crt"), path.join(scratch, "tls.crt"));
    const rendered = execFileSync("kubectl", ["kustomize", dir]).toString();
    fs.writeFileSync(path.join(scratch, "rendered.yaml"), rendered);
    execFileSync("yamllint", ["-c", path.join(here, "yamllint.yaml"), path.join(scratch, "rendered.yaml")], { stdio: "inherit" });
    const objects = YAML.parseAllDocuments(rendered).map((d) => d.toJS());
    await checkObjects(where, objects, scratch);
    if (selfTest && overlay === "small") await mutationsAreCaught(where, objects, scratch);
    console.log(`${where}: ${objects.length} objects (${objects.map((o) => o.kind).join(", ")}) rendered and checked`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
