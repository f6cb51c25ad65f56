#!/usr/bin/python3
"""The scaling model: a data-parallel step's time on p nodes from compute and an alpha-beta
all-reduce, and its prediction of efficiency for 2-64 nodes.

Per step, on every node:

    step(p) = compute + exposed(p)
    compute = forward + loss + backward + update, measured (`convoy bench`, one node)
    all-reduce of n bytes (ring) = 2 (p - 1) (alpha + n / (p B))

where alpha is the per-message latency and B the link's rate in bytes/s. The gradients travel in
buckets (`--bucket-mb`): a bucket is all-reduced, one after another, as soon as backward has
produced it, so only what outlasts backward is exposed. The model lays the gradients into buckets
as the reducer does (dist/bucket_assignment.h: in the order backward produces them, a bucket
closing once it holds --bucket-mb) and takes each bucket as ready when backward has finished the
layer of its last gradient, from each layer's measured backward time; with one bucket (the default
25 MB holds all of fashion_cnn's and wide_cnn's gradients) nothing overlaps and the whole
all-reduce is exposed. Efficiency = compute / step(p): the fraction of linear speed-up.

    /usr/bin/python3 tests/bench/scaling_model.py --convoy build/launcher/convoy \\
        [--model fashion_cnn] [--threads 2] [--alpha-us 30] [--gbits 10,25] [--bucket-mb 25,4,1]

It measures compute and backward with `convoy bench --per-layer` on this machine (one node) and
prints the predictions as JSON. Standard library only.
"""
import argparse
import json
import subprocess
import sys


def ring_allreduce_ms(n_bytes, p, alpha_ms, bytes_per_ms):
    """A ring all-reduce of n bytes over p ranks: 2 (p - 1) steps of n / p bytes each."""
    if p < 2:
        return 0.0
    return 2 * (p - 1) * (alpha_ms + n_bytes / (p * bytes_per_ms))


def bucket_layout(layers, bucket_bytes):
    """[(bytes, ready_ms)] per bucket, as the reducer fills them: `layers` as `convoy bench
    --per-layer` lists them (forward order, each with backward_ms and its parameters'
    gradient_bytes); backward visits them last to first, a bucket closes once it holds
    bucket_bytes, and it is ready when the layer of its last gradient is done."""
    buckets, elapsed = [], 0.0
    for layer in reversed(layers):
        elapsed += layer["backward_ms"]
        for size in layer["gradient_bytes"]:
            if not buckets or buckets[-1][0] >= bucket_bytes:
                buckets.append([0, 0.0])
            buckets[-1][0] += size
            buckets[-1][1] = elapsed
    if buckets:
        buckets[-1][1] = elapsed  # the last bucket goes when backward has ended (finish())
    return [tuple(b) for b in buckets]


def ring(p, alpha_ms, bytes_per_ms):
    """The alpha-beta ring all-reduce's time as a function of the bytes reduced."""
    return lambda n_bytes: ring_allreduce_ms(n_bytes, p, alpha_ms, bytes_per_ms)


def interpolated(sizes):
    """The all-reduce's time as measured (allreduce_bench's [{"bytes", "ms"}]): linear between
    the measured sizes, and beyond them along the nearest end's segment."""
    points = sorted((s["bytes"], s["ms"]) for s in sizes)
    if len(points) < 2:
        raise ValueError("need all-reduce times at two sizes at least")

    def at(n_bytes):
        i = 1
        while i < len(points) - 1 and points[i][0] < n_bytes:
            i += 1
        (x0, y0), (x1, y1) = points[i - 1], points[i]
        return max(0.0, y0 + (y1 - y0) * (n_bytes - x0) / (x1 - x0))
    return at


def exposed_ms(buckets, allreduce_ms, backward_ms):
    """Communication left after backward: the buckets ([(bytes, ready_ms)]) reduced one after
    another, each starting when it is ready and the previous one is done; allreduce_ms(n) is
    the time of one all-reduce of n bytes (ring() or interpolated())."""
    end = 0.0
    for size, ready in buckets:
        end = max(end, ready) + allreduce_ms(size)
    return max(0.0, end - backward_ms)


def predict(compute_ms, layers, bucket_bytes, p, alpha_ms, gbits):
    bytes_per_ms = gbits * 1e9 / 8 / 1e3
    backward_ms = sum(layer["backward_ms"] for layer in layers)
    buckets = bucket_layout(layers, bucket_bytes)
    n_bytes = sum(size for size, _ in buckets)
    exposed = exposed_ms(buckets, ring(p, alpha_ms, bytes_per_ms), backward_ms)
    step = compute_ms + exposed
    return {"nodes": p, "gbits": gbits, "bucket_mb": round(bucket_bytes / (1 << 20), 3),
            "buckets": len(buckets), "step_ms": round(step, 3),
            "allreduce_ms": round(ring_allreduce_ms(n_bytes, p, alpha_ms, bytes_per_ms), 3),
            "exposed_ms": round(exposed, 3), "efficiency": round(compute_ms / step, 3)}


def measure(convoy, model, threads, steps):
    out = subprocess.run([convoy, "bench", "--model", model, "--threads", str(threads),
                          "--steps", str(steps), "--per-layer"],
                         capture_output=True, text=True, check=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["ms_per_step_median"], line["layers"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", default="build/launcher/convoy")
    parser.add_argument("--model", default="fashion_cnn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--alpha-us", type=float, default=30.0,
                        help="per-message latency (MPI over TCP on Ethernet: tens of us)")
    parser.add_argument("--gbits", default="10,25")
    parser.add_argument("--bucket-mb", default="25,4,1", help="bucket sizes to compare")
    parser.add_argument("--nodes", default="2,4,8,16,32,64")
    args = parser.parse_args()
    try:
        rates = [float(g) for g in args.gbits.split(",")]
        nodes = [int(n) for n in args.nodes.split(",")]
        buckets = [float(b) for b in args.bucket_mb.split(",")]
    except ValueError:
        print("scaling_model.py: --gbits, --nodes and --bucket-mb are comma-separated numbers",
              file=sys.stderr)
        return 2
    compute, layers = measure(args.convoy, args.model, args.threads, args.steps)
    rows = [predict(compute, layers, int(b * (1 << 20)), p, args.alpha_us / 1000, g)
            for b in buckets for g in rates for p in nodes]
    print(json.dumps({"model": args.model, "threads": args.threads, "compute_ms": compute,
                      "backward_ms": round(sum(x["backward_ms"] for x in layers), 3),
                      "gradient_bytes": sum(sum(x["gradient_bytes"]) for x in layers),
                      "alpha_us": args.alpha_us,
                      "predictions": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
