#!/usr/bin/python3
"""Data-parallel scaling on one machine, convoy against PyTorch DDP, side by side in one run.

Three configurations train fashion_cnn on synthetic 28x28x1 batches of 64 per rank (SGD with
momentum; warm-up steps untimed), alternating run by run so that all see the same machine load:

  convoy 1 rank  x 2 threads      convoy bench --threads 2
  convoy 2 ranks x 1 thread       mpirun -np 2 convoy bench --threads 1
  PyTorch DDP 2 ranks x 1 thread  gloo backend, torch.multiprocessing

It prints the median images/s of each (all ranks together) and two ratios: convoy 2x1 over
convoy 1x2 (how well data parallelism scales against threads), and convoy 2x1 over DDP 2x1.

    /usr/bin/python3 tests/bench/scaling_vs_ddp.py --convoy build/launcher/convoy

Needs Debian's python3-torch (deploy/install-deps.sh --bench), run with /usr/bin/python3.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch_models


def convoy_run(binary, ranks, threads, args):
    cmd = [binary, "bench", "--model", args.model, "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(threads)]
    if ranks > 1:
        mpi = ["mpirun", "-np", str(ranks), "--bind-to", "core"]
        if os.geteuid() == 0:
            mpi.append("--allow-run-as-root")
        cmd = mpi + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["images_per_second"]


def ddp_worker(rank, world, port, args, queue):
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    torch_models.init_gloo(rank, world, port)
    torch.manual_seed(0)
    model = torch_models.build(args.model)
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(args.batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch_size,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(ddp(x), y).backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    dist.barrier()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    dist.barrier()
    elapsed = time.perf_counter() - start
    if rank == 0:
        queue.put(world * args.batch_size * args.steps / elapsed)
    dist.destroy_process_group()


def ddp_run(args, port):
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    mp.start_processes(ddp_worker, args=(2, port, args, queue), nprocs=2, join=True,
                       start_method="spawn")
    return queue.get()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", default="build/launcher/convoy")
    parser.add_argument("--model", default="fashion_cnn")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        print("scaling_vs_ddp.py: PyTorch is not importable; install python3-torch "
              "(deploy/install-deps.sh --bench) and run with /usr/bin/python3", file=sys.stderr)
        return 2
    runs = {"convoy_1x2": [], "convoy_2x1": [], "ddp_2x1": []}
    for _ in range(args.repeats):
        runs["convoy_1x2"].append(convoy_run(args.convoy, 1, 2, args))
        runs["convoy_2x1"].append(convoy_run(args.convoy, 2, 1, args))
        runs["ddp_2x1"].append(ddp_run(args, torch_models.free_port()))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(json.dumps({
        "model": args.model, "batch_size_per_rank": args.batch_size, "steps": args.steps,
        "images_per_second": {k: round(v, 1) for k, v in med.items()},
        "convoy_2x1_over_1x2": round(med["convoy_2x1"] / med["convoy_1x2"], 3),
        "convoy_2x1_over_ddp_2x1": round(med["convoy_2x1"] / med["ddp_2x1"], 2),
        "runs": {k: [round(x) for x in v] for k, v in runs.items()},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
