// The rehearsal (deploy/k8s/rehearse.sh): an overlay's rendered manifests played as pods on this
// machine, as mpi-operator and the kubelet would play them, with no cluster and no route outside.
//
//   - Each pod is a container of the built image (podman, the vfs driver, runc) in a network
//     namespace of its own, with its own address on a bridge in a hub namespace that has no route
//     anywhere else. Names resolve as the Services make them (the coordinator's Service name, the
//     workers' `<job>-worker-<i>.<job>.<namespace>.svc`), only among these pods.
//   - Commands, user, mounts and environment come from the rendered YAML: the token Secret's data
//     is written to the mounted path, the coordinator's volume claim is a scratch directory, an
//     emptyDir a scratch directory. What the operator adds itself is made as it makes it: the ssh
//     key Secret (id_rsa, id_rsa.pub, authorized_keys at sshAuthMountPath), the hostfile
//     (`<host> slots=<slotsPerWorker>` at /etc/mpi/hostfile) and its OMPI_MCA_* settings.
//   - The coordinator starts first; its gRPC readiness probe is asked as the kubelet asks it (the
//     standard health service, from outside the pod); the workers' tcpSocket probes likewise; then
//     the launcher (launcherCreationPolicy: WaitForWorkersReady). MPI runs over TCP between the
//     pods (shared memory cannot cross them).
//   - Mid-run a worker pod is killed and created again as the operator would; the job must
//     resume and finish by itself: the launcher's final JSON line and `convoy monitor status`
//     against the coordinator pod (one restart recorded) are checked.
// Everything it creates is removed at the end, also on failure.
import { execFileSync, spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const k8s = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(k8s, "../..");
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const overlay = option("--overlay", "rehearsal");
const convoy = path.resolve(option("--convoy", path.join(root, "build/launcher/convoy")));
const started = Date.now();
const id = `cv${process.pid % 100000}`;
const podman = ["podman", "--storage-driver", "vfs"];
const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { stdio: "pipe", ...opts }).toString();
const say = (text) => console.log(`rehearse: ${text}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cleanups = [];

async function main() {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "convoy-rehearse-"));
  fs.chmodSync(scratch, 0o755);
  cleanups.push(() => fs.rmSync(scratch, { recursive: true, force: true }));

  // Render the overlay with a fresh token, as an operator would.
  fs.cpSync(k8s, path.join(scratch, "k8s"), { recursive: true, filter: (p) => !p.includes("node_modules") });
  const token = crypto.randomBytes(32).toString("hex") + "\n";
  fs.writeFileSync(path.join(scratch, "k8s/overlays", overlay, "token"), token);
  const objects = YAML.parseAllDocuments(run("kubectl", ["kustomize", path.join(scratch, "k8s/overlays", overlay)]))
    .map((d) => d.toJS());
  const find = (kind, name) => objects.find((o) => o.kind === kind && (!name || o.metadata.name === name));
  const deployment = find("Deployment"), service = find("Service"), mpijob = find("MPIJob");
  const namespace = mpijob.metadata.namespace ?? "default";
  const job = mpijob.metadata.name;
  const workers = mpijob.spec.mpiReplicaSpecs.Worker.replicas;
  const slots = mpijob.spec.slotsPerWorker ?? 1;
  const image = deployment.spec.template.spec.containers[0].image;

  // The network: a hub namespace with a bridge, no route outside; a namespace per pod.
  const hub = `${id}-hub`;
  run("ip", ["netns", "add", hub]);
  cleanups.push(() => run("ip", ["netns", "del", hub]));
  run("ip", ["-n", hub, "link", "add", "br0", "type", "bridge"]);
  run("ip", ["-n", hub, "addr", "add", "10.77.0.1/24", "dev", "br0"]);
  for (const l of ["lo", "br0"]) run("ip", ["-n", hub, "link", "set", l, "up"]);
  const pods = {
    coordinator: { address: "10.77.0.2", names: [service.metadata.name, `${service.metadata.name}.${namespace}.svc`] },
    launcher: { address: "10.77.0.3", names: [`${job}-launcher`] },
  };
  for (let i = 0; i < workers; ++i) {
    const name = `${job}-worker-${i}`;
    pods[`worker-${i}`] = { address: `10.77.0.${10 + i}`, names: [name, `${name}.${job}`, `${name}.${job}.${namespace}.svc`] };
  }
  let n = 0;
  for (const [pod, p] of Object.entries(pods)) {
    p.netns = `${id}-${++n}`;
    run("ip", ["netns", "add", p.netns]);
    cleanups.push(() => run("ip", ["netns", "del", p.netns]));
    run("ip", ["link", "add", `${id}a${n}`, "netns", p.netns, "type", "veth", "peer", "name", `h${n}`, "netns", hub]);
    run("ip", ["-n", hub, "link", "set", `h${n}`, "master", "br0"]);
    run("ip", ["-n", hub, "link", "set", `h${n}`, "up"]);
    run("ip", ["-n", p.netns, "link", "set", `${id}a${n}`, "name", "eth0"]);
    run("ip", ["-n", p.netns, "addr", "add", `${p.address}/24`, "dev", "eth0"]);
    for (const l of ["lo", "eth0"]) run("ip", ["-n", p.netns, "link", "set", l, "up"]);
  }
  const hosts = Object.values(pods).flatMap((p) => p.names.map((h) => `--add-host=${h}:${p.address}`));

  // What the operator makes: the ssh key Secret and the hostfile.
  const ssh = path.join(scratch, "ssh");
  fs.mkdirSync(ssh);
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(ssh, "id_rsa")]);
  fs.copyFileSync(path.join(ssh, "id_rsa.pub"), path.join(ssh, "authorized_keys"));
  const hostfile = path.join(scratch, "hostfile");
  fs.writeFileSync(hostfile, Array.from({ length: workers }, (_, i) =>
    `${job}-worker-${i}.${job}.${namespace}.svc slots=${slots}\n`).join(""));
  for (const f of [...fs.readdirSync(ssh).map((f) => path.join(ssh, f)), hostfile]) fs.chmodSync(f, 0o644);
  const operatorEnv = ["OMPI_MCA_orte_keep_fqdn_hostnames=true", "OMPI_MCA_orte_default_hostfile=/etc/mpi/hostfile",
    "OMPI_MCA_plm_rsh_args=-o ConnectionAttempts=10", `OMPI_MCA_orte_set_default_slots=${slots}`];

  // A pod's container from its template: user, command, mounts, environment.
  const secretDir = (name) => {
    const secret = find("Secret", name);
    const dir = path.join(scratch, "secrets", name);
    fs.mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(secret.data ?? {})) {
      fs.writeFileSync(path.join(dir, k), Buffer.from(v.replace(/\s/g, ""), "base64"), { mode: 0o644 });
    }
    return dir;
  };
  const containerArgs = (pod, template, extra = {}) => {
    const spec = template.spec, c = spec.containers[0];
    const user = spec.securityContext?.runAsUser ?? c.securityContext?.runAsUser;
    const argv = ["run", "-d", "--name", `${id}-${pod}`, "--runtime", "runc", "--ulimit", "nofile=1024:1024",
      "--ulimit", "nproc=1024:1024", "--network", `ns:/run/netns/${pods[pod].netns}`, "--hostname", pods[pod].names[0], ...hosts];
    if (user !== undefined) argv.push("--user", `${user}:${spec.securityContext?.runAsGroup ?? user}`);
    if (c.securityContext?.readOnlyRootFilesystem) argv.push("--read-only");
    for (const m of c.volumeMounts ?? []) {
      const v = spec.volumes.find((x) => x.name === m.name);
      let source;
      if (v.secret) source = secretDir(v.secret.secretName);
      else if (v.persistentVolumeClaim) source = path.join(scratch, "claims", v.persistentVolumeClaim.claimName);
      else if (v.emptyDir) source = path.join(scratch, "empty", pod, v.name);
      else throw new Error(`volume ${v.name}: not rehearsed`);
      fs.mkdirSync(source, { recursive: true });
      if (!v.secret) fs.chownSync(source, user ?? 0, user ?? 0);
      argv.push("-v", `${source}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
    }
    for (const e of c.env ?? []) argv.push("--env", `${e.name}=${e.value}`);
    for (const m of extra.mounts ?? []) argv.push("-v", m);
    for (const e of extra.env ?? []) argv.push("--env", e);
    return [...argv, c.image, ...(c.command ?? []), ...(c.args ?? [])];
  };
  const start = (pod, template, extra) => {
    run(podman[0], [...podman.slice(1), ...containerArgs(pod, template, extra)]);
    cleanups.push(() => { try { run(podman[0], [...podman.slice(1), "rm", "-f", "-t", "0", `${id}-${pod}`]); } catch {} });
  };
  // Probes, asked from the hub as the kubelet asks them.
  const inHub = (argv) => run("ip", ["netns", "exec", hub, ...argv]);
  const grpcReady = (address, port) => {
    try {
      return inHub(["/usr/bin/python3", "-c", [
        "import grpc, sys",
        "check = grpc.insecure_channel(sys.argv[1]).unary_unary('/grpc.health.v1.Health/Check',",
        "    request_serializer=lambda m: m, response_deserializer=lambda m: m)",
        "print('SERVING' if check(b'', timeout=2) == b'\\x08\\x01' else 'NOT_SERVING')"].join("\n"),
        `${address}:${port}`]).includes("SERVING");
    } catch { return false; }
  };
  const tcpReady = (address, port) => {
    try { inHub(["/usr/bin/python3", "-c", `import socket; socket.create_connection(("${address}", ${port}), 2)`]); return true; } catch { return false; }
  };
  const waitFor = async (what, ready, seconds = 60) => {
    for (const deadline = Date.now() + seconds * 1000; Date.now() < deadline; await sleep(200)) if (ready()) return;
    throw new Error(`${what} not ready within ${seconds} s`);
  };

  // 1. The coordinator, ready by its gRPC probe.
  const coordinatorPort = deployment.spec.template.spec.containers[0].readinessProbe.grpc.port;
  start("coordinator", deployment.spec.template);
  await waitFor("coordinator readiness (gRPC health)", () => grpcReady(pods.coordinator.address, coordinatorPort));
  say(`coordinator ready (gRPC health SERVING on ${pods.coordinator.address}:${coordinatorPort}) after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  // 2. The workers, ready by their tcpSocket probe.
  const workerTemplate = mpijob.spec.mpiReplicaSpecs.Worker.template;
  const workerPort = workerTemplate.spec.containers[0].readinessProbe.tcpSocket.port;
  const sshMount = `${ssh}:${mpijob.spec.sshAuthMountPath}:ro`;
  const startWorker = (i) => start(`worker-${i}`, workerTemplate, { mounts: [sshMount] });
  for (let i = 0; i < workers; ++i) startWorker(i);
  for (let i = 0; i < workers; ++i) await waitFor(`worker-${i} readiness`, () => tcpReady(pods[`worker-${i}`].address, workerPort));
  say(`${workers} workers ready (ssh on port ${workerPort})`);

  // 3. The launcher; its output is followed.
  start("launcher", mpijob.spec.mpiReplicaSpecs.Launcher.template,
    { mounts: [sshMount, `${hostfile}:/etc/mpi/hostfile:ro`], env: operatorEnv });
  const logs = spawn(podman[0], [...podman.slice(1), "logs", "-f", `${id}-launcher`]);
  let out = "", err = "";
  logs.stdout.on("data", (d) => (out += d));
  logs.stderr.on("data", (d) => (err += d));
  const steps = () => [...out.matchAll(/"event":"step".*?"step":(\d+)/g)].map((m) => Number(m[1]));

  // 4. Mid-run, a worker pod dies and the operator creates it again.
  await waitFor("training to reach step 100", () => steps().some((s) => s >= 100), 300);
  const victim = workers - 1;
  run(podman[0], [...podman.slice(1), "rm", "-f", "-t", "0", `${id}-worker-${victim}`]);
  const killedAt = Date.now();
  say(`killed pod ${job}-worker-${victim} at step ${Math.max(...steps())}`);
  startWorker(victim);
  await waitFor(`worker-${victim} readiness`, () => tcpReady(pods[`worker-${victim}`].address, workerPort));
  say(`pod ${job}-worker-${victim} recreated and ready after ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);

  // 5. The job finishes by itself.
  const exitCode = Number(run(podman[0], [...podman.slice(1), "wait", `${id}-launcher`]).trim());
  await sleep(500);
  logs.kill();
  const final = out.split("\n").filter((l) => l.includes('"event":"final"')).pop();
  const problems = [];
  if (exitCode !== 0) problems.push(`the launcher exited with ${exitCode}`);
  if (!final) problems.push("no final JSON line");
  if (!/restart 1 of \d+/.test(err)) problems.push("no restart line from convoy launch");
  if (!err.includes("resuming job")) problems.push("the job did not resume from a checkpoint");
  fs.writeFileSync(path.join(scratch, "token-file"), token);
  let status = "";
  try {
    status = inHub([convoy, "monitor", `${pods.coordinator.address}:${coordinatorPort}`, "--auth-token-file",
      path.join(scratch, "token-file"), "--job", "lenet5", "status"]);
  } catch (e) { problems.push(`convoy monitor status failed: ${e.stderr}`); }
  if (!/restarts: 1 \(latest: /.test(status)) problems.push("convoy monitor status shows no restart");
  // The coordinator pod's HTTP port, as Prometheus and probes see it from outside the pod.
  const httpPort = service.spec.ports.find((p) => p.name === "http")?.port;
  if (httpPort) {
    const get = (route, auth) => inHub(["/usr/bin/python3", "-c", [
      "import sys, urllib.request",
      "request = urllib.request.Request(sys.argv[1])",
      "if len(sys.argv) > 2: request.add_header('Authorization', 'Bearer ' + sys.argv[2])",
      "try:",
      "    print(urllib.request.urlopen(request, timeout=5).read().decode())",
      "except urllib.error.HTTPError as e:",
      "    print('HTTP', e.code)"].join("\n"),
      `http://${pods.coordinator.address}:${httpPort}${route}`, ...(auth ? [token.trim()] : [])]);
    if (get("/healthz").trim() !== "ok") problems.push("/healthz of the coordinator pod is not ok");
    if (!get("/metrics").includes("HTTP 401")) problems.push("/metrics answered without the token");
    const metrics = get("/metrics", true);
    const step = metrics.match(/convoy_training_step\{job_id="lenet5"\} (\d+)/);
    if (!step || (final && Number(step[1]) !== JSON.parse(final).steps)) {
      problems.push(`/metrics of the coordinator pod does not show the job's steps: ${metrics.slice(0, 300)}`);
    } else {
      say(`coordinator pod's /metrics: convoy_training_step{job_id="lenet5"} ${step[1]}; /healthz ok`);
    }
    // The dashboard: its page (with the token), and its data showing the finished job and the
    // restart.
    if (!get("/").includes("HTTP 401")) problems.push("the dashboard answered without the token");
    const page = get("/", true);
    if (!page.includes('<script src="/app.js"')) problems.push(`the dashboard's page: ${page.slice(0, 200)}`);
    let job = null;
    try { job = JSON.parse(get("/api/jobs/lenet5", true)); } catch (e) { /* reported below */ }
    if (!job || job.state !== "finished" || job.restarts !== 1 || job.checkpoints.length === 0) {
      problems.push(`the dashboard's /api/jobs/lenet5: ${JSON.stringify(job)?.slice(0, 300)}`);
    } else {
      say(`coordinator pod's dashboard: job lenet5 ${job.state}, step ${job.step}, ${job.restarts} restart, ` +
        `${job.checkpoints.length} checkpoints, ${job.series.step.length} chart points`);
    }
  }
  console.log(err.split("\n").filter((l) => l.startsWith("convoy launch:")).join("\n"));
  console.log(status.trim());
  if (final) console.log(`final: test accuracy ${JSON.parse(final).test_accuracy}, ${JSON.parse(final).steps} steps`);
  if (problems.length > 0) {
    console.error(err.slice(-4000));
    throw new Error(problems.join("; "));
  }
  say(`passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

try {
  await main();
} catch (e) {
  console.error(`rehearse: FAILED: ${e.message}`);
  process.exitCode = 1;
} finally {
  for (const c of cleanups.reverse()) { try { c(); } catch {} }
}
