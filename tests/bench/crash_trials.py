#!/usr/bin/python3
"""Crash trials: SIGKILL convoy while it writes, then check what the next start finds.

Four scenarios, each `--trials` kills (lenet5 on the first 640 Fashion-MNIST images, one thread):

  save         `convoy train --save M`, killed while it writes M (the moment its temporary file
               appears, plus 0-0.5 ms)
  dir          `convoy train --checkpoint-dir D --checkpoint-every 1 --keep-checkpoints 2
               --resume` (after a first run has stored checkpoints), killed while a checkpoint or the manifest is being written or old
               checkpoints deleted (a temporary appears after a random 0-1 s, plus 0-3 ms)
  upload       a coordinator receiving a checkpoint upload from `convoy train --coordinator
               --checkpoint-every 1`, killed while the upload's temporary file exists (plus 0-0.5 ms)
  manifest     the same coordinator killed while it rewrites a job's manifest (its temporary
               exists), which it does for every stored checkpoint (retention: 2 kept)

After each kill it counts:
  valid     the latest checkpoint is there and `convoy evaluate` accepts it (the one the next
            start would use: M; the newest manifest entry whose SHA-256 matches; what the
            restarted coordinator serves as "latest")
  stale     temporary files of earlier kills still present once the next start has begun
            (a kill may leave its own; the next start must remove it)
  corrupt   a checkpoint served that fails its checks (the restarted coordinator's "latest", or a
            --resume that fails to read what it was given)
  hit       the kill left a temporary behind (it landed mid-write)

Exits 1 unless every trial has a valid checkpoint and no stale or corrupt ones.

    /usr/bin/python3 tests/bench/crash_trials.py --convoy build/launcher/convoy [--trials 100]
        [--scenarios save,dir,upload,manifest] [--seed N]

Standard library only. Servers listen on 127.0.0.1 only; every process it starts is killed and
every directory removed on exit.
"""
import argparse
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DATA = ["--limit-train", "640", "--limit-test", "100", "--threads", "1"]
TEMP_MARKERS = (".tmp.", ".upload-")


def temporaries(directory):
    found = []
    for root, _, files in os.walk(directory):
        found += [os.path.join(root, f) for f in files if any(m in f for m in TEMP_MARKERS)]
    return found


def temp_pid(path):
    """The pid in an atomic write's temporary `<file>.tmp.<pid>.<n>`, or None."""
    match = re.search(r"\.tmp\.(\d+)\.\d+$", path)
    return int(match.group(1)) if match else None


def wait_for_temporary(directory, proc, timeout, old=()):
    """Polls until a temporary not in `old` appears under `directory`; False when `proc` ended or
    time ran out."""
    deadline = time.monotonic() + timeout
    old = set(old)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        for root, _, files in os.walk(directory):
            for f in files:
                if any(m in f for m in TEMP_MARKERS) and os.path.join(root, f) not in old:
                    return True
    return False


class Trials:
    def __init__(self, convoy, work, rng):
        self.convoy, self.work, self.rng = convoy, work, rng
        self.procs = []

    def start(self, args, stdout=subprocess.DEVNULL):
        """Starts convoy; its stderr goes to a file (read by `kill`), so no pipe can fill."""
        err = tempfile.TemporaryFile(mode="w+", dir=self.work)
        proc = subprocess.Popen([self.convoy] + args, stdout=stdout, stderr=err, text=True)
        proc.err_file = err
        self.procs.append(proc)
        return proc

    def kill(self, proc):
        """SIGKILL (if still running); returns what the process wrote on stderr."""
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        proc.err_file.seek(0)
        text = proc.err_file.read()
        proc.err_file.close()
        self.procs.remove(proc)
        return text

    def cleanup(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def evaluate(self, path):
        if not os.path.exists(path):
            return False
        run = subprocess.run([self.convoy, "evaluate", "--checkpoint", path] + DATA[2:],
                             capture_output=True, text=True)
        return run.returncode == 0

    # --- save -------------------------------------------------------------------------------
    def save(self, trials):
        d = os.path.join(self.work, "save")
        os.makedirs(d)
        model = os.path.join(d, "model.ckpt")
        train = ["train", "--model", "lenet5"] + DATA + ["--max-steps", "3", "--save", model]
        subprocess.run([self.convoy] + train, check=True, capture_output=True)  # the first one
        counts = dict(valid=0, stale=0, corrupt=0, hit=0)
        for _ in range(trials):
            before = temporaries(d)
            proc = self.start(train)
            if wait_for_temporary(d, proc, 60, before):
                time.sleep(self.rng.uniform(0, 0.0005))
            self.kill(proc)
            left = temporaries(d)
            counts["hit"] += any(temp_pid(t) == proc.pid for t in left)
            # The next start is the next trial (or the final run below); stale = an earlier pid.
            counts["stale"] += sum(1 for t in left if temp_pid(t) != proc.pid)
            counts["valid"] += self.evaluate(model)
        run = subprocess.run([self.convoy] + train, capture_output=True, text=True)
        counts["stale"] += len(temporaries(d)) if run.returncode == 0 else 1
        return counts

    # --- dir --------------------------------------------------------------------------------
    @staticmethod
    def manifest_latest(d):
        """The newest manifest entry whose file matches its SHA-256 (what the store serves)."""
        try:
            text = open(os.path.join(d, "manifest.pbtxt")).read()
        except OSError:
            return None, 0
        best, corrupt_listed = None, 0
        for block in re.findall(r"checkpoint \{(.*?)\n\}", text, re.S):
            name = re.search(r'name: "([^"]*)"', block).group(1)
            sha = re.search(r'sha256: "([^"]*)"', block).group(1)
            step = int((re.search(r"step: (\d+)", block) or [0, 0])[1] or 0)
            path = os.path.join(d, name + ".ckpt")
            try:
                ok = hashlib.sha256(open(path, "rb").read()).hexdigest() == sha
            except OSError:
                ok = False
            if not ok:
                corrupt_listed += 1
            elif best is None or step >= best[0]:
                best = (step, path)
        return (best[1] if best else None), corrupt_listed

    def directory(self, trials):
        d = os.path.join(self.work, "dir")
        train = ["train", "--model", "lenet5"] + DATA + [
            "--epochs", "1000", "--checkpoint-dir", d, "--checkpoint-every", "1",
            "--keep-checkpoints", "2", "--resume"]
        # A first run stores checkpoints unharmed: from then on there is one to lose. (Waiting a
        # fixed time instead is not enough: a slow build, such as a sanitized one, may not have
        # finished its first checkpoint by then.)
        first = ["train", "--model", "lenet5"] + DATA + [
            "--epochs", "2", "--checkpoint-dir", d, "--checkpoint-every", "1",
            "--keep-checkpoints", "2"]
        subprocess.run([self.convoy] + first, check=True, capture_output=True)
        counts = dict(valid=0, stale=0, corrupt=0, hit=0)
        previous = None
        for i in range(trials):
            before = temporaries(d)
            proc = self.start(train)
            time.sleep(self.rng.uniform(0, 1.0))
            if wait_for_temporary(d, proc, 60, before):
                time.sleep(self.rng.uniform(0, 0.003))
            err = self.kill(proc)
            if proc.returncode != -signal.SIGKILL:
                # It ended by itself: a --resume that could not use what the store served.
                print(f"dir: trial {i}: convoy exited with {proc.returncode}: {err.strip()}",
                      file=sys.stderr)
                counts["corrupt"] += 1
            left = temporaries(d)
            counts["hit"] += bool(left)
            # The next start (this trial's process) opened the store: the previous kill's
            # temporaries must be gone by now.
            counts["stale"] += sum(1 for t in (previous or []) if os.path.exists(t))
            previous = left
            latest, _ = self.manifest_latest(d)
            counts["valid"] += latest is not None and self.evaluate(latest)
        # The last kill's temporaries must be gone once the next start has written something.
        proc = self.start(train)
        wait_for_temporary(d, proc, 60, previous or [])
        self.kill(proc)
        counts["stale"] += sum(1 for t in (previous or []) if os.path.exists(t))
        return counts

    # --- upload, manifest -------------------------------------------------------------------
    def coordinator(self, state):
        proc = self.start(["coordinator", "--listen", "127.0.0.1:0", "--state-dir", state,
                           "--keep-checkpoints", "2"], stdout=subprocess.PIPE)
        line = proc.stdout.readline()
        match = re.search(r"listening on port (\d+)", line)
        if not match:
            raise RuntimeError(f"coordinator did not start: {line!r} {self.kill(proc)!r}")
        return proc, f"127.0.0.1:{match.group(1)}"

    def coordinated(self, trials, scenario):
        state = os.path.join(self.work, scenario)
        job_dir = os.path.join(state, "checkpoints", "crash")
        os.makedirs(job_dir)
        counts = dict(valid=0, stale=0, corrupt=0, hit=0)
        server, address = self.coordinator(state)
        for i in range(trials):
            client = self.start(["train", "--model", "lenet5"] + DATA + [
                "--epochs", "1000", "--coordinator", address, "--job-id", "crash",
                "--checkpoint-every", "1"] + (["--resume"] if i else []))
            # The first trial waits for a stored checkpoint: there is one to lose from then on.
            while i == 0 and client.poll() is None and not os.path.exists(
                    os.path.join(job_dir, "manifest.pbtxt")):
                time.sleep(0.01)
            time.sleep(self.rng.uniform(0.2, 1.0))
            if scenario == "upload":
                watched = lambda f: ".upload-" in f
            else:
                watched = lambda f: f.startswith("manifest.pbtxt.tmp.")
            deadline = time.monotonic() + 30
            hit_moment = False
            while time.monotonic() < deadline and client.poll() is None:
                try:
                    if any(watched(f) for f in os.listdir(job_dir)):
                        hit_moment = True
                        break
                except OSError:
                    pass
            if hit_moment and scenario == "upload":
                time.sleep(self.rng.uniform(0, 0.0005))
            self.kill(server)
            self.kill(client)
            counts["hit"] += bool(temporaries(state))
            server, address = self.coordinator(state)  # the next start
            counts["stale"] += len(temporaries(state))
            out = os.path.join(self.work, "latest.ckpt")
            if os.path.exists(out):
                os.remove(out)
            download = subprocess.run(
                [self.convoy, "monitor", address, "--job", "crash", "download", "latest",
                 "--out", out], capture_output=True, text=True)
            if download.returncode == 0:
                good = self.evaluate(out)
                counts["valid"] += good
                counts["corrupt"] += not good
        self.kill(server)
        return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--convoy", required=True)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--scenarios", default="save,dir,upload,manifest")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    for s in scenarios:
        if s not in ("save", "dir", "upload", "manifest"):
            print(f"crash_trials.py: --scenarios: unknown scenario '{s}'", file=sys.stderr)
            return 2
    if not os.access(args.convoy, os.X_OK):
        print(f"crash_trials.py: --convoy: '{args.convoy}' is not an executable", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="convoy-crash-")
    trials = Trials(os.path.abspath(args.convoy), work, random.Random(args.seed))
    failed = False
    try:
        print(f"{'scenario':10} {'trials':>6} {'valid':>6} {'stale':>6} {'corrupt':>8} {'hit':>5}"
              f"  seconds")
        for s in scenarios:
            start = time.monotonic()
            if s == "save":
                c = trials.save(args.trials)
            elif s == "dir":
                c = trials.directory(args.trials)
            else:
                c = trials.coordinated(args.trials, s)
            print(f"{s:10} {args.trials:6} {c['valid']:6} {c['stale']:6} {c['corrupt']:8} "
                  f"{c['hit']:5}  {time.monotonic() - start:.0f}", flush=True)
            failed |= c["valid"] != args.trials or c["stale"] or c["corrupt"]
    finally:
        trials.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
