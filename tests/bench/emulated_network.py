#!/usr/bin/python3
"""Data-parallel steps over emulated network links, against the alpha-beta scaling model.

Each rank runs in a network namespace of its own, as if on its own machine. The namespaces are
joined through a bridge (a switch) in one more namespace by veth pairs, and every link is shaped in
both directions: with `tc qdisc ... netem rate R delay D` where the kernel has netem, otherwise
with `tbf rate R` (rate only; the delay is then not emulated and the script says so). MPI runs
over TCP on those links only (Open MPI's launcher reaches each namespace through `ip netns exec`,
standing in for ssh). The namespaces have no route outside; all of them are removed on exit.

For each link setting it runs `convoy bench` on N ranks (one thread each, one rank per namespace)
and prints the measured step time next to the model's prediction:

    step = compute + exposed all-reduce
    all-reduce of n bytes on p ranks (ring) = 2 (p - 1) (alpha + n / (p B))

with compute (everything but the exposed communication), backward's time and the per-message
latency alpha0 taken from a run on unshaped links, B the link's rate in bytes/s, alpha = alpha0 +
the link's delay, and the exposed part as tests/bench/scaling_model.py computes it (buckets
overlap backward). Open MPI is held to its ring all-reduce so that the algorithm is the model's.

    /usr/bin/python3 tests/bench/emulated_network.py --convoy build/launcher/convoy \\
        [--ranks 2] [--links 1000:0,200:0,50:0] [--model fashion_cnn] [--steps 60]

`--links` is a list of rate_mbit:delay_ms. Needs root (namespaces), iproute2 and Open MPI.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

from scaling_model import exposed_ms

SUBNET = "10.77.0"
AGENT = """#!/bin/sh
# Open MPI's launcher runs: <agent> [options] <host> <command...>; the host is a rank's address,
# mapped here to its namespace (standing in for ssh).
while [ $# -gt 0 ]; do
  case "$1" in
    {subnet}.*) host="$1"; shift; break ;;
    *) shift ;;
  esac
done
exec ip netns exec "{prefix}r${{host##*.}}" /bin/sh -c "$*"
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Network:
    """The namespaces, bridge and veth pairs; removed by close()."""

    def __init__(self, ranks):
        self.prefix = f"cvemu{os.getpid()}"
        self.hub = self.prefix + "h"
        self.ranks = ranks
        self.names = []
        self.netem = None

    def ns(self, name, *cmd):
        return run(["ip", "netns", "exec", name] + list(cmd))

    def create(self):
        run(["ip", "netns", "add", self.hub])
        self.names.append(self.hub)
        self.ns(self.hub, "ip", "link", "add", "br0", "type", "bridge")
        self.ns(self.hub, "ip", "link", "set", "br0", "up")
        for i in range(self.ranks):
            name = f"{self.prefix}r{i + 1}"
            run(["ip", "netns", "add", name])
            self.names.append(name)
            self.ns(name, "ip", "link", "set", "lo", "up")
            self.ns(self.hub, "ip", "link", "add", f"v{i + 1}", "type", "veth", "peer", "name",
                    "eth0", "netns", name)
            self.ns(self.hub, "ip", "link", "set", f"v{i + 1}", "master", "br0")
            self.ns(self.hub, "ip", "link", "set", f"v{i + 1}", "up")
            self.ns(name, "ip", "addr", "add", f"{SUBNET}.{i + 1}/24", "dev", "eth0")
            self.ns(name, "ip", "link", "set", "eth0", "up")
        # No default route anywhere: nothing can leave the namespaces.
        probe = f"{self.prefix}r1"
        try:
            self.ns(probe, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "0ms")
            self.ns(probe, "tc", "qdisc", "del", "dev", "eth0", "root")
            self.netem = True
        except subprocess.CalledProcessError:
            self.netem = False

    def shape(self, rate_mbit, delay_ms):
        """Shapes both directions of every rank's link; rate 0 removes the shaping."""
        ends = [(f"{self.prefix}r{i + 1}", "eth0") for i in range(self.ranks)]
        ends += [(self.hub, f"v{i + 1}") for i in range(self.ranks)]
        for name, dev in ends:
            subprocess.run(["ip", "netns", "exec", name, "tc", "qdisc", "del", "dev", dev, "root"],
                           capture_output=True)
            if rate_mbit <= 0:
                continue
            if self.netem:
                # Half the delay each way: a round trip through the switch costs 2 x delay.
                self.ns(name, "tc", "qdisc", "add", "dev", dev, "root", "netem", "rate",
                        f"{rate_mbit}mbit", "delay", f"{delay_ms / 2}ms", "limit", "100000")
            else:
                burst = max(32 * 1024, rate_mbit * 1_000_000 // 8 // 250)  # 4 ms of traffic
                self.ns(name, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                        f"{rate_mbit}mbit", "burst", str(burst), "latency", "10ms")

    def close(self):
        for name in reversed(self.names):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.names = []


def bench(net, agent, args):
    hosts = ",".join(f"{SUBNET}.{i + 1}" for i in range(args.ranks))
    cmd = ["ip", "netns", "exec", f"{net.prefix}r1", "mpirun", "--allow-run-as-root",
           "--oversubscribe", "--bind-to", "none", "-np", str(args.ranks), "--host", hosts,
           "--mca", "plm_rsh_agent", agent, "--mca", "btl", "tcp,self",
           "--mca", "btl_tcp_if_include", "eth0", "--mca", "oob_tcp_if_include", "eth0",
           "--mca", "coll_tuned_use_dynamic_rules", "1",
           "--mca", "coll_tuned_allreduce_algorithm", "4",  # ring
           "-x", "PATH", "-x", "LD_LIBRARY_PATH",
           args.convoy, "bench", "--model", args.model, "--threads", "1", "--steps",
           str(args.steps), "--warmup", "5", "--bucket-mb", str(args.bucket_mb), "--per-layer"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"mpirun exited with {out.returncode}: {out.stderr[-600:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", default="build/launcher/convoy")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--links", default="1000:0,200:0,50:0")
    parser.add_argument("--model", default="fashion_cnn")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--bucket-mb", type=float, default=25)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("emulated_network.py: needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    if not 2 <= args.ranks <= 8:
        print("emulated_network.py: --ranks must be 2 to 8", file=sys.stderr)
        return 2
    try:
        links = [(float(r), float(d)) for r, d in (x.split(":") for x in args.links.split(","))]
    except ValueError:
        print(f"emulated_network.py: --links: '{args.links}' is not rate_mbit:delay_ms,...",
              file=sys.stderr)
        return 2
    args.convoy = os.path.abspath(args.convoy)
    net = Network(args.ranks)
    work = tempfile.mkdtemp(prefix="convoy-emu-")
    agent = os.path.join(work, "agent.sh")
    with open(agent, "w") as f:
        f.write(AGENT.format(subnet=SUBNET, prefix=net.prefix))
    os.chmod(agent, 0o755)
    results = []
    try:
        net.create()
        if not net.netem:
            print("note: this kernel has no netem qdisc; links are shaped with tbf (rate only, no "
                  "added delay)", file=sys.stderr)

        def median_run(rate, delay):
            net.shape(rate, delay)
            runs = [bench(net, agent, args) for _ in range(args.runs)]
            return runs[[r["ms_per_step_median"] for r in runs].index(
                statistics.median_low([r["ms_per_step_median"] for r in runs]))]

        base = median_run(0, 0)
        red = base["reducer"]
        p, n = args.ranks, red["bytes_per_step"]
        compute_ms = base["ms_per_step_median"] - red["exposed_ms_per_step"]
        backward_ms = sum(layer["backward_ms"] for layer in base["layers"])
        # Unshaped veth: the all-reduce is nearly all latency; what remains after an (optimistic)
        # 5 GB/s for the bytes is alpha0.
        alpha0_ms = max(red["raw_mpi_allreduce_ms"] / (2 * (p - 1)) - n / p / 5e6, 0.0)
        results.append({"link": "unshaped", "measured_ms": base["ms_per_step_median"],
                        "compute_ms": round(compute_ms, 3), "alpha0_ms": round(alpha0_ms, 4),
                        "bytes_per_step": n, "buckets": red["buckets"]})
        for rate, delay in links:
            r = median_run(rate, delay)
            alpha = alpha0_ms + (delay if net.netem else 0.0)
            bytes_per_ms = rate * 1e6 / 8 / 1e3
            comm = exposed_ms(n, args.bucket_mb * (1 << 20), p, alpha, bytes_per_ms, backward_ms)
            predicted = compute_ms + comm
            results.append({
                "link": f"{rate:g} Mbit/s" + (f", {delay:g} ms" if net.netem else ""),
                "measured_ms": round(r["ms_per_step_median"], 2),
                "predicted_ms": round(predicted, 2),
                "error": round(r["ms_per_step_median"] / predicted - 1, 3),
                "measured_allreduce_ms": round(r["reducer"]["raw_mpi_allreduce_ms"], 2),
                "predicted_exposed_ms": round(comm, 2),
                "exposed_ms": round(r["reducer"]["exposed_ms_per_step"], 2),
            })
    finally:
        net.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"model": args.model, "ranks": args.ranks, "netem": net.netem,
                      "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
