#!/usr/bin/python3
"""TensorBoard event files as an independent reader sees them.

A coordinator with --tensorboard-dir; a job reporting to it is SIGKILLed some steps after one of
its checkpoints and resumed. Then every record of the run's event file is checked on its own terms: the
TFRecord framing with CRC-32C from python3-crcmod, each Event decoded by Python's protobuf runtime
from TensorFlow's field numbers (declared here, not taken from convoy's .proto), TensorBoard's
rule for SessionLog.START applied (events of the earlier attempt at the restart step and after are
dropped), and the values compared with what the job itself reported: its final JSON line and the
coordinator's step records (`convoy monitor ... metrics`).

    tests/dist/tensorboard_events_test.py CONVOY_BINARY
"""
import csv
import glob
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

import crcmod.predefined
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

CONVOY = sys.argv[1]
crc32c = crcmod.predefined.mkCrcFun("crc-32c")


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def event_class():
    """tensorflow.Event with the fields TensorBoard reads for scalars and restarts."""
    f = descriptor_pb2.FileDescriptorProto(name="tb_event.proto", package="tbcheck", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto
    value = f.message_type.add(name="Value")
    value.field.add(name="tag", number=1, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=T.TYPE_FLOAT, label=T.LABEL_OPTIONAL)
    summary = f.message_type.add(name="Summary")
    summary.field.add(name="value", number=1, type=T.TYPE_MESSAGE, type_name=".tbcheck.Value",
                      label=T.LABEL_REPEATED)
    session = f.message_type.add(name="SessionLog")
    session.field.add(name="status", number=1, type=T.TYPE_INT32, label=T.LABEL_OPTIONAL)  # START = 1
    event = f.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=T.TYPE_DOUBLE, label=T.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=T.TYPE_INT64, label=T.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    event.field.add(name="summary", number=5, type=T.TYPE_MESSAGE, type_name=".tbcheck.Summary",
                    label=T.LABEL_OPTIONAL)
    event.field.add(name="session_log", number=7, type=T.TYPE_MESSAGE,
                    type_name=".tbcheck.SessionLog", label=T.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("tbcheck.Event"))


Event = event_class()


def read_events(path, growing=False):
    """Every record of the file, checked: length, both CRCs, nothing left over (but for a file
    still `growing`, whose last record may be partly written: it is left for later)."""
    data = open(path, "rb").read()
    events, at = [], 0
    while at < len(data):
        if growing and (len(data) - at < 12 or len(data) - at < 16 + struct.unpack("<Q", data[at:at + 8])[0]):
            break
        assert len(data) - at >= 12, f"{path}: a truncated record header at byte {at}"
        header = data[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert length_crc == masked(header), f"{path}: length CRC wrong at byte {at}"
        body = data[at + 12:at + 12 + length]
        assert len(body) == length, f"{path}: a truncated record at byte {at}"
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        assert body_crc == masked(body), f"{path}: data CRC wrong at byte {at}"
        e = Event()
        e.ParseFromString(body)
        events.append(e)
        at += 16 + length
    return events


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tb_dir = os.path.join(tmp, "tb")
        coordinator = subprocess.Popen(
            [CONVOY, "coordinator", "--listen", "127.0.0.1:0",
             "--state-dir", os.path.join(tmp, "state"), "--tensorboard-dir", tb_dir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        job = None
        try:
            # Port 0: the coordinator says which port it got.
            first = coordinator.stdout.readline()
            listening = re.search(r"listening on port (\d+)", first)
            assert listening, f"the coordinator's first line: {first!r}"
            address = f"127.0.0.1:{listening.group(1)}"
            # 400 steps, a checkpoint every 50: step records reach the coordinator in batches up to
            # 50 ms old while a checkpoint is stored at once, so the checkpoints must lie much
            # further apart than 50 ms of steps for the reported steps to pass the newest one, and
            # on a fast CPU lenet5 takes a step in 2 ms.
            train = [CONVOY, "train", "--model", "lenet5", "--epochs", "2", "--limit-train", "12800",
                     "--limit-test", "500", "--threads", "1", "--coordinator", address, "--job-id",
                     "tb", "--checkpoint-every", "50", "--progress", "none", "--log-json"]
            # The first attempt: frozen (SIGSTOP) once a checkpoint is stored; when the events it
            # reported (flushed within a second) went past the newest checkpoint, it is killed, so
            # that the resumed run repeats steps; otherwise it goes on a little and is tried again.
            job = subprocess.Popen(train, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            killed_at = checkpoint_step = None
            for _ in range(400):
                assert job.poll() is None, "the first attempt ended before it was caught past a checkpoint"
                time.sleep(0.05)
                job.send_signal(signal.SIGSTOP)
                time.sleep(1.2)
                files = glob.glob(os.path.join(tb_dir, "tb", "events.out.tfevents.*"))
                listing = subprocess.run([CONVOY, "monitor", address, "--job", "tb", "checkpoints"],
                                         capture_output=True, text=True).stdout
                stored = [int(w[len("step-"):]) for w in listing.split() if w.startswith("step-")]
                steps = [e.step for e in read_events(files[0], growing=True)
                         if e.HasField("summary")] if files else []
                if stored and steps and max(steps) > max(stored):
                    killed_at, checkpoint_step = max(steps), max(stored)
                    break
                job.send_signal(signal.SIGCONT)
            assert killed_at is not None, "never caught the first attempt past its newest checkpoint"
            job.send_signal(signal.SIGKILL)
            job.wait()
            # TensorBoard reads what was flushed: the coordinator flushes about once a second.
            time.sleep(1.5)
            resumed = subprocess.run(train + ["--resume"], capture_output=True, text=True, timeout=600)
            assert resumed.returncode == 0, resumed.stderr
            final = json.loads(resumed.stdout.strip().splitlines()[-1])
            metrics_csv = os.path.join(tmp, "m.csv")
            subprocess.run([CONVOY, "monitor", address, "--job", "tb", "metrics", "--out", metrics_csv],
                           check=True)
            time.sleep(1.5)
        finally:
            if job is not None and job.poll() is None:
                job.kill()
            coordinator.send_signal(signal.SIGTERM)
            coordinator.wait(timeout=30)

        files = sorted(glob.glob(os.path.join(tb_dir, "tb", "events.out.tfevents.*")))
        assert len(files) == 1, files
        events = read_events(files[0])
        assert events[0].file_version == "brain.Event:2", events[0]
        starts = [e.step for e in events if e.HasField("session_log") and e.session_log.status == 1]
        assert len(starts) == 2 and starts[0] == 1, starts
        restart = starts[1]
        # The first attempt's events: up to the second START.
        second = next(i for i, e in enumerate(events) if e.HasField("session_log") and e.step == restart)
        first_max = max(e.step for e in events[:second] if e.HasField("summary"))
        # Resumed after the newest stored checkpoint, which the first attempt had gone past: steps
        # that TensorBoard must drop.
        assert restart == checkpoint_step + 1, (restart, checkpoint_step)
        assert first_max == killed_at and first_max >= restart, (first_max, killed_at, restart)

        # TensorBoard's purge: a START at step s drops what came before it at steps >= s.
        kept = []
        for e in events:
            if e.HasField("session_log") and e.session_log.status == 1:
                kept = [k for k in kept if k.step < e.step]
            elif e.HasField("summary"):
                kept.append(e)
        scalars = {}
        for e in kept:
            for v in e.summary.value:
                scalars.setdefault(v.tag, []).append((e.step, v.simple_value))
        steps = final["steps"]
        loss_steps = [s for s, _ in scalars["train/loss"]]
        assert loss_steps == list(range(1, steps + 1)), f"train/loss steps: {loss_steps[:5]}...{loss_steps[-5:]}"

        # Values: the coordinator's records of rank 0 (both attempts, bitwise equal steps).
        recorded = {}
        with open(metrics_csv) as f:
            for row in csv.DictReader(f):
                if row["rank"] == "0":
                    recorded.setdefault(int(row["step"]), set()).add(
                        (float(row["loss"]), float(row["learning_rate"])))
        for tag, column in (("train/loss", 0), ("train/learning_rate", 1)):
            for step, value in scalars[tag]:
                (expected,) = {struct.unpack("f", struct.pack("f", r[column]))[0] for r in recorded[step]}
                assert value == expected, (tag, step, value, expected)
        assert len(scalars["test/accuracy"]) == 2, scalars["test/accuracy"]
        assert abs(scalars["test/accuracy"][-1][1] - final["test_accuracy"]) < 1e-6
        assert scalars["test/accuracy"][-1][0] == steps
        for c in range(10):
            assert len(scalars[f"test/precision/{c}"]) == 2 and len(scalars[f"test/recall/{c}"]) == 2
        assert all(v > 0 for _, v in scalars["train/images_per_second"])
        print(f"ok: {len(events)} events, restart at step {restart} (the first attempt reached {first_max}), "
              f"{steps} steps after TensorBoard's purge, test accuracy {final['test_accuracy']}")


if __name__ == "__main__":
    main()
