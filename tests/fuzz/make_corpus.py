#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/).

Seeds are small valid inputs, plus a few that must be refused, made with the formats' own tools
(NumPy's np.save, Python's gzip, protobuf) and with convoy itself (checkpoints it saved, its
built-in model descriptions). Run from anywhere with Debian's Python:

    /usr/bin/python3 tests/fuzz/make_corpus.py build/launcher/convoy

It rewrites the corpus directories; libFuzzer adds what it finds to a copy, never to these.
"""
import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")
TOKEN = b"fuzz-token"
TINY_MODEL = """name: "tiny"
input { channels: 1 spatial: [28, 28] }
num_classes: 10
layer { name: "pool" type: "AvgPool2D" pool { kernel: 7 } }
layer { name: "fc" type: "Dense" dense { units: 10 } }
"""


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def idx(type_byte, dims, payload):
    header = bytes([0, 0, type_byte, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + payload


def idx_seeds(rng):
    images = idx(0x08, [2, 4, 4], rng.integers(0, 256, 32, dtype=np.uint8).tobytes())
    labels = idx(0x08, [3], bytes([0, 9, 4]))
    # First byte: bit 0 compresses the rest in the target, bit 1 expects the labels' magic.
    put("idx", "images_plain", b"\x00" + images)
    put("idx", "images_gzip_by_target", b"\x01" + images)
    put("idx", "labels_plain", b"\x02" + labels)
    put("idx", "labels_gzip_by_target", b"\x03" + labels)
    put("idx", "images_gzip_file", b"\x00" + gzip.compress(images, mtime=0))
    put("idx", "images_truncated", b"\x00" + images[:-5])
    put("idx", "gzip_truncated", b"\x00" + gzip.compress(images, mtime=0)[:-6])
    put("idx", "labels_wrong_magic", b"\x00" + labels)


def cifar10_seeds(rng):
    def record(label):
        return bytes([label]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes()

    put("cifar10", "two_records", record(3) + record(9))
    put("cifar10", "label_10", record(10))
    put("cifar10", "partial_record", record(1)[:1000])


def npy_seeds(rng):
    def saved(array):
        out = io.BytesIO()
        np.save(out, array, allow_pickle=False)
        return out.getvalue()

    put("npy", "float32_images", saved(rng.random((2, 1, 4, 4), dtype=np.float32)))
    put("npy", "uint8_images", saved(rng.integers(0, 256, (2, 1, 4, 4), dtype=np.uint8)))
    put("npy", "int64_labels", saved(np.array([0, 9, 3], dtype=np.int64)))
    put("npy", "int32_labels", saved(np.array([1, 2], dtype=np.int32)))
    put("npy", "uint16_labels", saved(np.array([7], dtype=np.uint16)))
    put("npy", "big_endian", saved(np.array([1.0, 2.0], dtype=">f4")))
    put("npy", "fortran_order", saved(np.asfortranarray(np.ones((2, 3), dtype=np.float32))))
    put("npy", "float64", saved(np.ones(3, dtype=np.float64)))
    v2 = io.BytesIO()
    np.lib.format.write_array(v2, np.zeros((2, 2), dtype=np.float32), version=(2, 0))
    put("npy", "version_2", v2.getvalue())
    put("npy", "truncated", saved(np.ones((4, 4), dtype=np.float32))[:-8])


def model_spec_seeds(convoy):
    listing = subprocess.run([convoy, "models"], check=True, capture_output=True, text=True).stdout
    for line in listing.splitlines():
        if line and not line.startswith(" ") and ":" in line:
            name = line.split(":")[0]
            text = subprocess.run([convoy, "models", name], check=True, capture_output=True).stdout
            put("model_spec", name + ".pbtxt", text)
    put("model_spec", "tiny.pbtxt", TINY_MODEL.encode())
    shutil.copy(os.path.join(ROOT, "tests/bench/models/wide_cnn.pbtxt"),
                os.path.join(CORPUS, "model_spec", "wide_cnn.pbtxt"))
    put("model_spec", "every_activation.pbtxt", b"""name: "acts"
input { channels: 2 spatial: [6, 6] }
num_classes: 3
layer { type: "Conv2D" conv { filters: 4 kernel: 3 pad: 1 stride: 1 } }
layer { type: "BatchNorm" }
layer { type: "ELU" }
layer { type: "SELU" }
layer { type: "Sigmoid" }
layer { type: "Tanh" }
layer { type: "MaxPool2D" pool { kernel: 2 stride: 2 } }
layer { type: "Dropout" dropout { rate: 0.5 } }
layer { type: "Dense" dense { units: 3 } }
""")
    put("model_spec", "bad_syntax.pbtxt", b'name: "x" layer { type: ')


def checkpoint_seeds(convoy):
    sys.path.insert(0, generated_protos())
    import checkpoint_pb2

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.pbtxt")
        with open(model, "w") as f:
            f.write(TINY_MODEL)
        for optimizer in ("sgd", "adam"):
            out = os.path.join(tmp, optimizer + ".ckpt")
            subprocess.run([convoy, "train", "--model", model, "--max-steps", "2", "--threads", "1",
                            "--batch-size", "8", "--optimizer", optimizer, "--save", out],
                           check=True, capture_output=True)
            data = open(out, "rb").read()
            put("checkpoint", "tiny_" + optimizer, data)
            envelope = checkpoint_pb2.CheckpointFile()
            envelope.ParseFromString(data)
            put("checkpoint", "tiny_%s_body" % optimizer, envelope.body)  # the target wraps it
        put("checkpoint", "truncated", data[: len(data) // 2])


_protos = None


def generated_protos():
    global _protos
    if _protos is None:
        _protos = tempfile.mkdtemp()
        proto_dir = os.path.join(ROOT, "proto")
        files = [f for f in os.listdir(proto_dir) if f.endswith(".proto")]
        subprocess.run(["protoc", "-I", proto_dir, "--python_out", _protos] + files, check=True)
    return _protos


def rpc_seeds(convoy_ckpt):
    sys.path.insert(0, generated_protos())
    import coordinator_pb2 as pb

    import hashlib

    def call(method, message, credentials=0):
        payload = message if isinstance(message, bytes) else message.SerializeToString()
        return bytes([method + 11 * credentials]) + struct.pack("<H", len(payload)) + payload

    def frames(*chunks):
        return b"".join(struct.pack("<H", len(c)) + c for c in (x.SerializeToString() for x in chunks))

    register = [pb.RegisterRequest(job_id=b"j1", rank=r, world_size=2, host=b"h", pid=10 + r,
                                   command_line=[b"convoy", b"train"]) for r in (0, 1)]
    heartbeat = pb.HeartbeatRequest(job_id=b"j1", rank=0, step=3)
    batch = pb.MetricsBatch(job_id=b"j1", record=[
        pb.StepRecord(rank=0, step=s, epoch=0, loss=1.0 / s, accuracy=0.5, images_per_second=100,
                      learning_rate=0.1, total_steps=10) for s in range(1, 4)])
    evaluation = pb.EvaluationRecord(job_id=b"j1", step=3, epoch=0, test_loss=0.4,
                                     test_accuracy=0.8, precision=[0.5] * 10, recall=[0.5] * 10)
    restart = pb.RestartRecord(job_id=b"j1", restart=1, rank=1, host=b"h",
                               cause=b"killed by signal 9 (Killed)")
    put("coordinator_rpc", "worker_lifecycle",
        call(0, register[0]) + call(0, register[1]) + call(1, heartbeat) + call(2, batch)
        + call(3, evaluation) + call(5, restart) + call(6, pb.JobStatusRequest(job_id=b"j1"))
        + call(7, pb.MetricsQuery(job_id=b"j1", from_step=1, to_step=3, limit=2)))
    put("coordinator_rpc", "reader_of_seeded",
        call(6, pb.JobStatusRequest(job_id=b"seeded")) + call(7, pb.MetricsQuery(job_id=b"seeded"))
        + call(8, pb.WatchRequest(job_id=b"seeded")) + call(9, pb.ListCheckpointsRequest(job_id=b"seeded"))
        + call(10, pb.DownloadRequest(job_id=b"seeded", name=b"latest")))
    header = pb.CheckpointInfo(job_id=b"j2", size=len(convoy_ckpt),
                               sha256=hashlib.sha256(convoy_ckpt).hexdigest().encode(), epoch=0, step=2)
    half = len(convoy_ckpt) // 2
    put("coordinator_rpc", "upload",
        call(4, frames(pb.CheckpointChunk(header=header, data=convoy_ckpt[:half]),
                       pb.CheckpointChunk(data=convoy_ckpt[half:])))
        + call(9, pb.ListCheckpointsRequest(job_id=b"j2"))
        + call(10, pb.DownloadRequest(job_id=b"j2", name=b"latest")))
    put("coordinator_rpc", "upload_header_fixed_by_harness",
        call(4 + 33, frames(pb.CheckpointChunk(header=pb.CheckpointInfo(job_id=b"j4", name=b"n1"),
                                               data=convoy_ckpt)))
        + call(9, pb.ListCheckpointsRequest(job_id=b"j4")))
    put("coordinator_rpc", "upload_short",
        call(4, frames(pb.CheckpointChunk(header=header, data=convoy_ckpt[:half]))))
    put("coordinator_rpc", "no_token", call(6, pb.JobStatusRequest(job_id=b"seeded"), 1)
        + call(0, register[0], 1))
    put("coordinator_rpc", "wrong_token", call(10, pb.DownloadRequest(job_id=b"seeded"), 2))
    put("coordinator_rpc", "bad_names",
        call(0, pb.RegisterRequest(job_id=b"../x", rank=0, world_size=1))
        + call(0, pb.RegisterRequest(job_id=b"a/b", rank=0, world_size=1))
        + call(0, pb.RegisterRequest(job_id=b"a\0b", rank=0, world_size=1))
        + call(0, pb.RegisterRequest(job_id=b"x" * 300, rank=0, world_size=1))
        + call(0, pb.RegisterRequest(job_id=b"j3", rank=5, world_size=2))
        + call(10, pb.DownloadRequest(job_id=b"seeded", name=b"../../etc/passwd")))


def http_seeds():
    bearer = b"Authorization: Bearer " + TOKEN + b"\r\n"

    def get(path, headers=b""):
        return b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n"

    put("coordinator_http", "healthz", get(b"/healthz"))
    put("coordinator_http", "page_without_token", get(b"/", b"Accept: text/html\r\n"))
    put("coordinator_http", "page", get(b"/", bearer))
    put("coordinator_http", "static", get(b"/app.js", bearer) + get(b"/app.css", bearer))
    put("coordinator_http", "jobs", get(b"/api/jobs", bearer) + get(b"/api/jobs/seeded", bearer))
    put("coordinator_http", "download",
        get(b"/api/jobs/seeded/checkpoints/latest", bearer))
    put("coordinator_http", "metrics", get(b"/metrics", bearer))
    put("coordinator_http", "query", get(b"/api/jobs/seeded?since=5&x=%2e%2e%2f", bearer))
    put("coordinator_http", "escapes", get(b"/api/jobs/%2e%2e/checkpoints/..%2f..%2fetc", bearer))
    form = b"token=" + TOKEN
    put("coordinator_http", "signin",
        b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(form)).encode() + b"\r\n\r\n" + form)
    put("coordinator_http", "signout",
        b"POST /signout HTTP/1.1\r\nHost: x\r\nCookie: convoy_session=abc\r\nContent-Length: 0\r\n\r\n")
    put("coordinator_http", "chunked",
        b"POST /signin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ntoken\r\n0\r\n\r\n")
    put("coordinator_http", "head", b"HEAD /api/jobs HTTP/1.1\r\nHost: x\r\n" + bearer + b"\r\n")


def state_seeds():
    """The coordinator's state files: a manifest, record logs and the registrations log."""
    sys.path.insert(0, generated_protos())
    import coordinator_pb2 as pb

    def log(*messages):
        out = b""
        for m in messages:
            payload = m.SerializeToString()
            out += struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
        return out

    manifest = pb.CheckpointManifest()
    c = manifest.checkpoint.add()
    c.name, c.step, c.epoch, c.size = b"step-000000001", 1, 0, 100
    c.sha256 = b"0" * 64
    c = manifest.checkpoint.add()
    c.name, c.step = b"../escape", 2
    put("coordinator_state", "manifest", b"\x00" + str(manifest).encode())
    put("coordinator_state", "manifest_damaged", b"\x00checkpoint { name: \"step-")
    steps = []
    for s in range(1, 6):
        r = pb.StepRecord()
        r.step, r.rank, r.loss, r.accuracy = s, s % 2, 1.0 / s, 0.1 * s
        steps.append(r)
    put("coordinator_state", "steps", b"\x01" + log(*steps))
    put("coordinator_state", "steps_torn", b"\x01" + log(*steps)[:-7])
    e = pb.EvaluationRecord()
    e.step, e.test_accuracy, e.test_loss = 5, 0.5, 1.2
    e.precision.extend([0.5, 0.5])
    e.recall.extend([0.5, 0.5])
    e.confusion.extend([1, 2, 3, 4])
    put("coordinator_state", "evaluations", b"\x02" + log(e))
    events = []
    for rank in range(2):
        ev = pb.RegistryEvent()
        ev.registration.job_id, ev.registration.rank = b"job", rank
        ev.registration.world_size, ev.registration.host = 2, b"host"
        events.append(ev)
    ev = pb.RegistryEvent()
    ev.restart.job_id, ev.restart.restart, ev.restart.cause = b"job", 1, b"killed by signal 9"
    ev.restarts = 3
    events.append(ev)
    put("coordinator_state", "registrations", b"\x03" + log(*events))


def launcher_seeds():
    def piece(pipe, text):
        out = b""
        while text:
            part, text = text[:127], text[127:]
            out += bytes([len(part) << 1 | pipe]) + part
        return out

    put("mpirun_output", "tagged",
        piece(0, b"[1,0]<stdout>:epoch 1/5: loss 0.5\n[1,1]<stdout>:hello\n") +
        piece(1, b"[1,1]<stderr>:warning\n"))
    put("mpirun_output", "failure", piece(1, (
        b"--------------------------------------------------------------------------\n"
        b"mpirun noticed that process rank 1 with PID 0 on node b exited on signal 9 (Killed).\n"
        b"--------------------------------------------------------------------------\n")))
    put("mpirun_output", "exit_code", piece(1, (
        b"Primary job  terminated normally, but 1 process returned\n"
        b"a non-zero exit code. Per user-direction, the job has been aborted.\n"
        b"  Process name: [[1234,1],1]\n  Exit code:    3\n")))
    put("mpirun_output", "partial", piece(0, b"[1,0]<stdout>:abc") + piece(0, b"[1,0]<stdout>:def\n"))
    put("hostfile", "openmpi", b"\x00# hosts\nnode-a slots=4\nnode-b slots=2 max_slots=8\n\n")
    put("hostfile", "discovered", b"\x01node-a:4\nnode-b\n# comment\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py path/to/convoy")
    convoy = os.path.abspath(sys.argv[1])
    shutil.rmtree(CORPUS, ignore_errors=True)
    rng = np.random.default_rng(13)
    idx_seeds(rng)
    cifar10_seeds(rng)
    npy_seeds(rng)
    model_spec_seeds(convoy)
    checkpoint_seeds(convoy)
    rpc_seeds(open(os.path.join(CORPUS, "checkpoint", "tiny_sgd"), "rb").read())
    http_seeds()
    state_seeds()
    launcher_seeds()


if __name__ == "__main__":
    main()
