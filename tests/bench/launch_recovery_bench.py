#!/usr/bin/python3
"""How fast `convoy launch` brings a job back: after a rank is killed, after a rank hangs, and how
long a SIGTERM takes to end the job with its checkpoint stored.

Each trial is a fresh 2-rank job (lenet5 on the real Fashion-MNIST, global batch 64, a checkpoint
every 25 steps, the launcher's default 1 s backoff before the first restart):

  death    SIGKILL to a random rank at a random step; measured from the kill to the line in which
           rank 0 says it resumed from the checkpoint, and to its next progress event (rank 0
           prints one every 50 steps, so this one is late by up to 50 steps)
  hang     SIGSTOP to a random rank; from the stop to the launcher's line naming the hung rank,
           and to the resumed line (with --hang-timeout, default 60 s)
  sigterm  SIGTERM to the launcher; from the signal to the launcher's exit (code 143 expected)

Prints the median and the range of each.

    python3 tests/bench/launch_recovery_bench.py --convoy build/launcher/convoy [--trials 10]

Any python3 will do (standard library only).
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def rank_pids(launcher):
    ranks = {}
    for p in descendants(launcher):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if b"\0train\0" not in f.read():
                    continue
            with open(f"/proc/{p}/environ", "rb") as f:
                for var in f.read().split(b"\0"):
                    if var.startswith(b"OMPI_COMM_WORLD_RANK="):
                        ranks[int(var.split(b"=")[1])] = p
        except OSError:
            pass
    return ranks


class Job:
    """A `convoy launch` whose output lines are stamped with the time they arrived."""

    def __init__(self, convoy, state, extra):
        cmd = [convoy, "launch", "-np", "2", "--state-dir", state] + extra + [
            "--", "train", "--model", "lenet5", "--epochs", "2", "--global-batch-size", "64",
            "--checkpoint-every", "25", "--log-json", "--progress", "none"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        self.lines = []  # (time, stream, text)
        self.lock = threading.Lock()
        for stream, name in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            threading.Thread(target=self._read, args=(stream, name), daemon=True).start()

    def _read(self, stream, name):
        for line in stream:
            with self.lock:
                self.lines.append((time.monotonic(), name, line))

    def wait_for(self, predicate, after=0.0, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for t, name, line in self.lines:
                    if t >= after and predicate(name, line):
                        return t
            time.sleep(0.002)
        raise RuntimeError("timed out; stderr:\n" + "".join(
            l for _, n, l in self.lines if n == "err"))

    def step_at_least(self, step, after=0.0):
        def is_step(name, line):
            if name != "out" or not line.startswith("{"):
                return False
            event = json.loads(line)
            return event.get("event") == "step" and event["step"] >= step
        return self.wait_for(is_step, after)

    def end(self):
        try:
            self.proc.wait(timeout=300)
        finally:
            if self.proc.poll() is None:
                for p in reversed(descendants(self.proc.pid)):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
        return self.proc.returncode


def summary(name, values):
    return (f"{name}: median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--convoy", required=True)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--hang-trials", type=int, default=3)
    parser.add_argument("--hang-timeout", type=float, default=60)
    args = parser.parse_args()
    rng = random.Random(1)
    death_resumed, death_step, hang_seen, hang_resumed, term_exit = [], [], [], [], []
    work = tempfile.mkdtemp(prefix="convoy-recovery-")
    try:
        for trial in range(args.trials):
            job = Job(args.convoy, f"{work}/death{trial}", [])
            job.step_at_least(rng.choice([100, 150, 200, 250]))
            time.sleep(rng.uniform(0, 0.05))
            ranks = rank_pids(job.proc.pid)
            killed = time.monotonic()
            os.kill(ranks[rng.choice([0, 1])], signal.SIGKILL)
            death_resumed.append(
                job.wait_for(lambda n, l: "resuming job" in l, after=killed) - killed)
            death_step.append(job.step_at_least(0, after=killed + death_resumed[-1]) - killed)
            assert job.end() == 0
        for trial in range(args.hang_trials):
            job = Job(args.convoy, f"{work}/hang{trial}",
                      ["--hang-timeout", str(args.hang_timeout)])
            job.step_at_least(100)
            stopped = time.monotonic()
            os.kill(rank_pids(job.proc.pid)[rng.choice([0, 1])], signal.SIGSTOP)
            hang_seen.append(job.wait_for(lambda n, l: " hung: " in l, after=stopped) - stopped)
            hang_resumed.append(
                job.wait_for(lambda n, l: "resuming job" in l, after=stopped) - stopped)
            assert job.end() == 0
        for trial in range(args.trials):
            job = Job(args.convoy, f"{work}/term{trial}", [])
            job.step_at_least(rng.choice([100, 150, 200, 250]))
            sent = time.monotonic()
            os.kill(job.proc.pid, signal.SIGTERM)
            code = job.end()
            term_exit.append(time.monotonic() - sent)
            assert code == 143, code
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(summary("rank killed -> rank 0 resumed from the checkpoint", death_resumed))
    print(summary("rank killed -> next progress event (<= 50 steps late)", death_step))
    if hang_seen:
        print(summary(f"rank stopped -> hang reported (--hang-timeout {args.hang_timeout:g})",
                      hang_seen))
        print(summary("rank stopped -> rank 0 resumed", hang_resumed))
    print(summary("SIGTERM to the launcher -> launcher exited 143", term_exit))


if __name__ == "__main__":
    sys.exit(main())
