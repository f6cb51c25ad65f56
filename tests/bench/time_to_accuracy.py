#!/usr/bin/python3
"""Wall time to a Fashion-MNIST test accuracy, convoy against PyTorch DDP, 2 ranks each.

Both train fashion_cnn on the real Fashion-MNIST (Debian's dataset-fashion-mnist) with the same
recipe: 2 ranks x 1 thread, batch 64 per rank, SGD momentum 0.9, learning rate 0.05 with cosine
decay over the epochs, and evaluate the full test set after every epoch. The clock starts when the
job is launched and stops at the first evaluation that reaches the target, so it includes start-up,
data loading and evaluation for both. PyTorch uses its default initialisation and the gloo backend.

    /usr/bin/python3 tests/bench/time_to_accuracy.py --convoy build/launcher/convoy

`--recipe fashion_fast` times the built-in recipe instead (`convoy models fashion_fast` prints it):
`mpirun -np 2 convoy train --model fashion_fast --threads 1` once per seed, reporting each run's
final test accuracy (the last model's, as the recipe trains it) and wall time, and their medians;
`--epochs N` shortens the recipe (its cosine schedule ends at the new last epoch). PyTorch runs the
same recipe with DDP (fashion_fast's network, random flips, SGD with Nesterov momentum and
weight decay 5e-4, learning rate 0.1 for a global batch of 128 with 1 warm-up epoch and cosine
decay, label smoothing 0.1, flip at test time, bf16 autocast where convoy's `auto` picks bf16),
once, stopped after --pytorch-minutes.

    /usr/bin/python3 tests/bench/time_to_accuracy.py --recipe fashion_fast --seeds 1,2,3
    /usr/bin/python3 tests/bench/time_to_accuracy.py --recipe fashion_fast --seeds 1,2,3 --epochs 9

Needs Debian's python3-torch (deploy/install-deps.sh --bench), run with /usr/bin/python3.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import torch_models

DATA = "/usr/share/datasets/fashion-mnist"


def convoy_time(args):
    cmd = ["mpirun", "-np", "2", "--bind-to", "core"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += [args.convoy, "train", "--model", "fashion_cnn", "--epochs", str(args.epochs),
            "--batch-size", "64", "--lr", str(args.lr), "--lr-schedule", "cosine",
            "--momentum", "0.9", "--threads", "1", "--log-json"]
    start = time.perf_counter()
    history = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        for line in p.stdout:
            event = json.loads(line)
            if event.get("event") == "epoch":
                history.append((event["epoch"], event["test_accuracy"],
                                time.perf_counter() - start))
    return history


def ddp_worker(rank, world, port, args, queue, start):
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    torch_models.init_gloo(rank, world, port)
    torch.manual_seed(1)

    def images(name):
        return torch.from_numpy(torch_models.read_idx(DATA, name).astype("float32") / 255)

    def labels(name):
        return torch.from_numpy(torch_models.read_idx(DATA, name).astype("int64"))

    x_train, y_train = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    x_test, y_test = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    model = torch_models.build("fashion_cnn")
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)
    steps_per_epoch = len(x_train) // (64 * world)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps_per_epoch * args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    sampler = torch.utils.data.DistributedSampler(range(len(x_train)), world, rank, seed=1,
                                                  drop_last=True)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        ddp.train()
        for s in range(steps_per_epoch):
            idx = order[s * 64:(s + 1) * 64]
            opt.zero_grad(set_to_none=True)
            loss_fn(ddp(x_train[idx]), y_train[idx]).backward()
            opt.step()
            sched.step()
        ddp.eval()
        with torch.no_grad():  # each rank evaluates half the test set
            lo, hi = rank * len(x_test) // world, (rank + 1) * len(x_test) // world
            correct = torch.zeros(1)
            for b in range(lo, hi, 256):
                e = min(b + 256, hi)
                correct += (model(x_test[b:e]).argmax(1) == y_test[b:e]).sum()
            dist.all_reduce(correct)
        if rank == 0:
            queue.put((epoch + 1, correct.item() / len(x_test), time.time() - start))
    dist.destroy_process_group()


def ddp_time(args):
    import torch.multiprocessing as mp
    port = torch_models.free_port()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.time()
    mp.start_processes(ddp_worker, args=(2, port, args, queue, start), nprocs=2, join=True,
                       start_method="spawn")
    return [queue.get() for _ in range(args.epochs)]


def recipe_run(args, seed):
    """One run of the recipe: (final accuracy, wall seconds, per-epoch history)."""
    cmd = ["mpirun", "-np", "2", "--bind-to", "none"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += [args.convoy, "train", "--model", args.recipe, "--threads", "1", "--seed", str(seed),
            "--log-json", "--progress", "none"]
    if args.epochs_given:
        cmd += ["--epochs", str(args.epochs)]
    cmd += args.train_args.split()
    start = time.perf_counter()
    history, final, precision = [], None, None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        for line in p.stdout:
            event = json.loads(line)
            if event.get("event") == "start":
                precision = event["precision"]
            if event.get("event") == "epoch":
                history.append([event["epoch"], round(event["test_accuracy"], 4),
                                round(time.perf_counter() - start, 1)])
            if event.get("event") == "final":
                final = event["test_accuracy"]
    if p.returncode != 0 or final is None:
        raise SystemExit(f"time_to_accuracy.py: convoy train --model {args.recipe} failed")
    return final, time.perf_counter() - start, history, precision


def ddp_recipe_worker(rank, world, port, args, queue, start, bf16):
    import torch
    import torch.distributed as dist
    import torch.nn as nn
    import torch.nn.functional as F
    torch_models.init_gloo(rank, world, port)
    torch.manual_seed(1)
    images = lambda name: torch.from_numpy(  # noqa: E731
        torch_models.read_idx(DATA, name).astype("float32") / 255)
    labels = lambda name: torch.from_numpy(  # noqa: E731
        torch_models.read_idx(DATA, name).astype("int64"))
    x_train, y_train = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    x_test, y_test = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    model = torch_models.build("fashion_fast")
    ddp = nn.parallel.DistributedDataParallel(model)
    batch = 128 // world
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    steps_per_epoch = len(x_train) // 128
    total, warmup = steps_per_epoch * args.epochs, steps_per_epoch * 1
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warmup if s < warmup else
                                              0.5 * (1 + math.cos(math.pi * (s - warmup) /
                                                                  max(1, total - warmup))))
    sampler = torch.utils.data.DistributedSampler(range(len(x_train)), world, rank, seed=1,
                                                  drop_last=True)
    deadline = start + 60 * args.pytorch_minutes
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler))
        ddp.train()
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            x = x_train[idx]  # a copy: the flips below do not touch the data set
            flip = torch.rand(len(idx)) < 0.5
            x[flip] = x[flip].flip(3)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = ddp(x)
            F.cross_entropy(logits.float(), y_train[idx], label_smoothing=0.1).backward()
            opt.step()
            sched.step()
        ddp.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            lo, hi = rank * len(x_test) // world, (rank + 1) * len(x_test) // world
            correct = torch.zeros(1)
            for b in range(lo, hi, 256):
                e = min(b + 256, hi)
                z = model(x_test[b:e]).float() + model(x_test[b:e].flip(3)).float()
                correct += (z.argmax(1) == y_test[b:e]).sum()
            dist.all_reduce(correct)
        stop = torch.tensor([1.0 if time.time() > deadline else 0.0])
        dist.all_reduce(stop)
        if rank == 0:
            queue.put((epoch + 1, correct.item() / len(x_test), time.time() - start))
        if stop.item() > 0:
            break
    if rank == 0:
        queue.put(None)
    dist.destroy_process_group()


def ddp_recipe_time(args, bf16):
    import torch.multiprocessing as mp
    port = torch_models.free_port()
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.time()
    mp.start_processes(ddp_recipe_worker, args=(2, port, args, queue, start, bf16), nprocs=2,
                       join=True, start_method="spawn")
    history = []
    while (item := queue.get()) is not None:
        history.append(item)
    return history


def recipe_main(args):
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        final, seconds, history, precision = recipe_run(args, seed)
        runs.append({"seed": seed, "test_accuracy": final, "seconds": round(seconds, 1),
                     "precision": precision, "per_epoch": history})
        print(json.dumps(runs[-1]), flush=True)
    result = {"recipe": args.recipe,
              "epochs": args.epochs if args.epochs_given else "the recipe's",
              "median_test_accuracy": statistics.median(r["test_accuracy"] for r in runs),
              "median_seconds": statistics.median(r["seconds"] for r in runs)}
    if not args.skip_pytorch:
        if not args.epochs_given:
            args.epochs = runs[0]["per_epoch"][-1][0]
        history = ddp_recipe_time(args, runs[0]["precision"] == "bf16")
        done = len(history) == args.epochs
        result["pytorch_ddp"] = {
            "finished": done, "minutes_allowed": args.pytorch_minutes,
            "test_accuracy_at_end": round(history[-1][1], 4) if history else None,
            "seconds": round(history[-1][2], 1) if history else None,
            "per_epoch": [[e, round(a, 4), round(t, 1)] for e, a, t in history]}
    print(json.dumps(result))
    return 0


def first_reaching(history, target):
    for epoch, accuracy, seconds in history:
        if accuracy >= target:
            return {"epoch": epoch, "seconds": round(seconds, 1)}
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", default="build/launcher/convoy")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--target", type=float, default=0.91)
    parser.add_argument("--skip-pytorch", action="store_true")
    parser.add_argument("--recipe", help="time a model's built-in recipe (fashion_fast)")
    parser.add_argument("--seeds", default="1,2,3", help="with --recipe: one run per seed")
    parser.add_argument("--train-args", default="",
                        help="with --recipe: more flags for convoy train, e.g. '--ema-decay 0'")
    parser.add_argument("--pytorch-minutes", type=float, default=15.0,
                        help="with --recipe: stop PyTorch's run after this long")
    args = parser.parse_args()
    args.epochs_given = "--epochs" in sys.argv
    if args.recipe:
        return recipe_main(args)
    result = {"target": args.target, "epochs": args.epochs, "lr": args.lr}
    history = convoy_time(args)
    result["convoy"] = {"reached": first_reaching(history, args.target),
                        "per_epoch": [[e, round(a, 4), round(t, 1)] for e, a, t in history]}
    if not args.skip_pytorch:
        history = ddp_time(args)
        result["pytorch_ddp"] = {"reached": first_reaching(history, args.target),
                                 "per_epoch": [[e, round(a, 4), round(t, 1)]
                                               for e, a, t in history]}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
