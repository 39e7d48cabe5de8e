"""A full disk: the broker refuses what it cannot write (KAFKA_STORAGE_ERROR) without damaging what it
acknowledged, takes writes again once space is back (no restart), and recovers every acknowledged record
after a kill -9 and after a clean restart. The data directory is a 64 MiB tmpfs mounted by the test (root
only; skipped with the reason otherwise).
"""

from __future__ import annotations

import os
import subprocess

import pytest

import wire
from conftest import Broker, _started
from helpers import admin, consume_all, create_topic, unique_topic, watermarks

pytestmark = pytest.mark.runnel_only

ERR_KAFKA_STORAGE = 56
VALUE = 1000


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data = tmp_path / "data"
    data.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(data)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield tmp_path
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def value(i: int) -> bytes:
    return f"{i:010d}".encode() + b"x" * (VALUE - 10)


def produce_batch(s, t, first: int, n: int, corr: int):
    batch = wire.record_batch([(f"k{first + j}".encode(), value(first + j)) for j in range(n)])
    return wire.produce(s, t, 0, batch, corr=corr)


def test_a_full_disk_loses_nothing_acknowledged_and_writes_resume(small_disk):
    b = Broker(small_disk, {"log.segment.bytes": 1 << 20})
    _started.append(b)
    try:
        b.start()
        t = unique_topic("full")
        create_topic(b.bootstrap, t, 1)
        acked: dict[int, int] = {}  # offset -> record number
        n = 0
        refusals = 0
        with wire.connect(b.bootstrap) as s:
            for corr in range(1, 200_000):
                res = produce_batch(s, t, n, 50, corr)
                if res[2] == wire.ERR_NONE:
                    for j in range(50):
                        acked[res[3] + j] = n + j
                    n += 50
                    continue
                assert res[2] == ERR_KAFKA_STORAGE, res
                refusals += 1
                if refusals == 3:
                    break
        assert refusals == 3 and len(acked) > 20_000, f"{len(acked)} acknowledged before the disk filled"
        assert b.alive()

        # Space comes back: DeleteRecords drops the older half, and writes resume without a restart.
        from confluent_kafka import TopicPartition
        cut = max(acked) // 2
        a = admin(b.bootstrap)  # kept: its futures only complete while the client lives
        futures = a.delete_records([TopicPartition(t, 0, cut)], request_timeout=15)
        for f in futures.values():
            f.result(30)
        low, _ = watermarks(b.bootstrap, t)
        assert low > 0, "DeleteRecords moved the log start"
        with wire.connect(b.bootstrap) as s:
            for k in range(2):
                res = produce_batch(s, t, n, 50, 9000 + k)
                assert res[2] == wire.ERR_NONE, f"writes resume once space is back: {res}"
                for j in range(50):
                    acked[res[3] + j] = n + j
                n += 50

        def check_all_readable():
            low, high = watermarks(b.bootstrap, t)
            want = sorted(o for o in acked if o >= low)
            assert high == max(acked) + 1, f"high watermark {high}, last acknowledged {max(acked)}"
            msgs = consume_all(b.bootstrap, t, 0, high - low, start=low, timeout=60)
            got = {m.offset(): m.value() for m in msgs}
            assert sorted(got) == list(range(low, high)), "offsets are contiguous"
            for o in want:
                assert got[o] == value(acked[o]), f"offset {o} reads back what was acknowledged"

        check_all_readable()
        b.kill9()
        b.start()
        check_all_readable()
        b.restart()
        with wire.connect(b.bootstrap) as s:
            res = produce_batch(s, t, n, 100, 99_999)
            assert res[2] == wire.ERR_NONE, res
            for j in range(100):
                acked[res[3] + j] = n + j
        check_all_readable()
    finally:
        if b.alive():
            b.stop()
        _started.remove(b)
