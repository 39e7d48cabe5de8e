"""Consumer groups with librdkafka (confluent-kafka) and kafka-python: subscribe, consume, commit, close, and a
new member of the group resuming at the committed offsets; two librdkafka members sharing a topic; a mixed
group of a Java member and a librdkafka member sharing the partitions of one topic.

Every expectation was checked against Apache Kafka (RUNNEL_TEST_TARGET=kafka)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError

from group_helpers import JavaMembers, committed, end_offsets, module_broker, produce, wait_checked
from helpers import create_topic, unique_topic, wait_until

PARTS = 6


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory):
    yield from module_broker(tmp_path_factory)


def group_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class RdMember:
    """A confluent-kafka consumer subscribed to one topic, polled by its own thread (callbacks run there). Commits
    synchronously after each record. .assignments: [(time, frozenset)] after each rebalance; .records:
    [(partition, offset, value, assignment at that time)]."""

    def __init__(self, bootstrap, topic, group, name, **conf):
        self.name = name
        self.conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 300, "partition.assignment.strategy": "range",
                     "topic.metadata.refresh.interval.ms": 5000, "fetch.wait.max.ms": 100, **conf}
        self.topic = topic
        # librdkafka's cooperative callbacks carry only what is added / revoked
        self.cooperative = "cooperative" in self.conf["partition.assignment.strategy"]
        self.assignment: frozenset = frozenset()
        self.assignments: list = []
        self.records: list = []
        self.errors: list = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_assign(self, consumer, parts):
        got = frozenset(tp.partition for tp in parts)
        with self.lock:
            # cooperative: the callbacks carry only what is added / revoked
            self.assignment = self.assignment | got if self.cooperative else got
            self.assignments.append((time.monotonic(), self.assignment))

    def _on_revoke(self, consumer, parts):
        gone = frozenset(tp.partition for tp in parts)
        with self.lock:
            self.assignment = self.assignment - gone if self.cooperative else frozenset()

    def _run(self):
        c = Consumer(self.conf)
        try:
            c.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                        on_lost=self._on_revoke)
            while not self._stop.is_set():
                m = c.poll(0.1)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        self.errors.append(m.error())
                    continue
                with self.lock:
                    self.records.append((m.partition(), m.offset(), m.value().decode(), self.assignment))
                c.commit(message=m, asynchronous=False)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(e)
        finally:
            c.close()
            self.closed.set()

    def latest(self):
        with self.lock:
            return self.assignment, len(self.assignments)

    def close(self, timeout=30.0):
        self._stop.set()
        assert self.closed.wait(timeout), f"{self.name} did not close within {timeout}s"
        self.thread.join(5)

    def seen(self):
        with self.lock:
            return {(p, o): v for p, o, v, _ in self.records}

    def check(self):
        assert not self.errors, f"{self.name}: {self.errors[:3]}"
        assert not self.closed.is_set() or self._stop.is_set(), f"{self.name} stopped polling"


def wait_rd_consumed(members, produced: dict, timeout=60.0):
    def cond():
        seen = {}
        for m in members:
            seen.update(m.seen())
        for k, v in seen.items():
            assert produced.get(k, v) == v, f"read {v!r} at {k}, produced {produced[k]!r}"
        return set(produced) <= set(seen)
    wait_checked(cond, lambda: [m.check() for m in members], timeout, f"{len(produced)} records consumed")


def test_librdkafka_commit_close_and_resume(gbroker):
    topic, group = unique_topic("rd-resume"), group_name("rd-resume")
    create_topic(gbroker.bootstrap, topic, 3)
    first = produce(gbroker.bootstrap, topic, 3, 10, "a")
    m1 = RdMember(gbroker.bootstrap, topic, group, "rd1")
    wait_rd_consumed([m1], first)
    m1.close()
    assert committed(gbroker.bootstrap, group, topic, 3) == {0: 10, 1: 10, 2: 10}
    second = produce(gbroker.bootstrap, topic, 3, 10, "b")
    m2 = RdMember(gbroker.bootstrap, topic, group, "rd2")
    try:
        wait_rd_consumed([m2], second)
        got = m2.seen()
        assert sorted(got) == sorted(second), f"the resumed member re-read or skipped records: " \
                                              f"{sorted(set(got) ^ set(second))[:10]}"
    finally:
        m2.close()
    assert committed(gbroker.bootstrap, group, topic, 3) == {0: 20, 1: 20, 2: 20}


def test_librdkafka_members_share_partitions(gbroker):
    """Two librdkafka members (cooperative-sticky): disjoint assignments covering the topic, every record read;
    when one closes, the other takes over everything."""
    topic, group = unique_topic("rd-share"), group_name("rd-share")
    create_topic(gbroker.bootstrap, topic, PARTS)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    m1 = RdMember(gbroker.bootstrap, topic, group, "rd1", **conf)
    m2 = None
    try:
        wait_until(lambda: m1.latest()[0] == frozenset(range(PARTS)), 30, "rd1 owns every partition")
        m2 = RdMember(gbroker.bootstrap, topic, group, "rd2", **conf)

        def split():
            a, b = m1.latest()[0], m2.latest()[0]
            return a and b and not (a & b) and a | b == frozenset(range(PARTS))
        wait_until(split, 40, "rd1 and rd2 sharing the partitions")
        batch = produce(gbroker.bootstrap, topic, PARTS, 5, "x")
        wait_rd_consumed([m1, m2], batch)
        a, b = m1.latest()[0], m2.latest()[0]
        for m, own in ((m1, a), (m2, b)):
            for p, o, v, assigned in m.records:
                assert p in assigned, f"{m.name} read {p}@{o} while assigned {sorted(assigned)}"
        m2.close()
        m2 = None
        wait_until(lambda: m1.latest()[0] == frozenset(range(PARTS)), 30, "rd1 owns every partition again")
        more = produce(gbroker.bootstrap, topic, PARTS, 5, "y")
        wait_rd_consumed([m1], more)
    finally:
        m1.close()
        if m2:
            m2.close()
    assert committed(gbroker.bootstrap, group, topic, PARTS) == end_offsets(gbroker.bootstrap, topic, PARTS)


def test_kafka_python_commit_close_and_resume(gbroker):
    from kafka import KafkaConsumer
    topic, group = unique_topic("kp-resume"), group_name("kp-resume")
    create_topic(gbroker.bootstrap, topic, 3)
    first = produce(gbroker.bootstrap, topic, 3, 10, "a")

    def consume_until(consumer, expected, timeout=60.0):
        got = {}
        deadline = time.monotonic() + timeout
        while not set(expected) <= set(got):
            assert time.monotonic() < deadline, f"kafka-python consumed {len(got)} of {len(expected)} in {timeout}s"
            for recs in consumer.poll(timeout_ms=200).values():
                for r in recs:
                    assert (r.partition, r.offset) not in got, f"{r.partition}@{r.offset} delivered twice"
                    got[(r.partition, r.offset)] = r.value.decode()
            consumer.commit()
        return got

    def consumer():
        return KafkaConsumer(topic, bootstrap_servers=gbroker.bootstrap, group_id=group, client_id="kp",
                             enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=6000,
                             heartbeat_interval_ms=300, fetch_max_wait_ms=100)

    c1 = consumer()
    try:
        got = consume_until(c1, first)
        assert got == first
    finally:
        c1.close()
    assert committed(gbroker.bootstrap, group, topic, 3) == {0: 10, 1: 10, 2: 10}
    second = produce(gbroker.bootstrap, topic, 3, 10, "b")
    c2 = consumer()
    try:
        got = consume_until(c2, second)
        assert got == second, f"the resumed kafka-python consumer read {sorted(set(got) - set(second))[:10]} " \
                              f"beyond the new records"
    finally:
        c2.close()
    assert committed(gbroker.bootstrap, group, topic, 3) == {0: 20, 1: 20, 2: 20}


@pytest.mark.java
def test_mixed_java_and_librdkafka_group(gbroker, tmp_path):
    """One Java member and one librdkafka member (both 'range') in one group share the 6 partitions: disjoint,
    together complete; each reads what is produced to its partitions; when the Java member leaves, the
    librdkafka member takes over all partitions."""
    topic, group = unique_topic("mixed"), group_name("mixed")
    create_topic(gbroker.bootstrap, topic, PARTS)
    jm = JavaMembers(gbroker.bootstrap, topic, group, tmp_path, "java-member")
    rd = None
    try:
        jm.add("j1", partition__assignment__strategy="org.apache.kafka.clients.consumer.RangeAssignor",
               session__timeout__ms=6000)
        jm.wait_event(lambda e: e.kind == "ASSIGNED" and len(e.all) == PARTS, 40, "j1 owning every partition")
        rd = RdMember(gbroker.bootstrap, topic, group, "rd1")

        def split():
            ja = jm.last_assigned("j1")
            ra = rd.latest()[0]
            if ja is None or not ja.all or not ra:
                return None
            return (ja.all, ra) if not (ja.all & ra) and ja.all | ra == frozenset(range(PARTS)) else None
        try:
            java_parts, rd_parts = wait_until(split, 40, "the Java and librdkafka members sharing the partitions")
        except AssertionError as e:
            raise AssertionError(f"{e}\nrd1 assignments: {rd.assignments}\n{jm.diagnostics()}") from None
        batch = produce(gbroker.bootstrap, topic, PARTS, 5, "m")

        def all_read():
            java_seen = {e.record[:2] for e in jm.snapshot("REC")}
            return set(batch) <= java_seen | set(rd.seen())
        wait_until(all_read, 40, "every record read by the group")
        for (p, o) in batch:
            if p in java_parts:
                assert any(e.record[:2] == (p, o) for e in jm.snapshot("REC")), f"{p}@{o} not read by Java"
            else:
                assert (p, o) in rd.seen(), f"{p}@{o} not read by librdkafka"
        assert not {k for k in rd.seen() if k in batch and k[0] in java_parts}, "librdkafka read Java's partitions"
        assert not {e.record[:2] for e in jm.snapshot("REC") if e.record[:2] in batch and e.record[0] in rd_parts}, \
            "Java read librdkafka's partitions"

        jm.close_member("j1")
        jm.wait_event(lambda e: e.kind == "CLOSED", 30, "j1 closed")
        wait_until(lambda: rd.latest()[0] == frozenset(range(PARTS)), 30, "rd1 owning every partition")
        more = produce(gbroker.bootstrap, topic, PARTS, 3, "n")
        wait_rd_consumed([rd], more)
    finally:
        if rd:
            rd.close()
        jm.stop()
    assert committed(gbroker.bootstrap, group, topic, PARTS) == end_offsets(gbroker.bootstrap, topic, PARTS)
