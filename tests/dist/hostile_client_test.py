#!/usr/bin/python3
"""The coordinator against a hostile client: every call below, with the status it must get.

An independent client (Python's grpcio, messages from protoc) talks to the `convoy coordinator`
binary on 127.0.0.1, started with a token and small limits:

  auth      every RPC (and server reflection) without a token and with a wrong one:
            UNAUTHENTICATED; health answers without one
  names     job ids and checkpoint names with '..', '/', NUL, 10 KB, invalid UTF-8: INVALID_ARGUMENT
  uploads   claiming 1 TB, sending more or fewer bytes than announced, a wrong SHA-256, a second
            header, going idle (ended after --upload-idle-seconds, its partial file removed), 100
            at once (each stored or turned away with UNAVAILABLE; nothing left behind)
  messages  a metrics batch just under the 4 MiB message limit (stored) and just over it
  ranks     impossible ranks and world sizes
  watchers  200 concurrent watch streams all get a new batch while other calls still answer
  limits    a job past --max-job-records or --max-job-checkpoint-mb is refused
            (RESOURCE_EXHAUSTED), another job is not

Prints one line per check and exits 1 if any got another status.

    /usr/bin/python3 tests/dist/hostile_client_test.py build/launcher/convoy

Needs Debian's python3-grpcio and python3-protobuf, and protoc. Every process it starts is
killed and every file removed on exit.
"""
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = "the-right-token"
SERVICE = "/convoy.pb.Coordinator/"
MAX_JOB_RECORDS = 100000  # above what one 4 MiB batch can hold
IDLE_SECONDS = 2

results = []


def check(name, got, expected):
    ok = got == expected
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {got}" + ("" if ok else f" (expected {expected})"),
          flush=True)


def code_of(call):
    try:
        call()
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def with_field(message, field, raw):
    """`message` serialized with its text `field` (bytes on the wire) holding `raw`."""
    marker = b"\x01marker\x02"  # a placeholder no message holds otherwise
    setattr(message, field, marker)
    return message.SerializeToString().replace(varint(len(marker)) + marker,
                                               varint(len(raw)) + raw)


class Client:
    def __init__(self, pb, address):
        self.pb = pb
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20)])
        raw = dict(request_serializer=lambda m: m if isinstance(m, bytes) else
                   m.SerializeToString(), response_deserializer=lambda b: b)
        self.unary = {name: self.channel.unary_unary(SERVICE + name, **raw) for name in (
            "Register", "Heartbeat", "ReportMetrics", "ReportEvaluation", "ReportRestart",
            "GetJobStatus", "QueryMetrics", "ListCheckpoints")}
        self.upload_call = self.channel.stream_unary(SERVICE + "UploadCheckpoint", **raw)
        self.watch_call = self.channel.unary_stream(SERVICE + "WatchMetrics", **raw)
        self.download_call = self.channel.unary_stream(SERVICE + "DownloadCheckpoint", **raw)
        self.reflection = self.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", **raw)
        self.health = self.channel.unary_unary("/grpc.health.v1.Health/Check", **raw)

    @staticmethod
    def metadata(token=TOKEN):
        return (("authorization", "Bearer " + token),) if token is not None else ()

    def call(self, name, request, token=TOKEN, timeout=10):
        return self.unary[name](request, timeout=timeout, metadata=self.metadata(token))

    def upload(self, chunks, token=TOKEN, timeout=30):
        return self.upload_call(iter(chunks), timeout=timeout, metadata=self.metadata(token))

    def watch_first(self, request, token=TOKEN, timeout=3):
        for batch in self.watch_call(request, timeout=timeout, metadata=self.metadata(token)):
            return batch
        return None

    def download(self, request, token=TOKEN, timeout=10):
        return b"".join(self.download_call(request, timeout=timeout,
                                           metadata=self.metadata(token)))

    def header_chunk(self, job, data, name="", step=1, size=None, sha=None):
        chunk = self.pb.CheckpointChunk()
        h = chunk.header
        h.job_id, h.name, h.step = job.encode(), name.encode(), step
        h.size = len(data) if size is None else size
        h.sha256 = (hashlib.sha256(data).hexdigest() if sha is None else sha).encode()
        return chunk

    def data_chunk(self, data):
        chunk = self.pb.CheckpointChunk()
        chunk.data = data
        return chunk

    def whole_upload(self, job, data, **kw):
        first = self.header_chunk(job, data, **kw)
        first.data = data
        return self.upload([first])


def requests_for(pb, job):
    """A well-formed request of every job-taking call, for `job`."""
    job = job.encode()
    register = pb.RegisterRequest(job_id=job, rank=0, world_size=1, host=b"h")
    batch = pb.MetricsBatch(job_id=job)
    batch.record.add(step=1, loss=1.0)
    return {
        "Register": register,
        "Heartbeat": pb.HeartbeatRequest(job_id=job, rank=0, step=1),
        "ReportMetrics": batch,
        "ReportEvaluation": pb.EvaluationRecord(job_id=job, step=1, test_accuracy=0.5),
        "ReportRestart": pb.RestartRecord(job_id=job, restart=1, rank=0, cause=b"killed"),
        "GetJobStatus": pb.JobStatusRequest(job_id=job),
        "QueryMetrics": pb.MetricsQuery(job_id=job),
        "ListCheckpoints": pb.ListCheckpointsRequest(job_id=job),
    }


def auth_checks(c, pb):
    for token, what in ((None, "no token"), ("wrong-token", "a wrong token")):
        for name, request in requests_for(pb, "job").items():
            check(f"auth: {name} with {what}", code_of(lambda: c.call(name, request, token)),
                  "UNAUTHENTICATED")
        data = b"x" * 100
        first = c.header_chunk("job", data)
        first.data = data
        check(f"auth: UploadCheckpoint with {what}",
              code_of(lambda: c.upload([first], token)), "UNAUTHENTICATED")
        check(f"auth: WatchMetrics with {what}",
              code_of(lambda: c.watch_first(pb.WatchRequest(job_id=b"job"), token)),
              "UNAUTHENTICATED")
        check(f"auth: DownloadCheckpoint with {what}",
              code_of(lambda: c.download(pb.DownloadRequest(job_id=b"job", name=b"latest"), token)),
              "UNAUTHENTICATED")
        check(f"auth: server reflection with {what}",
              code_of(lambda: list(c.reflection(iter([b"\x3a\x00"]), timeout=10,
                                                metadata=c.metadata(token)))),
              "UNAUTHENTICATED")
    check("auth: health without a token", code_of(lambda: c.health(b"", timeout=10)), "OK")


BAD_NAMES = {
    "'..'": b"..",
    "'../escape'": b"../escape",
    "'a/b'": b"a/b",
    "NUL": b"a\x00b",
    "10 KB": b"j" * 10240,
    "invalid UTF-8": b"\xff\xfe\xc3",
}


def name_checks(c, pb):
    for label, raw in BAD_NAMES.items():
        for name, request in requests_for(pb, "placeholder").items():
            body = with_field(request, "job_id", raw)
            check(f"names: {name} for job {label}", code_of(lambda: c.call(name, body)),
                  "INVALID_ARGUMENT")
        data = b"y" * 100
        chunk = c.header_chunk("placeholder", data)
        chunk.data = data
        header = with_field(chunk.header, "job_id", raw)
        # Field 1 of CheckpointChunk is the header: rebuild the chunk around the raw header.
        body = b"\x0a" + varint(len(header)) + header + b"\x12" + varint(len(data)) + data
        check(f"names: UploadCheckpoint for job {label}", code_of(lambda: c.upload([body])),
              "INVALID_ARGUMENT")
        header = with_field(c.header_chunk("named", data).header, "name", raw)
        body = b"\x0a" + varint(len(header)) + header + b"\x12" + varint(len(data)) + data
        check(f"names: UploadCheckpoint named {label}", code_of(lambda: c.upload([body])),
              "INVALID_ARGUMENT")
        watch = with_field(pb.WatchRequest(), "job_id", raw)
        check(f"names: WatchMetrics for job {label}", code_of(lambda: c.watch_first(watch)),
              "INVALID_ARGUMENT")
        download = with_field(pb.DownloadRequest(name=b"latest"), "job_id", raw)
        check(f"names: DownloadCheckpoint for job {label}", code_of(lambda: c.download(download)),
              "INVALID_ARGUMENT")
        download = with_field(pb.DownloadRequest(job_id=b"named"), "name", raw)
        check(f"names: DownloadCheckpoint named {label}", code_of(lambda: c.download(download)),
              "INVALID_ARGUMENT")
    bad = b"\xff\xfe\xc3"
    register = with_field(pb.RegisterRequest(job_id=b"texts", world_size=1), "host", bad)
    check("names: Register with a host of invalid UTF-8",
          code_of(lambda: c.call("Register", register)), "INVALID_ARGUMENT")
    restart = with_field(pb.RestartRecord(job_id=b"texts", restart=1), "cause", bad)
    check("names: ReportRestart with a cause of invalid UTF-8",
          code_of(lambda: c.call("ReportRestart", restart)), "INVALID_ARGUMENT")


def temporaries(state, wait=5):
    """Temporary files under `state`, once none is left or `wait` seconds have passed (a call's
    handler removes its file a moment after the client sees the call end)."""
    deadline = time.monotonic() + wait
    while True:
        found = [f for _, _, files in os.walk(state) for f in files
                 if ".upload-" in f or ".tmp." in f]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def upload_checks(c, pb, state):
    data = os.urandom(200_000)
    check("uploads: claiming 1 TB",
          code_of(lambda: c.upload([c.header_chunk("up", data, size=1 << 40)])),
          "RESOURCE_EXHAUSTED")
    first = c.header_chunk("up", data[:1000], size=1000)
    check("uploads: more bytes than announced",
          code_of(lambda: c.upload([first, c.data_chunk(data[:2000])])), "RESOURCE_EXHAUSTED")
    first = c.header_chunk("up", data)
    check("uploads: fewer bytes than announced",
          code_of(lambda: c.upload([first, c.data_chunk(data[:1000])])), "DATA_LOSS")
    first = c.header_chunk("up", data, sha="0" * 64)
    check("uploads: a wrong SHA-256", code_of(lambda: c.upload([first, c.data_chunk(data)])),
          "DATA_LOSS")
    first = c.header_chunk("up", data)
    check("uploads: a second header",
          code_of(lambda: c.upload([first, c.header_chunk("up", data)])), "INVALID_ARGUMENT")

    def stalling():
        yield c.header_chunk("up", data)
        yield c.data_chunk(data[:1000])
        time.sleep(IDLE_SECONDS * 4)
        yield c.data_chunk(data[1000:])

    start = time.monotonic()
    check("uploads: idle past --upload-idle-seconds", code_of(lambda: c.upload(stalling())),
          "CANCELLED")
    check("uploads: the idle one was ended by the deadline",
          time.monotonic() - start < IDLE_SECONDS * 4, True)
    check("uploads: nothing left by them", temporaries(state), [])

    def one(i):
        try:
            c.whole_upload(f"many-{i}", data)
            return "OK"
        except grpc.RpcError as e:
            return e.code().name

    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        codes = list(pool.map(one, range(100)))
    check("uploads: 100 at once are stored or turned away (UNAVAILABLE)",
          sorted(set(codes)) in (["OK"], ["OK", "UNAVAILABLE"]), True)
    print(f"     ({codes.count('OK')} stored, {codes.count('UNAVAILABLE')} turned away)")
    stored = sum(1 for i in range(100) if codes[i] == "OK" and pb.CheckpointList.FromString(
        c.call("ListCheckpoints", pb.ListCheckpointsRequest(job_id=f"many-{i}".encode()))).checkpoint)
    check("uploads: every one stored is listed", stored, codes.count("OK"))
    check("uploads: nothing left by the 100", temporaries(state), [])


def message_checks(c, pb):
    def batch_of(job, size):
        """A batch of `size` bytes or a few more (records of equal size: 3-byte steps)."""
        batch = pb.MetricsBatch(job_id=job)
        record = dict(rank=1, loss=0.5, accuracy=0.5, images_per_second=1000, step_seconds=0.06)
        batch.record.add(step=20000, **record)
        one = batch.ByteSize()
        batch.record.add(step=20001, **record)
        each = batch.ByteSize() - one
        for step in range(20002, 20000 + (size - one) // each + 2):
            batch.record.add(step=step, **record)
        return batch
    under = batch_of(b"large", (4 << 20) - 256)
    check(f"messages: a batch of {under.ByteSize()} bytes",
          code_of(lambda: c.call("ReportMetrics", under)), "OK")
    over = batch_of(b"larger", (4 << 20) + 256)
    check(f"messages: a batch of {over.ByteSize()} bytes",
          code_of(lambda: c.call("ReportMetrics", over)), "RESOURCE_EXHAUSTED")


def rank_checks(c, pb):
    for rank, world in ((-1, 2), (2, 2), (0, 0), (0, -5), (0, 4097), (5000, 4097)):
        request = pb.RegisterRequest(job_id=b"ranks", rank=rank, world_size=world, host=b"h")
        check(f"ranks: rank {rank} of {world}", code_of(lambda: c.call("Register", request)),
              "INVALID_ARGUMENT")


def watcher_checks(c, pb):
    c.call("Register", pb.RegisterRequest(job_id=b"watched", rank=0, world_size=1, host=b"h"))
    received = []
    lock = threading.Lock()
    calls = []

    def watch():
        call = c.watch_call(pb.WatchRequest(job_id=b"watched"), timeout=60,
                            metadata=c.metadata())
        with lock:
            calls.append(call)
        try:
            for batch in call:
                with lock:
                    received.append(batch)
                return
        except grpc.RpcError:
            pass

    threads = [threading.Thread(target=watch) for _ in range(200)]
    for t in threads:
        t.start()
    time.sleep(2)  # the streams are open
    start = time.monotonic()
    status = code_of(lambda: c.call("GetJobStatus", pb.JobStatusRequest(job_id=b"watched")))
    check("watchers: a status call answers while 200 streams are open", status, "OK")
    check("watchers: ... within 2 s", time.monotonic() - start < 2, True)
    batch = pb.MetricsBatch(job_id=b"watched")
    batch.record.add(rank=0, step=7, loss=0.25)
    c.call("ReportMetrics", batch)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(received) < 200:
        time.sleep(0.1)
    check("watchers: all 200 got the new batch", len(received), 200)
    for call in calls:
        call.cancel()
    for t in threads:
        t.join()


def limit_checks(c, pb):
    for i in range(0, MAX_JOB_RECORDS, 20000):
        batch = pb.MetricsBatch(job_id=b"quota")
        for s in range(i, i + 20000):
            batch.record.add(rank=0, step=s + 1, loss=0.5)
        c.call("ReportMetrics", batch, timeout=60)
    batch = pb.MetricsBatch(job_id=b"quota")
    batch.record.add(rank=0, step=MAX_JOB_RECORDS + 1, loss=0.5)
    check(f"limits: record {MAX_JOB_RECORDS + 1} of a job",
          code_of(lambda: c.call("ReportMetrics", batch)), "RESOURCE_EXHAUSTED")
    batch.job_id = b"other"
    check("limits: ... while another job stores", code_of(lambda: c.call("ReportMetrics", batch)),
          "OK")
    data = os.urandom(600_000)
    check("limits: a first 0.6 MB checkpoint", code_of(lambda: c.whole_upload("full", data)), "OK")
    check("limits: a second one, 1.2 MB in all over the 1 MiB limit",
          code_of(lambda: c.whole_upload("full", data, step=2)), "RESOURCE_EXHAUSTED")
    check("limits: ... while another job stores",
          code_of(lambda: c.whole_upload("other", data)), "OK")


def main():
    if len(sys.argv) != 2:
        print("usage: hostile_client_test.py CONVOY", file=sys.stderr)
        return 2
    convoy = sys.argv[1]
    work = tempfile.mkdtemp(prefix="convoy-hostile-")
    coordinator = None
    try:
        protos = os.path.join(work, "protos")
        os.makedirs(protos)
        proto_dir = os.path.join(ROOT, "proto")
        subprocess.run(["protoc", "-I", proto_dir, "--python_out", protos, "coordinator.proto"],
                       check=True)
        sys.path.insert(0, protos)
        import coordinator_pb2 as pb

        with open(os.path.join(work, "token"), "w") as f:
            f.write(TOKEN + "\n")
        state = os.path.join(work, "state")
        coordinator = subprocess.Popen(
            [convoy, "coordinator", "--listen", "127.0.0.1:0", "--state-dir", state,
             "--auth-token-file", os.path.join(work, "token"),
             "--upload-idle-seconds", str(IDLE_SECONDS),
             "--max-job-records", str(MAX_JOB_RECORDS), "--max-job-checkpoint-mb", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        match = re.search(r"listening on port (\d+)", coordinator.stdout.readline())
        if not match:
            print("FAIL: the coordinator did not start")
            return 1
        c = Client(pb, f"127.0.0.1:{match.group(1)}")
        auth_checks(c, pb)
        name_checks(c, pb)
        upload_checks(c, pb, state)
        message_checks(c, pb)
        rank_checks(c, pb)
        watcher_checks(c, pb)
        limit_checks(c, pb)
        check("the coordinator is still running", coordinator.poll(), None)
    finally:
        if coordinator:
            coordinator.kill()
            coordinator.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{results.count(True)} of {len(results)} checks passed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
