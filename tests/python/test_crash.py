"""Durability across kill -9: the Java CrashProducer (acks=all, idempotent) streams numbered records, the broker
(log.flush.interval.messages=1) is SIGKILLed once hundreds are acknowledged, restarted on the same data dir,
and everything acknowledged must be there exactly once at its acknowledged offset, with contiguous offsets and
no offset reused by later produces."""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest
from confluent_kafka import Producer

from helpers import consume_all, create_topic, java_command, wait_until, watermarks

pytestmark = pytest.mark.java

PARTITIONS = 2


class JavaProducer:
    """CrashProducer in the background; .acks collects (partition, offset, value) as they are printed."""

    def __init__(self, bootstrap, topic, log_path):
        self.acks: list[tuple[int, int, str]] = []
        self.other: list[str] = []
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(java_command("CrashProducer", bootstrap, topic, "2000000", "240"),
                                     stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            parts = line.split()
            if len(parts) == 4 and parts[0] == "ACK":
                self.acks.append((int(parts[1]), int(parts[2]), parts[3]))
            elif line:
                self.other.append(line)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self.reader.join(30)  # EOF once the process is gone: every printed ack is in .acks
        self.log.close()


def read_partition(bootstrap, topic, p):
    lo, hi = watermarks(bootstrap, topic, p)
    assert lo == 0, f"partition {p}: log start moved to {lo}"
    msgs = consume_all(bootstrap, topic, p, hi, timeout=60) if hi else []
    return hi, [(m.offset(), m.value().decode()) for m in msgs]


def test_kill9_keeps_every_acknowledged_record(start_broker, topic, tmp_path):
    b = start_broker({"log.flush.interval.messages": 1})
    create_topic(b.bootstrap, topic, PARTITIONS)
    jp = JavaProducer(b.bootstrap, topic, tmp_path / "crash-producer.stderr")
    try:
        def enough():
            per_part = [sum(1 for a in jp.acks if a[0] == p) for p in range(PARTITIONS)]
            return min(per_part) >= 250 or jp.proc.poll() is not None
        wait_until(enough, 120, "250 acknowledged records on each partition from CrashProducer")
        assert jp.proc.poll() is None, f"CrashProducer exited early: {jp.other[-5:]}\n" \
                                       f"{(tmp_path / 'crash-producer.stderr').read_text()[-3000:]}"
        b.kill9()
    finally:
        jp.kill()
    acked = list(jp.acks)
    assert len(acked) >= 500
    b.restart()  # same data dir; the port may change

    # every acknowledged record exactly once, at its acknowledged offset; offsets contiguous
    seen_values: dict[str, tuple[int, int]] = {}
    logs = {}
    for p in range(PARTITIONS):
        hi, recs = read_partition(b.bootstrap, topic, p)
        assert [o for o, _ in recs] == list(range(hi)), f"partition {p}: offsets not contiguous"
        logs[p] = dict(recs)
        for o, v in recs:
            assert v not in seen_values, f"{v} stored twice: at {seen_values[v]} and at {(p, o)}"
            seen_values[v] = (p, o)
    print(f"{len(acked)} acknowledged before the kill; log ends after restart: "
          f"{ {p: len(logs[p]) for p in logs} }")
    lost = [(p, o, v) for p, o, v in acked if logs.get(p, {}).get(o) != v]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged records missing or moved, e.g. " \
                     f"{[(p, o, v, logs.get(p, {}).get(o)) for p, o, v in lost[:5]]}"

    # new produces continue after the last offset: nothing is reused
    ends = {p: len(logs[p]) for p in range(PARTITIONS)}
    prod = Producer({"bootstrap.servers": b.bootstrap, "acks": "all"})
    got = {}
    for p in range(PARTITIONS):
        prod.produce(topic, value=f"after-restart-{p}".encode(), partition=p,
                     on_delivery=lambda err, m: got.__setitem__(m.partition(), (err, m.offset())))
    assert prod.flush(30) == 0
    for p in range(PARTITIONS):
        err, off = got[p]
        assert err is None, err
        assert off == ends[p], f"partition {p}: new record at offset {off}, log ended at {ends[p]}"

    del prod  # it would keep reconnecting to the old port
    # and a clean restart keeps it all, old and new
    b.restart()
    for p in range(PARTITIONS):
        hi, recs = read_partition(b.bootstrap, topic, p)
        assert hi == ends[p] + 1
        assert dict(recs[:-1]) == logs[p] and recs[-1] == (ends[p], f"after-restart-{p}")
