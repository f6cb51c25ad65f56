#!/usr/bin/python3
"""Peak resident memory of training, convoy against PyTorch, side by side in one run.

Both train the same model on the real Fashion-MNIST (Debian's dataset-fashion-mnist) for the same
steps at batch 64 with SGD + momentum, then evaluate the whole test set. convoy holds the data as
it does by default (the bytes kept, converted a batch at a time). PyTorch runs twice, as scripts
commonly hold data: "pytorch_float" scales the images to float32 tensors once (in place, one
copy) and indexes batches out of them; "pytorch_bytes" keeps uint8 tensors and converts each
batch, as torchvision's data sets do. Each run is a fresh process; its peak resident set is the
kernel's count (getrusage's ru_maxrss, read by os.wait4). The runs alternate and the script prints
each side's median and convoy's ratio to each.

    /usr/bin/python3 tests/bench/peak_memory.py --convoy build/launcher/convoy [--runs 3]

Needs Debian's python3-torch (deploy/install-deps.sh --bench), run with /usr/bin/python3.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


DATA = "/usr/share/datasets/fashion-mnist"

PYTORCH = r"""
import sys, torch, torch_models
model_name, steps, threads, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
torch.manual_seed(1)
def images(name):
    u8 = torch.from_numpy(torch_models.read_idx(DATA, name))
    return u8 if mode == "bytes" else u8.float().div_(255)
def batch(x, idx):
    return x[idx].float().div_(255) if mode == "bytes" else x[idx]
def labels(name):
    return torch.from_numpy(torch_models.read_idx(DATA, name).astype("int64"))
x_train, y_train = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
x_test, y_test = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
model = torch_models.build(model_name)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
loss_fn = torch.nn.CrossEntropyLoss()
order = torch.randperm(len(x_train))
model.train()
for s in range(steps):
    idx = order[s * 64:(s + 1) * 64]
    opt.zero_grad(set_to_none=True)
    loss_fn(model(batch(x_train, idx)), y_train[idx]).backward()
    opt.step()
model.eval()
correct = 0
with torch.no_grad():
    for b in range(0, len(x_test), 64):
        x = batch(x_test, torch.arange(b, min(b + 64, len(x_test))))
        correct += (model(x).argmax(1) == y_test[b:b + 64]).sum().item()
print(correct / len(x_test))
"""


def run_peak(cmd, env=None):
    """Starts `cmd` with its output in files (so nothing blocks) and reaps it with wait4."""
    with open(os.devnull, "wb") as null:
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdout=null, stderr=err, env=env)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                raise RuntimeError(
                    f"{cmd[0]} exited with {proc.returncode}: "
                    f"{err.read().decode(errors='replace')[-400:]}")
    return usage.ru_maxrss * 1024 / 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convoy", default="build/launcher/convoy")
    parser.add_argument("--model", default="fashion_cnn")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not os.path.isdir(DATA):
        print(f"peak_memory.py: {DATA} is missing (apt-get install dataset-fashion-mnist)",
              file=sys.stderr)
        return 2
    convoy = [args.convoy, "train", "--model", args.model, "--data", DATA, "--max-steps",
              str(args.steps), "--batch-size", "64", "--threads", str(args.threads)]
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=here)
    pytorch = [sys.executable, "-c", f"DATA = {DATA!r}\n" + PYTORCH, args.model, str(args.steps),
               str(args.threads)]
    sides = {"convoy": [], "pytorch_float": [], "pytorch_bytes": []}
    for _ in range(args.runs):
        sides["convoy"].append(run_peak(convoy))
        sides["pytorch_float"].append(run_peak(pytorch + ["float"], env))
        sides["pytorch_bytes"].append(run_peak(pytorch + ["bytes"], env))
    result = {"model": args.model, "steps": args.steps, "batch_size": 64, "threads": args.threads}
    for side, values in sides.items():
        result[side] = {"peak_mb_median": round(statistics.median(values), 1),
                        "runs": [round(v, 1) for v in values]}
    for side in ("pytorch_float", "pytorch_bytes"):
        result[f"convoy_over_{side}"] = round(
            result["convoy"]["peak_mb_median"] / result[side]["peak_mb_median"], 3)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
