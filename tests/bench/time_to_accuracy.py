#!/usr/bin/python3
"""Wall time to a Fashion-MNIST test accuracy, convoy against PyTorch DDP, 2 ranks each.

Both train fashion_cnn on the real Fashion-MNIST (Debian's dataset-fashion-mnist) with the same
recipe: 2 ranks x 1 thread, batch 64 per rank, SGD momentum 0.9, learning rate 0.05 with cosine
decay over the epochs, and evaluate the full test set after every epoch. The clock starts when the
job is launched and stops at the first evaluation that reaches the target, so it includes start-up,
data loading and evaluation for both. PyTorch uses its default initialisation and the gloo backend.

    /usr/bin/python3 tests/bench/time_to_accuracy.py --convoy build/launcher/convoy

Needs Debian's python3-torch (deploy/install-deps.sh --bench), run with /usr/bin/python3.
"""
import argparse
import json
import os
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
    args = parser.parse_args()
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
