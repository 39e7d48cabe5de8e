"""Kafka Streams 4.3.1 with processing.guarantee=exactly_once_v2 (tests/streams/src/WordCount.java) against the
broker: a word count whose JVM is killed (kill -9) mid-stream and started again with the same application.id and
state dir. Its output, read with read_committed, must hold for every word exactly the counts 1, 2, ..., n in
order (the record cache is off, so each input word yields one output record): a lost or duplicated update, or a
zombie's uncommitted output, would show."""

from __future__ import annotations

import random
import struct
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer

from helpers import create_topic, unique_topic, wait_until
from txn_helpers import Background, hw, list_offsets, streams_command

pytestmark = pytest.mark.java

PARTITIONS = 3
LINES = 3000
FIRST = 1000  # produced before the first instance starts; the rest while it runs, is killed and restarted
VOCABULARY = [f"w{i:02d}" for i in range(60)]


def make_lines(n):
    rnd = random.Random(20240601)
    return [" ".join(rnd.choice(VOCABULARY) for _ in range(rnd.randint(1, 8))) for _ in range(n)]


def produce_lines(bootstrap, topic, lines, pace_s=0.0, chunk=50, progress=None):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(0, len(lines), chunk):
        for line in lines[i:i + chunk]:
            p.produce(topic, value=line.encode())
        p.poll(0)
        if progress is not None:
            progress.append(min(i + chunk, len(lines)))
        if pace_s:
            time.sleep(pace_s)  # pacing only: spreads the input over the kill and restart
    assert p.flush(60) == 0


def output_sequences(bootstrap, topic):
    """read_committed output as {word: [count, count, ...]} in offset order."""
    recs = read_all_kv(bootstrap, topic)
    seqs: dict[str, list[int]] = {}
    for k, v in recs:
        seqs.setdefault(k, []).append(struct.unpack(">q", v)[0])
    return seqs


def read_all_kv(bootstrap, topic, isolation="read_committed", timeout=60.0):
    """Keys and raw values of every partition up to the end for the isolation level, in offset order per
    partition."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    ends = list_offsets(bootstrap, topic, PARTITIONS, committed=(isolation == "read_committed"))
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "runnel-txn-reader", "enable.auto.commit": False,
                  "auto.offset.reset": "error", "isolation.level": isolation, "enable.partition.eof": True})
    out = {p: [] for p in range(PARTITIONS)}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        pending = {p for p in range(PARTITIONS) if ends[p] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            assert time.monotonic() < deadline, f"{isolation} read of {topic} did not reach {ends}"
            for m in c.consume(500, 0.2):
                if m.error():
                    if m.error().code() == -191 and m.offset() >= ends[m.partition()]:
                        pending.discard(m.partition())
                    elif m.error().code() != -191:
                        raise AssertionError(f"consumer error: {m.error()}")
                    continue
                out[m.partition()].append((m.key().decode(), m.value()))
                if m.offset() + 1 >= ends[m.partition()]:
                    pending.discard(m.partition())
    finally:
        c.close()
    return [kv for p in range(PARTITIONS) for kv in out[p]]


def test_streams_word_count_exactly_once_across_kill9(start_broker, tmp_path):
    b = start_broker({"group.initial.rebalance.delay.ms": 0,
                      "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500})
    boot = b.bootstrap
    app, src, dst = unique_topic("wordcount"), unique_topic("wc-lines"), unique_topic("wc-counts")
    create_topic(boot, src, PARTITIONS)
    create_topic(boot, dst, PARTITIONS)
    lines = make_lines(LINES)
    expected = Counter(w for line in lines for w in line.split())
    total = sum(expected.values())
    state = tmp_path / "state"

    produce_lines(boot, src, lines[:FIRST])
    first = Background(streams_command(boot, app, src, dst, str(state)), tmp_path / "streams-1.stderr")
    second = None
    try:
        first.wait_line(lambda l: l == "STATE RUNNING", 120, "the first Streams instance to run")
        # some output is out (committed or not): the instance is processing
        wait_until(lambda: sum(hw(boot, dst, PARTITIONS).values()) >= 500, 60, "output from the first instance",
                   interval=0.1)
        errors: list[BaseException] = []
        progress: list[int] = []

        def rest():
            try:
                produce_lines(boot, src, lines[FIRST:], pace_s=0.1, progress=progress)
            except BaseException as e:  # noqa: BLE001 - reported by the test
                errors.append(e)

        feeder = threading.Thread(target=rest, daemon=True)
        feeder.start()
        # kill while input is flowing (the rest takes about 4 s) and the instance has a transaction open
        wait_until(lambda: progress and progress[-1] >= 300, 60, "more input", interval=0.01)
        assert not [l for l in first.lines if l.startswith("UNCAUGHT")], first.describe()
        first.kill9()
        assert feeder.is_alive(), "input finished before the kill: not mid-stream"

        second = Background(streams_command(boot, app, src, dst, str(state)), tmp_path / "streams-2.stderr")
        second.wait_line(lambda l: l == "STATE RUNNING", 120, "the restarted Streams instance to run")
        feeder.join(120)
        assert not feeder.is_alive() and not errors, errors

        # until the committed output holds as many records as input words (one update per word), or has more,
        # then check it; bounded by a deadline
        deadline = time.monotonic() + 120
        while True:
            assert not [l for l in second.lines if l.startswith("UNCAUGHT")], second.describe()
            if sum(list_offsets(boot, dst, PARTITIONS, committed=True).values()) >= total:
                seqs = output_sequences(boot, dst)
                if sum(len(s) for s in seqs.values()) >= total:
                    break
            assert time.monotonic() < deadline, \
                f"read_committed output did not reach {total} records in 120 s\n{second.describe()}"
            time.sleep(0.5)  # polling interval
        assert {w: s[-1] for w, s in seqs.items()} == dict(expected), "final counts differ from the input's"
        bad = {w: s for w, s in seqs.items() if s != list(range(1, expected[w] + 1))}
        assert not bad, "words whose committed counts are not exactly 1..n: " + \
            "; ".join(f"{w}: {len(s)} updates, expected {expected[w]}, first wrong at index "
                      f"{next(i for i, (x, y) in enumerate(zip(s + [None], range(1, expected[w] + 2))) if x != y)}"
                      for w, s in list(bad.items())[:5])
        assert sum(len(s) for s in seqs.values()) == total

        second.close_stdin()
        assert second.wait(60) == 0, second.describe()
        assert "CLOSED" in second.lines
    finally:
        first.kill9()
        if second is not None:
            second.kill9()


DEAD_MEMBER = r"""
import sys
from confluent_kafka import Consumer
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 500, "max.poll.interval.ms": 60000})
c.subscribe([sys.argv[3]], on_assign=lambda c, ps: print("ASSIGNED", flush=True))
for _ in range(6000):
    c.poll(0.1)
"""


def test_restarted_member_joins_when_dead_members_session_expires(start_broker, topic):
    """What a Streams restart after kill -9 relies on: the new member's JoinGroup completes once the killed
    member's session (6 s) expires, not after the rebalance timeout (max.poll.interval.ms, here 60 s; Streams'
    default is 300 s). Kafka assigns the new member about 6 s after it joins."""
    b = start_broker({"group.initial.rebalance.delay.ms": 0})
    create_topic(b.bootstrap, topic, 1)
    group = unique_topic("restart-group")
    dead = subprocess.Popen([sys.executable, "-c", DEAD_MEMBER, b.bootstrap, group, topic],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert dead.stdout.readline().strip() == b"ASSIGNED"
    finally:
        dead.kill()
        dead.wait(30)
    joined = time.monotonic()
    assigned = []
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group, "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500, "max.poll.interval.ms": 60000})
    try:
        c.subscribe([topic], on_assign=lambda c, ps: assigned.append(time.monotonic() - joined))
        wait_until(lambda: c.poll(0.1) is None and assigned, 20,
                   "the new member's assignment within 20 s (the dead member's session is 6 s)", interval=0)
    finally:
        c.close()
    assert 5.0 <= assigned[0] <= 20.0, assigned
