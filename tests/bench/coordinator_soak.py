#!/usr/bin/python3
"""Soak benchmark of the coordinator: many workers for a long time, watched and checkpointed.

Starts `convoy coordinator` on 127.0.0.1 (a fresh state directory) and, with coordinator_bench
--feed, --workers simulated ranks each reporting one step record at --hz for --seconds, while
--watchers clients watch the job and a checkpoint of --upload-mb MiB is uploaded every
--upload-every seconds. Every --sample seconds it reads the coordinator's CPU time and resident
memory from /proc. Prints the samples, then one JSON line: records lost (sent and acknowledged
but not stored; goal 0), p50/p99 ReportMetrics latency, the watchers' and uploads' results, the
coordinator's mean CPU (in cores) and its resident memory after warm-up (first and last sample
after the first fifth of the run, and the maximum).

    /usr/bin/python3 tests/bench/coordinator_soak.py --convoy build/launcher/convoy \\
        --bench build/tests/bench/coordinator_bench [--workers 256 --hz 20 --seconds 600
        --watchers 20 --upload-every 30 --upload-mb 10 --sample 10]

Standard library only. The coordinator is killed and its directory removed on exit.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid):
    match = re.search(r"VmRSS:\s+(\d+) kB", open(f"/proc/{pid}/status").read())
    return int(match.group(1)) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--convoy", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--workers", type=int, default=256)
    parser.add_argument("--hz", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--upload-every", type=int, default=30)
    parser.add_argument("--upload-mb", type=int, default=10)
    parser.add_argument("--sample", type=float, default=10)
    args = parser.parse_args()
    for flag, path in (("--convoy", args.convoy), ("--bench", args.bench)):
        if not os.access(path, os.X_OK):
            print(f"coordinator_soak.py: {flag}: '{path}' is not an executable", file=sys.stderr)
            return 2
    work = tempfile.mkdtemp(prefix="convoy-soak-")
    coordinator = feeder = None
    try:
        coordinator = subprocess.Popen(
            [args.convoy, "coordinator", "--listen", "127.0.0.1:0", "--state-dir",
             os.path.join(work, "state")], stdout=subprocess.PIPE,
            stderr=open(os.path.join(work, "coordinator.err"), "w"), text=True)
        match = re.search(r"listening on port (\d+)", coordinator.stdout.readline())
        if not match:
            print("coordinator_soak.py: the coordinator did not start", file=sys.stderr)
            return 1
        feeder = subprocess.Popen(
            [args.bench, "--feed", f"127.0.0.1:{match.group(1)}", "--job", "soak",
             "--workers", str(args.workers), "--hz", str(args.hz), "--seconds", str(args.seconds),
             "--watchers", str(args.watchers), "--upload-every", str(args.upload_every),
             "--upload-mb", str(args.upload_mb)],
            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "feeder.err"), "w"), text=True)
        start = time.monotonic()
        cpu0 = last_cpu = cpu_seconds(coordinator.pid)
        last = start
        samples = []
        print(f"{'seconds':>8} {'cpu (cores)':>12} {'rss MB':>8}", flush=True)
        while feeder.poll() is None:
            time.sleep(args.sample)
            now, cpu = time.monotonic(), cpu_seconds(coordinator.pid)
            sample = dict(seconds=round(now - start), cores=(cpu - last_cpu) / (now - last),
                          rss_mb=rss_mb(coordinator.pid))
            samples.append(sample)
            print(f"{sample['seconds']:8} {sample['cores']:12.2f} {sample['rss_mb']:8.1f}",
                  flush=True)
            last, last_cpu = now, cpu
        result = json.loads(feeder.stdout.read().strip().splitlines()[-1])
        elapsed = time.monotonic() - start
        warm = [s for s in samples if s["seconds"] >= args.seconds / 5] or samples
        result["coordinator"] = {
            "cpu_cores_mean": (cpu_seconds(coordinator.pid) - cpu0) / elapsed,
            "rss_mb_after_warmup_first": warm[0]["rss_mb"],
            "rss_mb_after_warmup_last": warm[-1]["rss_mb"],
            "rss_mb_max": max(s["rss_mb"] for s in samples),
        }
        print(json.dumps(result))
        return 0 if feeder.returncode == 0 and result["metrics_load"]["lost"] == 0 else 1
    finally:
        for p in (feeder, coordinator):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
