#!/usr/bin/python3
"""convoy vs PyTorch: training-step throughput on the same models, side by side in one run.

Both train on synthetic 28x28x1 batches (uniform pixels, random labels) with SGD + momentum,
batch 64 and the same number of threads; warm-up steps are not timed. The runs alternate
(convoy, PyTorch, convoy, ...) so that both see the same machine load, and the script reports
the median images/s of each and their ratio. With `--precision fp32,bf16` each model runs in
both: convoy's --precision bf16 against PyTorch's CPU autocast
(torch.autocast("cpu", dtype=torch.bfloat16)), and each side's bf16/fp32 speed-up.

    /usr/bin/python3 tests/bench/compare_pytorch.py --convoy build/launcher/convoy
    /usr/bin/python3 tests/bench/compare_pytorch.py --models fashion_cnn --precision fp32,bf16

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


def pytorch_images_per_second(name, batch, steps, warmup, threads, precision="fp32"):
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
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x)
        loss_fn(logits.float(), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def convoy_images_per_second(binary, name, batch, steps, warmup, threads, precision="fp32"):
    out = subprocess.run(
        [binary, "bench", "--model", name, "--batch-size", str(batch), "--steps", str(steps),
         "--warmup", str(warmup), "--threads", str(threads), "--precision", precision],
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
    parser.add_argument("--precision", default="fp32",
                        help="fp32, bf16 or both (fp32,bf16); bf16 needs AVX512-BF16 or AMX")
    args = parser.parse_args()
    precisions = args.precision.split(",")
    if any(p not in ("fp32", "bf16") for p in precisions):
        print(f"compare_pytorch.py: --precision: fp32, bf16 or fp32,bf16, not '{args.precision}'",
              file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        print("compare_pytorch.py: PyTorch is not importable; install python3-torch "
              "(deploy/install-deps.sh --bench) and run with /usr/bin/python3", file=sys.stderr)
        return 2
    print(f"batch {args.batch_size}, {args.threads} threads, {args.steps} timed steps, "
          f"{args.repeats} alternating runs each; PyTorch {torch.__version__}")
    for name in args.models.split(","):
        ours = {p: [] for p in precisions}
        theirs = {p: [] for p in precisions}
        for _ in range(args.repeats):
            for p in precisions:
                ours[p].append(convoy_images_per_second(args.convoy, name, args.batch_size,
                                                        args.steps, args.warmup, args.threads, p))
                theirs[p].append(pytorch_images_per_second(name, args.batch_size, args.steps,
                                                           args.warmup, args.threads, p))
        medians = {}
        for p in precisions:
            a, b = statistics.median(ours[p]), statistics.median(theirs[p])
            medians[p] = (a, b)
            print(json.dumps({"model": name, "precision": p, "convoy_images_per_second": round(a, 1),
                              "pytorch_images_per_second": round(b, 1), "ratio": round(a / b, 2),
                              "convoy_runs": [round(v) for v in ours[p]],
                              "pytorch_runs": [round(v) for v in theirs[p]]}))
        if len(medians) == 2:
            print(json.dumps({"model": name,
                              "convoy_bf16_over_fp32": round(medians["bf16"][0] / medians["fp32"][0], 2),
                              "pytorch_bf16_over_fp32":
                                  round(medians["bf16"][1] / medians["fp32"][1], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
