#!/usr/bin/python3
"""Latency of the coordinator's HTTP side, for one or more convoy binaries side by side.

Each binary's `convoy coordinator --http-listen 127.0.0.1:0` (with a token, no jobs) answers, per
path, 1,000 requests on one kept-alive connection and 300 requests each on a new connection, from
Python's http.client. The binaries take turns, --runs times; printed: the median of the runs'
medians per binary, path and kind of connection, in milliseconds, and each binary's ratio to the
first.

    /usr/bin/python3 tests/bench/http_latency.py OLD/convoy build/launcher/convoy [--runs 3]

Every coordinator it starts is stopped and its directory removed on exit.
"""
import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PATHS = ("/healthz", "/metrics", "/api/jobs")
TOKEN = "http-latency-token"


def start(binary, work):
    with open(os.path.join(work, "token"), "w") as f:
        f.write(TOKEN + "\n")
    out = open(os.path.join(work, "out"), "w+")
    process = subprocess.Popen(
        [binary, "coordinator", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
         "--state-dir", os.path.join(work, "state"), "--auth-token-file",
         os.path.join(work, "token")], stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(500):
        out.seek(0)
        found = re.search(r"HTTP on port (\d+)", out.read())
        if found:
            return process, int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.02)
    process.kill()
    raise RuntimeError(f"{binary}: the coordinator did not start")


def get(connection, path):
    connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: status {response.status}")


def measure(port):
    result = {}
    for path in PATHS:
        kept = http.client.HTTPConnection("127.0.0.1", port)
        times = []
        for _ in range(1000):
            begin = time.perf_counter()
            get(kept, path)
            times.append(time.perf_counter() - begin)
        kept.close()
        result[(path, "kept-alive")] = statistics.median(times) * 1e3
        times = []
        for _ in range(300):
            begin = time.perf_counter()
            fresh = http.client.HTTPConnection("127.0.0.1", port)
            get(fresh, path)
            fresh.close()
            times.append(time.perf_counter() - begin)
        result[(path, "new connection")] = statistics.median(times) * 1e3
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.runs < 1:
        print(f"http_latency.py: --runs: {args.runs} is below 1", file=sys.stderr)
        return 2
    for binary in args.binaries:
        if not os.access(binary, os.X_OK):
            print(f"http_latency.py: '{binary}' is not an executable", file=sys.stderr)
            return 2
    samples = {}
    for _ in range(args.runs):
        for binary in args.binaries:
            work = tempfile.mkdtemp(prefix="convoy-http-latency-")
            process = None
            try:
                process, port = start(binary, work)
                for key, ms in measure(port).items():
                    samples.setdefault((binary,) + key, []).append(ms)
            finally:
                if process is not None:
                    process.terminate()
                    process.wait()
                shutil.rmtree(work, ignore_errors=True)
    first = args.binaries[0]
    for path in PATHS:
        for kind in ("kept-alive", "new connection"):
            base = statistics.median(samples[(first, path, kind)])
            for binary in args.binaries:
                ms = statistics.median(samples[(binary, path, kind)])
                print(f"{path:10s} {kind:15s} {ms:7.3f} ms  x{ms / base:4.2f}  {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
