#!/usr/bin/python3
"""convoy vs PyTorch: training-step throughput on the same models, side by side in one run.

Both train on synthetic 28x28x1 batches (uniform pixels, random labels) with SGD + momentum,
batch 64 and the same number of threads; warm-up steps are not timed. The runs alternate
(convoy, PyTorch, convoy, ...) so that both see the same machine load, and the script reports
the median images/s of each and their ratio.

    /usr/bin/python3 tests/bench/compare_pytorch.py --convoy build/launcher/convoy

Needs Debian's python3-torch (deploy/install-deps.sh --bench), run with /usr/bin/python3.
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import torch_models

MODELS = ("fashion_cnn", "lenet5")


def pytorch_images_per_second(name, batch, steps, warmup, threads):
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch_models.build(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def convoy_images_per_second(binary, name, batch, steps, warmup, threads):
    out = subprocess.run(
        [binary, "bench", "--model", name, "--batch-size", str(batch), "--steps", str(steps),
         "--warmup", str(warmup), "--threads", str(threads)],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_second"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", default="build/launcher/convoy", help="convoy binary")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("compare_pytorch.py: PyTorch is not importable; install python3-torch "
              "(deploy/install-deps.sh --bench) and run with /usr/bin/python3", file=sys.stderr)
        return 2
    print(f"batch {args.batch_size}, {args.threads} threads, {args.steps} timed steps, "
          f"{args.repeats} alternating runs each; PyTorch {torch.__version__}")
    for name in args.models.split(","):
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(convoy_images_per_second(args.convoy, name, args.batch_size, args.steps,
                                                 args.warmup, args.threads))
            theirs.append(pytorch_images_per_second(name, args.batch_size, args.steps,
                                                    args.warmup, args.threads))
        a, b = statistics.median(ours), statistics.median(theirs)
        print(json.dumps({"model": name, "convoy_images_per_second": round(a, 1),
                          "pytorch_images_per_second": round(b, 1), "ratio": round(a / b, 2),
                          "convoy_runs": [round(v) for v in ours],
                          "pytorch_runs": [round(v) for v in theirs]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
