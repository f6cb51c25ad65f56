#!/usr/bin/env python3
"""Where a training step's time goes, primitive by primitive.

Runs `convoy bench` with oneDNN's verbose mode and sums the execution time of every primitive
(kind, implementation, propagation, shape) per step, largest first. Reveals reference
implementations, unexpected reorders and the layers worth optimising.

    tests/bench/onednn_profile.py build/launcher/convoy --model fashion_cnn --threads 2
"""
import collections
import os
import subprocess
import sys


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    binary, extra = sys.argv[1], sys.argv[2:]
    steps, warmup = 20, 5
    env = dict(os.environ, DNNL_VERBOSE="1")
    out = subprocess.run([binary, "bench", "--steps", str(steps), "--warmup", str(warmup), *extra],
                         env=env, capture_output=True, text=True, check=True).stdout
    total = collections.defaultdict(float)
    count = collections.Counter()
    for line in out.splitlines():
        if not line.startswith("onednn_verbose,exec,"):
            continue
        f = line.split(",")
        key = f"{f[3]:<14} {f[4]:<12} {f[5]:<17} {f[-2]}"
        total[key] += float(f[-1])
        count[key] += 1
    per_step = steps + warmup
    grand = sum(total.values()) / per_step
    for key, ms in sorted(total.items(), key=lambda kv: -kv[1]):
        print(f"{ms / per_step:8.3f} ms  {100 * ms / per_step / grand:5.1f}%  {key}")
    print(f"{grand:8.3f} ms per step in oneDNN primitives")
    return 0


if __name__ == "__main__":
    sys.exit(main())
