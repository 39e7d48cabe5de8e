"""Helpers for the processor's end-to-end tests: input generation, running `runnel jobs run`, waiting for a
job to catch up, and reading a job's output as committed (read_committed)."""

from __future__ import annotations

import json
import random
import re
import socket
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

from contextlib import contextmanager

from conftest import KAFKA_REF, RUNNEL_BIN, Broker, _started
from helpers import admin, wait_until

VOCAB = [f"w{i}" for i in range(150)]
TAGS = [f"#tag{i}" for i in range(40)]


def tweet(i: int) -> bytes:
    """A deterministic JSON tweet: a user, some words and one or two hashtags."""
    r = random.Random(i)
    words = [r.choice(VOCAB) for _ in range(4)] + [r.choice(TAGS) for _ in range(r.randint(1, 2))]
    r.shuffle(words)
    return json.dumps({"user": f"u{i % 37}", "text": " ".join(words)}).encode()


def expected_word_counts(values: list[bytes]) -> dict[str, int]:
    c: Counter = Counter()
    for v in values:
        c.update(v.decode().split())
    return dict(c)


class Feeder:
    """Produces records 0..n-1 (value = make(i), partition i % partitions) in a background thread at about
    `rate` records per second, so input keeps flowing while jobs are killed."""

    def __init__(self, bootstrap: str, topic: str, n: int, partitions: int, rate: float, make=tweet):
        self.bootstrap, self.topic, self.n, self.partitions, self.rate, self.make = \
            bootstrap, topic, n, partitions, rate, make
        self.values = [make(i) for i in range(n)]
        self.sent = 0
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def produce(self, upto: int):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "enable.idempotence": True})
        while self.sent < upto:
            p.produce(self.topic, self.values[self.sent], partition=self.sent % self.partitions)
            self.sent += 1
            if self.sent % 1000 == 0:
                p.poll(0)
        assert p.flush(30) == 0, "feeder could not deliver its records"

    def _run(self):
        try:
            from confluent_kafka import Producer
            p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5, "enable.idempotence": True})
            start, base = time.monotonic(), self.sent
            while self.sent < self.n:
                due = base + int((time.monotonic() - start) * self.rate)
                while self.sent < min(due, self.n):
                    p.produce(self.topic, self.values[self.sent], partition=self.sent % self.partitions)
                    self.sent += 1
                p.poll(0)
                time.sleep(0.01)
            assert p.flush(60) == 0, "feeder could not deliver its records"
        except Exception as e:  # noqa: BLE001 - reported by join()
            self.error = e

    def start(self):
        self.thread.start()
        return self

    def join(self, timeout=120):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "feeder did not finish"
        if self.error:
            raise self.error


class JobProcess:
    """`runnel jobs run` as a process that can be killed with SIGKILL and started again."""

    def __init__(self, workdir: Path, bootstrap: str, job: str, input_topic: str, output_topic: str, *extra: str):
        self.workdir = Path(workdir)
        self.bootstrap, self.job = bootstrap, job
        self.args = ["--input", input_topic, "--output", output_topic, *extra]
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / f"job-{job}-{id(self)}.log"
        self.starts = 0

    def start(self, *more: str) -> "JobProcess":
        self.starts += 1
        cmd = [str(RUNNEL_BIN), "jobs", "run", self.job, "--bootstrap", self.bootstrap, *self.args, *more]
        with open(self.log, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env={"RUST_LOG": "warn,runnel_processor=info", "PATH": "/usr/bin:/bin"})
        return self

    def check_running(self, what: str = "the job"):
        """Fails the test at once if the process exited: pytest.fail, which wait_until does not retry."""
        import pytest
        if not self.proc or self.proc.poll() is not None:
            pytest.fail(f"{what} exited:\n{self.tail()}")

    def kill9(self):
        assert self.proc and self.proc.poll() is None, f"job died on its own:\n{self.tail()}"
        self.proc.kill()
        self.proc.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.proc
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self, lines=40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no job log)"


class KafkaBroker(Broker):
    """Apache Kafka through scripts/kafka-ref, whatever RUNNEL_TEST_TARGET says."""

    def start(self, port: int = 0) -> "Broker":
        import conftest
        old, conftest.START_TIMEOUT = conftest.START_TIMEOUT, 90.0  # a JVM starts slower than runnel
        try:
            return super().start(port)
        finally:
            conftest.START_TIMEOUT = old

    def _command(self, port: int) -> list[str]:
        sets: list[str] = []
        for k, v in self.sets.items():
            sets += ["--set", f"{k}={v}"]
        return [str(KAFKA_REF), "--port", str(port), "--data-dir", str(self.data_dir), *sets]


class HostingBroker(Broker):
    """A Runnel broker hosting jobs co-located (`serve --job ...`)."""

    def __init__(self, workdir: Path, sets: dict | None, jobs: list[str]):
        super().__init__(workdir, sets)
        self.jobs = jobs

    def _command(self, port: int) -> list[str]:
        extra: list[str] = []
        for j in self.jobs:
            extra += ["--job", j]
        # as conftest's Broker: a `listeners` set replaces --listen
        listen = [] if "listeners" in self.sets else ["--listen", f"127.0.0.1:{port}"]
        return [str(RUNNEL_BIN), "serve", *listen, "--data-dir", str(self.data_dir),
                *[a for k, v in self.sets.items() for a in ("--set", f"{k}={v}")], *extra]


@contextmanager
def own_broker(broker: Broker):
    """Starts a broker of the test's own and stops it at the end (listed for failure reports meanwhile)."""
    _started.append(broker)
    try:
        broker.start()
        yield broker
    finally:
        if broker.alive():
            broker.stop()
        _started.remove(broker)


def free_port() -> int:
    """A loopback port free right now (for listeners a test must know in advance, like --metrics-listen)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)$')


def scrape(port: int) -> dict[str, float]:
    """GET /metrics: name{labels} → value; fails on a line that is not valid exposition text or a family
    described twice."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    samples, described = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in described, f"family {name} described twice"
            described.add(name)
            continue
        if line.startswith("# TYPE ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        assert m.group(1) in described, f"sample of an undescribed family: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def group_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    from confluent_kafka import ConsumerGroupTopicPartitions
    a = admin(bootstrap)  # kept referenced: a collected client never completes its futures
    fut = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], require_stable=False)
    res = fut[group].result(10)
    return {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions}


def end_offsets(bootstrap: str, topics: list[str], partitions: int) -> dict[tuple[str, int], int]:
    """The last stable offsets (read_committed ListOffsets) of every partition of `topics`."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "runnel-ends", "isolation.level": "read_committed"})
    try:
        out = {}
        for t in topics:
            for p in range(partitions):
                out[(t, p)] = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
        return out
    finally:
        c.close()


def wait_caught_up(bootstrap: str, group: str, topics: list[str], partitions: int, timeout: float, alive=None):
    """Until the job's group has committed the end of every partition of its source topics, twice in a row
    a second apart (a later stage may still have records its earlier stage just wrote)."""
    def caught_up():
        if alive is not None:
            alive()
        ends = end_offsets(bootstrap, topics, partitions)
        committed = group_offsets(bootstrap, group)
        return all(committed.get(tp, -1) >= e for tp, e in ends.items())

    def twice():
        if not caught_up():
            return False
        time.sleep(1.0)
        return caught_up()

    wait_until(twice, timeout, f"job {group} to commit the end of {topics}", interval=0.5)
    # Windows go on sliding in idle batches until they are empty: give them time to (30 batches).
    time.sleep(3.0)


def read_raw(bootstrap: str, topic: str, partitions: int) -> dict[int, list]:
    """Every committed record of every partition, in order, as (key, value, headers) bytes."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    ends = end_offsets(bootstrap, [topic], partitions)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "runnel-read-output", "enable.auto.commit": False,
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    out: dict[int, list] = {p: [] for p in range(partitions)}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        done = {p for p in range(partitions) if ends[(topic, p)] == 0}
        deadline = time.monotonic() + 60
        while len(done) < partitions:
            assert time.monotonic() < deadline, f"reading {topic} did not reach {ends}"
            m = c.poll(0.5)
            if m is None:
                # Past the last record, only markers remain: the position tells.
                for tp in c.position([TopicPartition(topic, p) for p in range(partitions)]):
                    if tp.offset >= ends[(topic, tp.partition)]:
                        done.add(tp.partition)
                continue
            assert not m.error(), m.error()
            out[m.partition()].append((m.key(), m.value(), list(m.headers() or [])))
            if m.offset() + 1 >= ends[(topic, m.partition())]:
                done.add(m.partition())
    finally:
        c.close()
    return out


def read_output(bootstrap: str, topic: str, partitions: int) -> dict[int, list[tuple[str, str]]]:
    """Every committed record of every partition, in order, as (key, value) text."""
    return {p: [((k or b"").decode(), (v or b"").decode()) for k, v, _ in recs]
            for p, recs in read_raw(bootstrap, topic, partitions).items()}


def last_values(out: dict[int, list[tuple[str, str]]]) -> dict[str, str]:
    last = {}
    for recs in out.values():
        for k, v in recs:
            last[k] = v
    return last


def assert_totals_only_grow(out: dict[int, list[tuple[str, str]]]):
    """WordCount emits each word's running total: a batch applied twice or lost would break the sequence."""
    for recs in out.values():
        seen: dict[str, int] = {}
        for k, v in recs:
            n = int(v)
            assert n > seen.get(k, 0), f"total of {k!r} went from {seen.get(k)} to {n}"
            seen[k] = n


def assert_word_counts_exact(bootstrap: str, topic: str, partitions: int, values: list[bytes]):
    """WordCount's whole output: every running total only grows, and each word's last total is its count in
    `values` (a batch applied twice or lost would show in one or the other)."""
    got = read_output(bootstrap, topic, partitions)
    assert_totals_only_grow(got)
    totals = {k: int(v) for k, v in last_values(got).items()}
    assert totals == expected_word_counts(values), "final counts differ from a count of the input"
