#!/usr/bin/python3
"""Data-parallel steps over emulated network links, against the alpha-beta scaling model.

Each rank runs in a network namespace of its own, as if on its own machine. The namespaces are
joined by veth pairs to one more namespace, a router, and every link is shaped in both
directions: with `tc ... netem rate R delay D/2` at each end where the kernel has netem (D: the
link's one-way delay). Where it has not (netem is an optional module), rates are shaped with `tbf
rate R`, and the router sends the packets through a delay line of its own: a TUN device read by
a process (this script, with --delay-line) that writes each packet back D ms after it came. MPI
runs over TCP on those links only (Open MPI's launcher reaches each namespace through `ip netns
exec`, standing in for ssh).
The namespaces have no route outside; all of them, and the delay line, are removed on exit.
Links use 9000-byte frames (as cluster networks do), which also keeps the delay line's packet rate
within what one process moves.

For each link setting it runs build/tests/bench/allreduce_bench (all-reduces from 64 KiB to
16 MiB, with alpha and beta fitted to them; with --allreduce-pattern step, each all-reduce on a
shaped link follows a pause as long as a step's computation, as in training) and then `convoy
bench` on N ranks (one thread each), and prints the measured step time next to three predictions
of the model:

    step = compute + exposed all-reduce
    all-reduce of n bytes on p ranks (ring) = 2 (p - 1) (alpha + n / (p B))

"nominal": B the link's rate and alpha = alpha0 + D, alpha0 from allreduce_bench on unshaped
links; "fitted": alpha and B as allreduce_bench fitted them on that link; "sized": each bucket's
all-reduce timed by allreduce_bench on that link at the sizes around the bucket's (interpolated),
no alpha or beta at all. Compute (all but the
exposed communication) and backward's time come from the run on unshaped links; the exposed part
is what tests/bench/scaling_model.py computes (the reducer's buckets, each sent when backward has
produced it). Open MPI is held to its
ring all-reduce so that the algorithm is the model's.

    sudo /usr/bin/python3 tests/bench/emulated_network.py --convoy build/launcher/convoy \\
        [--ranks 2] [--links 1000:0,1000:1,200:0.5,50:0] [--model fashion_cnn] [--steps 60]

`--links` is a list of rate_mbit:delay_ms. Each link's result also gives the share of TCP
segments the ranks retransmitted, in the training steps and in allreduce_bench's all-reduces.
`--quickack` turns off delayed ACKs on the ranks' routes. `--queue-ms` sets how long a packet
may wait in a shaped link's queue (50 ms by default; a switch's buffers hold far less).
`--tcp-slow-start-after-idle 0` turns off TCP's restart from a small window after a pause in
the ranks' namespaces. `--allreduce-args` passes more flags to allreduce_bench (its `--gap-ms`
and `--no-sync`), whose time per size each link's result lists. Needs root (namespaces),
iproute2 and Open MPI.
"""
import argparse
import collections
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from scaling_model import bucket_layout, exposed_ms, interpolated, ring

NET = "10.77"  # rank i is NET.i.2 on its link, the router NET.i.1
MTU = "9000"
AGENT = """#!/bin/sh
# Open MPI's launcher runs: <agent> [options] <host> <command...>; the host is a rank's address,
# mapped here to its namespace (standing in for ssh).
while [ $# -gt 0 ]; do
  case "$1" in
    {net}.*) host="$1"; shift; break ;;
    *) shift ;;
  esac
done
rank="${{host#{net}.}}"
exec ip netns exec "{prefix}r${{rank%%.*}}" /bin/sh -c "$*"
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def delay_line(device, delay_ms):
    """Runs in the router's namespace: every packet the router routes to `device` comes back out
    of it delay_ms later (a TUN device: reads give the packets routed to it, writes are packets
    arriving on it). Ends when its standard input closes (the script ended)."""
    tunsetiff, iff_tun, iff_no_pi = 0x400454CA, 0x0001, 0x1000
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, tunsetiff, struct.pack("16sH", device.encode(), iff_tun | iff_no_pi))
    print("ready", flush=True)
    delay = delay_ms / 1000
    queue = collections.deque()  # (due, packet): one delay for all, so first in is first due
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        ready, _, _ = select.select([fd, sys.stdin], [], [], timeout)
        if sys.stdin in ready and not sys.stdin.buffer.read1(1):
            return 0
        now = time.monotonic()
        if fd in ready:
            while True:
                try:
                    queue.append((now + delay, os.read(fd, 65536)))
                except BlockingIOError:
                    break
        while queue and queue[0][0] <= now:
            os.write(fd, queue.popleft()[1])


class Network:
    """The namespaces, links and delay line; removed by close()."""

    def __init__(self, ranks, script, slow_start_after_idle=None, queue_ms=50.0, quickack=False):
        self.slow_start_after_idle = slow_start_after_idle
        self.quickack = quickack  # acknowledge every segment at once (no delayed ACKs)
        self.queue_ms = queue_ms  # how long a packet may wait in a shaped link's queue
        self.prefix = f"cvemu{os.getpid()}"
        self.hub = self.prefix + "h"
        self.ranks = ranks
        self.script = script
        self.names = []
        self.netem = None
        self.line = None  # the delay line's process
        self.line_delay = None

    def ns(self, name, *cmd):
        return run(["ip", "netns", "exec", name] + list(cmd))

    def create(self):
        run(["ip", "netns", "add", self.hub])
        self.names.append(self.hub)
        self.ns(self.hub, "ip", "link", "set", "lo", "up")
        self.ns(self.hub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.ns(self.hub, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")
        self.ns(self.hub, "sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0")
        for i in range(1, self.ranks + 1):
            name = f"{self.prefix}r{i}"
            run(["ip", "netns", "add", name])
            self.names.append(name)
            self.ns(name, "ip", "link", "set", "lo", "up")
            self.ns(self.hub, "ip", "link", "add", f"v{i}", "mtu", MTU, "type", "veth", "peer",
                    "name", "eth0", "mtu", MTU, "netns", name)
            self.ns(self.hub, "ip", "addr", "add", f"{NET}.{i}.1/24", "dev", f"v{i}")
            self.ns(self.hub, "ip", "link", "set", f"v{i}", "up")
            self.ns(name, "ip", "addr", "add", f"{NET}.{i}.2/24", "dev", "eth0")
            self.ns(name, "ip", "link", "set", "eth0", "up")
            # The other ranks are behind the router; there is no default route anywhere.
            self.ns(name, "ip", "route", "add", f"{NET}.0.0/16", "via", f"{NET}.{i}.1",
                    *(["quickack", "1"] if self.quickack else []))
            if self.slow_start_after_idle is not None:
                self.ns(name, "sysctl", "-qw",
                        f"net.ipv4.tcp_slow_start_after_idle={self.slow_start_after_idle}")
        probe = f"{self.prefix}r1"
        try:
            self.ns(probe, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "0ms")
            self.ns(probe, "tc", "qdisc", "del", "dev", "eth0", "root")
            self.netem = True
        except subprocess.CalledProcessError:
            self.netem = False

    def hosts(self):
        return [f"{NET}.{i}.2" for i in range(1, self.ranks + 1)]

    def tcp_segments(self):
        """TCP segments sent and retransmitted so far, summed over the ranks' namespaces."""
        sent = retransmitted = 0
        for i in range(1, self.ranks + 1):
            snmp = self.ns(f"{self.prefix}r{i}", "cat", "/proc/net/snmp").stdout
            names, values = [line.split()[1:] for line in snmp.splitlines()
                             if line.startswith("Tcp:")]
            tcp = dict(zip(names, map(int, values)))
            sent += tcp["OutSegs"]
            retransmitted += tcp["RetransSegs"]
        return sent, retransmitted

    def set_delay_line(self, delay_ms):
        """Routes every packet between ranks through the delay line (delay_ms > 0) or directly."""
        if self.line is not None and self.line_delay != delay_ms:
            self.line.stdin.close()
            self.line.wait(timeout=10)
            self.line = None
            for i in range(1, self.ranks + 1):
                self.ns(self.hub, "ip", "rule", "del", "iif", f"v{i}", "lookup", "100")
        if delay_ms <= 0 or self.line is not None:
            return
        self.line = subprocess.Popen(
            ["ip", "netns", "exec", self.hub, sys.executable, self.script, "--delay-line",
             str(delay_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.line.stdout.readline().strip() != "ready":
            raise RuntimeError("the delay line did not start")
        self.line_delay = delay_ms
        self.ns(self.hub, "ip", "link", "set", "tun0", "mtu", MTU, "up")
        self.ns(self.hub, "sysctl", "-qw", "net.ipv4.conf.tun0.rp_filter=0")
        # `replace`: the unreachable route outlives an earlier delay line (tun0's went with it).
        self.ns(self.hub, "ip", "route", "replace", "default", "dev", "tun0", "table", "100")
        # Should the delay line die, its route goes with tun0: packets must then be dropped, not
        # routed straight through as if there were no delay.
        self.ns(self.hub, "ip", "route", "replace", "unreachable", "default", "metric", "1000",
                "table", "100")
        for i in range(1, self.ranks + 1):
            # What arrives from a rank goes through the delay line; what comes back out of it is
            # routed by the main table to the rank it is for.
            self.ns(self.hub, "ip", "rule", "add", "iif", f"v{i}", "lookup", "100")

    def shape(self, rate_mbit, delay_ms):
        """Shapes both directions of every rank's link; rate 0 removes the shaping."""
        ends = [(f"{self.prefix}r{i}", "eth0") for i in range(1, self.ranks + 1)]
        ends += [(self.hub, f"v{i}") for i in range(1, self.ranks + 1)]
        self.set_delay_line(0 if self.netem else delay_ms)
        for name, dev in ends:
            subprocess.run(["ip", "netns", "exec", name, "tc", "qdisc", "del", "dev", dev, "root"],
                           capture_output=True)
            if rate_mbit <= 0 and not (self.netem and delay_ms > 0):
                continue
            if self.netem:
                # Half the delay at each end: one way through the router costs the delay.
                # netem's queue holds the packets in flight on the delay as well as those waiting
                # for the rate: a limit in packets of the queue's time plus the delay, counted in
                # full frames (a segmentation-offload packet of up to 64 KB counts as one, so the
                # queue may hold more time than asked).
                rate = ["rate", f"{rate_mbit}mbit"] if rate_mbit > 0 else []
                limit = 100000
                if rate_mbit > 0:
                    held_s = (self.queue_ms + delay_ms / 2) / 1e3
                    limit = max(4, int(rate_mbit * 1e6 / 8 * held_s / int(MTU)) + 1)
                self.ns(name, "tc", "qdisc", "add", "dev", dev, "root", "netem", *rate, "delay",
                        f"{delay_ms / 2}ms", "limit", str(limit))
            else:
                burst = max(64 * 1024, int(rate_mbit * 1_000_000 // 8 // 250))  # 4 ms of traffic
                self.ns(name, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate",
                        f"{rate_mbit}mbit", "burst", str(burst), "latency", f"{self.queue_ms:g}ms")

    def close(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        if self.line is not None:
            self.line.stdin.close()
            try:
                self.line.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.line.kill()
            self.line = None
        for name in reversed(self.names):
            # Whatever still runs inside (ranks of a failed run) would keep it alive unnamed.
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            for pid in pids.stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.names = []


def mpirun(net, agent, args, program):
    cmd = ["ip", "netns", "exec", f"{net.prefix}r1", "mpirun", "--allow-run-as-root",
           "--oversubscribe", "--bind-to", "none", "-np", str(args.ranks), "--host",
           ",".join(net.hosts()), "--mca", "plm_rsh_agent", agent, "--mca", "btl", "tcp,self",
           "--mca", "btl_tcp_if_include", "eth0", "--mca", "oob_tcp_if_include", "eth0",
           "--mca", "coll_tuned_use_dynamic_rules", "1",
           "--mca", "coll_tuned_allreduce_algorithm", "4",  # ring
           "-x", "PATH", "-x", "LD_LIBRARY_PATH"] + program
    # A session of its own, so that a timeout ends mpirun's daemons and ranks with it.
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=900)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if net.line is not None and net.line.poll() is not None:
        raise RuntimeError("the delay line died during the run: its delay was not applied")
    if p.returncode != 0:
        raise RuntimeError(f"mpirun exited with {p.returncode}: {err[-600:]}")
    return json.loads(out.strip().splitlines()[-1])


def retransmitted_percent(net, measure):
    """What measure() returns, and the share of TCP segments retransmitted while it ran."""
    sent0, retransmitted0 = net.tcp_segments()
    result = measure()
    sent, retransmitted = net.tcp_segments()
    return result, round(100 * (retransmitted - retransmitted0) / max(1, sent - sent0), 2)


def bench(net, agent, args):
    return mpirun(net, agent, args, [
        args.convoy, "bench", "--model", args.model, "--threads", "1", "--steps",
        str(args.steps), "--warmup", "5", "--bucket-mb", str(args.bucket_mb), "--per-layer"])


def allreduce_fit(net, agent, args, gap_ms=None):
    """allreduce_bench's times; with gap_ms, in a training step's pattern: each all-reduce after
    gap_ms of computation, the ranks not brought together first."""
    pattern = ["--gap-ms", f"{gap_ms:.3f}", "--no-sync"] if gap_ms is not None else []
    return mpirun(net, agent, args, [args.allreduce_bench, "--max-mb", "16", "--repeats", "5"] +
                  pattern + shlex.split(args.allreduce_args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", default="build/launcher/convoy")
    parser.add_argument("--allreduce-bench", default="build/tests/bench/allreduce_bench")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--links", default="1000:0,1000:1,200:0.5,50:0")
    parser.add_argument("--model", default="fashion_cnn")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--bucket-mb", type=float, default=25)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--allreduce-args", default="",
                        help="more flags for allreduce_bench, e.g. '--gap-ms 20 --no-sync'")
    parser.add_argument("--tcp-slow-start-after-idle", type=int, choices=(0, 1),
                        help="the ranks' net.ipv4.tcp_slow_start_after_idle (default: the "
                        "kernel's, 1)")
    parser.add_argument("--queue-ms", type=float, default=50.0,
                        help="how long a packet may wait in a shaped link's queue before it is "
                        "dropped (tbf's latency, to which its burst of at least 64 KiB adds; "
                        "netem's limit in full frames is set to match); default 50")
    parser.add_argument("--allreduce-pattern", choices=("back-to-back", "step"),
                        default="back-to-back",
                        help="how allreduce_bench times the all-reduces on shaped links: "
                        "'back-to-back' (default) one after the other, the ranks brought together "
                        "before each; 'step' each after a pause as long as the step's computation "
                        "on unshaped links, as in training")
    parser.add_argument("--quickack", action="store_true",
                        help="the ranks acknowledge every TCP segment at once (the route's "
                        "quickack attribute): no delayed ACKs")
    parser.add_argument("--delay-line", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.delay_line is not None:
        return delay_line("tun0", args.delay_line)
    if os.geteuid() != 0:
        print("emulated_network.py: needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    if not 2 <= args.ranks <= 8:
        print("emulated_network.py: --ranks must be 2 to 8", file=sys.stderr)
        return 2
    try:
        links = [(float(r), float(d)) for r, d in (x.split(":") for x in args.links.split(","))]
        if any(r <= 0 or d < 0 for r, d in links):
            raise ValueError
    except ValueError:
        print(f"emulated_network.py: --links: '{args.links}' is not rate_mbit:delay_ms,... "
              "(rates above 0, delays 0 or more)", file=sys.stderr)
        return 2
    for flag, value, low in (("--runs", args.runs, 1), ("--steps", args.steps, 1),
                             ("--bucket-mb", args.bucket_mb, 1e-3)):
        if value < low:
            print(f"emulated_network.py: {flag}: {value:g} is below {low:g}", file=sys.stderr)
            return 2
    if not 1 <= args.queue_ms <= 1000:
        print(f"emulated_network.py: --queue-ms: {args.queue_ms:g} is not between 1 and 1000",
              file=sys.stderr)
        return 2
    try:
        shlex.split(args.allreduce_args)
    except ValueError as e:
        print(f"emulated_network.py: --allreduce-args: {e}", file=sys.stderr)
        return 2
    for flag, path in (("--convoy", args.convoy), ("--allreduce-bench", args.allreduce_bench)):
        if not os.access(path, os.X_OK):
            print(f"emulated_network.py: {flag}: '{path}' is not an executable", file=sys.stderr)
            return 2
    args.convoy = os.path.abspath(args.convoy)
    args.allreduce_bench = os.path.abspath(args.allreduce_bench)
    net = Network(args.ranks, os.path.abspath(__file__), args.tcp_slow_start_after_idle,
                  args.queue_ms, args.quickack)
    work = tempfile.mkdtemp(prefix="convoy-emu-")
    agent = os.path.join(work, "agent.sh")
    with open(agent, "w") as f:
        f.write(AGENT.format(net=NET, prefix=net.prefix))
    os.chmod(agent, 0o755)
    results = []
    try:
        try:
            net.create()
        except subprocess.CalledProcessError as e:
            # One line, not a traceback: most often an iproute2 or kernel without what a flag needs.
            why = (e.stderr or "").strip().splitlines()
            flag = "--quickack: " if "quickack" in e.cmd else ""
            print(f"emulated_network.py: {flag}setting up the network failed: "
                  f"`{' '.join(e.cmd)}`: {why[-1] if why else f'exit {e.returncode}'}",
                  file=sys.stderr)
            return 2 if flag else 1
        if not net.netem:
            print("note: this kernel has no netem qdisc; delays go through a delay line in the "
                  "router", file=sys.stderr)

        def median_run(rate, delay, gap_ms=None):
            net.shape(rate, delay)
            fit, percent = retransmitted_percent(
                net, lambda: allreduce_fit(net, agent, args, gap_ms))
            fit["retransmitted_percent"] = percent
            runs = []
            for _ in range(args.runs):
                r, percent = retransmitted_percent(net, lambda: bench(net, agent, args))
                r["retransmitted_percent"] = percent
                runs.append(r)
            times = [r["ms_per_step_median"] for r in runs]
            return fit, runs[times.index(statistics.median_low(times))]

        base_fit, base = median_run(0, 0)
        red = base["reducer"]
        p, n = args.ranks, red["bytes_per_step"]
        compute_ms = base["ms_per_step_median"] - red["exposed_ms_per_step"]
        backward_ms = sum(layer["backward_ms"] for layer in base["layers"])
        alpha0_ms = max(base_fit["alpha_ms"], 0.0)
        results.append({"link": "unshaped", "measured_ms": base["ms_per_step_median"],
                        "compute_ms": round(compute_ms, 3), "backward_ms": round(backward_ms, 3),
                        "alpha0_ms": round(alpha0_ms, 4),
                        "fitted_bytes_per_ms": round(base_fit["bytes_per_ms"]),
                        "bytes_per_step": n, "buckets": red["buckets"]})
        buckets = bucket_layout(base["layers"], int(args.bucket_mb * (1 << 20)))
        if [size for size, _ in buckets] != red["bucket_bytes"]:
            raise RuntimeError(f"the model's buckets {buckets} are not the reducer's "
                               f"{red['bucket_bytes']}")
        step_gap = compute_ms if args.allreduce_pattern == "step" else None
        for rate, delay in links:
            fit, r = median_run(rate, delay, step_gap)
            nominal = compute_ms + exposed_ms(
                buckets, ring(p, alpha0_ms + delay, rate * 1e6 / 8 / 1e3), backward_ms)
            fitted = compute_ms + exposed_ms(
                buckets, ring(p, max(fit["alpha_ms"], 0.0), fit["bytes_per_ms"]), backward_ms)
            sized = compute_ms + exposed_ms(buckets, interpolated(fit["sizes"]), backward_ms)
            measured = r["ms_per_step_median"]
            results.append({
                "link": f"{rate:g} Mbit/s, {delay:g} ms",
                "measured_ms": round(measured, 2),
                "nominal_ms": round(nominal, 2),
                "nominal_error": round(measured / nominal - 1, 3),
                "fitted_ms": round(fitted, 2),
                "fitted_error": round(measured / fitted - 1, 3),
                "sized_ms": round(sized, 2),
                "sized_error": round(measured / sized - 1, 3),
                "fitted_alpha_ms": round(fit["alpha_ms"], 4),
                "fitted_mbit": round(fit["bytes_per_ms"] * 8 / 1e3, 1),
                "measured_allreduce_ms": round(r["reducer"]["raw_mpi_allreduce_ms"], 2),
                "exposed_ms": round(r["reducer"]["exposed_ms_per_step"], 2),
                # TCP's retransmissions in the `convoy bench` runs (start-up and warm-up
                # included) and in allreduce_bench's: losses the shaping causes, which none of the
                # predictions models.
                "step_retransmitted_percent": r["retransmitted_percent"],
                "allreduce_retransmitted_percent": fit["retransmitted_percent"],
                "allreduce_sizes_ms": [[s["bytes"], round(s["ms"], 2)] for s in fit["sizes"]],
            })
    finally:
        net.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"model": args.model, "ranks": args.ranks, "netem": net.netem,
                      "tcp_slow_start_after_idle": args.tcp_slow_start_after_idle,
                      "queue_ms": args.queue_ms, "quickack": args.quickack,
                      "allreduce_pattern": args.allreduce_pattern,
                      "delay_line": not net.netem, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    sys.exit(main())
