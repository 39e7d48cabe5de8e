"""Cluster mode, the coordinators: consumer groups and transactions live in PostgreSQL, each group or
transactional id held by one broker at a time. Three brokers, each reaching the database through a relay the
test can cut (a network partition between that broker and the database), driven by librdkafka. The broker
holding a group or transaction is killed with kill -9, paused with SIGSTOP past its lease and cut off from the
database; consumers keep consuming with no committed offset going backwards, a transactional
consume-transform-produce copy stays exactly-once, and producers lose and duplicate nothing.
"""

from __future__ import annotations

import threading
import time

import pytest

from cluster_helpers import PARTITIONS, Acks, Cluster, check_log, idempotent_producer, produce_with
from group_helpers import JavaMembers
from helpers import TARGET, create_topic, unique_topic, wait_until

pytestmark = pytest.mark.skipif(TARGET == "kafka", reason="Runnel's cluster mode (Kafka has its own replication)")

GROUP, TXN = 0, 1


@pytest.fixture(scope="module")
def cluster(cluster_engines, tmp_path_factory):
    pg, s3 = cluster_engines
    pg.psql("CREATE DATABASE coordinators")
    c = Cluster(tmp_path_factory.mktemp("coordinators"), pg, s3, n=3, prefix="coordinators",
                database="coordinators", proxied=True)
    wait_until(lambda: c.live_brokers() == [1, 2, 3], 30, "three brokers registered")
    c.wait_listed({1, 2, 3})
    yield c
    for proxy in c.proxies.values():
        proxy.heal()
    c.close()


@pytest.fixture(autouse=True)
def _all_brokers_up(cluster):
    for node in (1, 2, 3):
        cluster.proxies[node].heal()
        b = cluster.brokers[node]
        if not b.alive():
            b.restart(same_port=True)
    cluster.wait_listed({1, 2, 3})
    yield


def sql(cluster, query: str) -> list[list[str]]:
    out = cluster.pg.psql(query, cluster.database)
    return [row.split("|") for row in out.splitlines()] if out else []


def holder(cluster, kind: int, key: str) -> int | None:
    """The broker that last claimed the key."""
    rows = sql(cluster, f"SELECT owner FROM runnel_coordinators WHERE kind = {kind} AND key = '{key}'")
    return int(rows[0][0]) if rows else None


def committed(cluster, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets as the database holds them."""
    rows = sql(cluster, f"""SELECT record::jsonb->>'p', record::jsonb->>'n', value::jsonb->>'offset'
                             FROM runnel_coordinator_records
                             WHERE kind = {GROUP} AND key = '{group}' AND record::jsonb->>'t' = 'o'""")
    return {(t, int(p)): int(o) for t, p, o in rows}


def generation(cluster, group: str) -> int:
    rows = sql(cluster, f"""SELECT value::jsonb->>'generation' FROM runnel_coordinator_records
                             WHERE kind = {GROUP} AND key = '{group}' AND record::jsonb->>'t' = 'g'""")
    return int(rows[0][0]) if rows else -1


def high_watermarks(bootstrap: str, topic: str) -> dict[tuple[str, int], int]:
    from helpers import watermarks

    return {(topic, p): watermarks(bootstrap, topic, p)[1] for p in range(PARTITIONS)}


class Failures:
    """The failures every test here puts the holder of a key through, one after another: kill -9 and a
    restart, SIGSTOP until its lease has run out, then a cut from the database until the others have
    dropped it. `at(progress)` runs the next step once progress has reached its threshold."""

    def __init__(self, cluster, kind: int, key: str, thresholds: list[int]):
        self.cluster, self.kind, self.key = cluster, kind, key
        self.steps = list(zip(thresholds, [self._kill, self._restart, self._pause, self._cut]))
        self.done: list[str] = []
        self.killed: int | None = None

    def at(self, progress: int):
        while self.steps and progress >= self.steps[0][0]:
            self.steps.pop(0)[1]()

    def _holder(self) -> int:
        return wait_until(lambda: holder(self.cluster, self.kind, self.key), 30, f"a holder of {self.key}")

    def _gone(self, node: int):
        wait_until(lambda: node not in self.cluster.live_brokers(), 30, f"broker {node}'s lease to run out")

    def _kill(self):
        self.killed = self._holder()
        self.cluster.brokers[self.killed].kill9()
        self.done.append(f"killed {self.killed}")

    def _restart(self):
        self.cluster.brokers[self.killed].start(self.cluster.brokers[self.killed].port)
        self.done.append(f"restarted {self.killed}")

    def _pause(self):
        node = self._holder()
        self.cluster.pause(node)
        try:
            self._gone(node)
        finally:
            self.cluster.resume(node)
        self.done.append(f"paused {node}")

    def _cut(self):
        node = self._holder()
        self.cluster.proxies[node].cut()
        try:
            self._gone(node)
            time.sleep(2)  # a while longer cut off, as a partition would last, while the others carry on
        finally:
            self.cluster.proxies[node].heal()
        self.done.append(f"cut {node}")


@pytest.mark.java
@pytest.mark.timeout(300)
def test_group_consumes_through_coordinator_failures(cluster, tmp_path):
    """Three consumers in a group, librdkafka, kafka-python and the Java client, consume a 12-partition topic,
    committing as they go, while the
    group's coordinator is killed, paused past its lease and cut off from the database: every record is
    consumed, no committed offset ever goes backwards, the generation is kept, and in the end the committed
    offsets reach the end of every partition."""
    from confluent_kafka import Consumer, KafkaException

    topic, group = unique_topic("grouped"), unique_topic("group")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    total = 6000
    acks = Acks()
    produce_with(idempotent_producer(cluster.bootstrap), topic, acks, total, {}, pace=0)
    assert len(acks.acked) == total
    end = high_watermarks(cluster.bootstrap, topic)

    seen: set[bytes] = set()
    lock = threading.Lock()
    stop = threading.Event()
    commit_errors: list[str] = []

    def consume():
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000,
                      "socket.timeout.ms": 10000, "topic.metadata.refresh.interval.ms": 1000})
        c.subscribe([topic])
        uncommitted = 0
        while not stop.is_set():
            m = c.poll(0.2)
            if m is not None and not m.error():
                with lock:
                    seen.add(m.value())
                uncommitted += 1
                time.sleep(0.008)  # slow enough that the failures land mid-stream
            if uncommitted >= 50 or (m is None and uncommitted):
                try:
                    c.commit(asynchronous=False)
                    uncommitted = 0
                except KafkaException as e:
                    commit_errors.append(str(e))
        c.close()

    def consume_with_kafka_python():
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        c = KafkaConsumer(topic, bootstrap_servers=cluster.bootstrap.split(","), group_id=group,
                          enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=10000,
                          heartbeat_interval_ms=1000, request_timeout_ms=15000, metadata_max_age_ms=1000)
        uncommitted = 0
        while not stop.is_set():
            polled = c.poll(timeout_ms=200, max_records=20)
            for records in polled.values():
                for m in records:
                    with lock:
                        seen.add(m.value)
                    uncommitted += 1
                    time.sleep(0.008)
            if uncommitted >= 50 or (not polled and uncommitted):
                try:
                    c.commit()
                    uncommitted = 0
                except KafkaError as e:
                    commit_errors.append(repr(e))
        c.close()

    backwards: list[str] = []
    last: dict[tuple[str, int], int] = {}

    def watch_commits():
        while not stop.is_set():
            now = committed(cluster, group)
            for tp, o in now.items():
                if o < last.get(tp, -1):
                    backwards.append(f"{tp}: {last[tp]} -> {o}")
                last[tp] = max(o, last.get(tp, -1))
            time.sleep(0.1)

    # The Java consumer (tests/java/src/GroupMember.java) commits after every poll and reports each record.
    java = JavaMembers(cluster.bootstrap, topic, group, tmp_path, "java-member")

    def consumed() -> set[bytes]:
        by_java = {e.record[2].encode() for e in java.snapshot("REC")}
        with lock:
            return seen | by_java

    threads = [threading.Thread(target=t) for t in (consume, consume_with_kafka_python, watch_commits)]
    for t in threads:
        t.start()
    java.add("java", session__timeout__ms=10000, heartbeat__interval__ms=1000, metadata__max__age__ms=1000,
             max__poll__records=20, record__delay__ms=8)
    try:
        wait_until(lambda: generation(cluster, group) > 0, 60, "the group's first generation")
        before = generation(cluster, group)
        failures = Failures(cluster, GROUP, group, [1000, 2000, 3000, 4200])
        deadline = time.monotonic() + 240
        first_failure = None
        while failures.steps and time.monotonic() < deadline:
            failures.at(len(consumed()))
            if failures.done and first_failure is None:
                first_failure = time.monotonic()
            java.check()
            time.sleep(0.1)
        assert not failures.steps, f"only {failures.done} before the stream ended ({len(consumed())} consumed)"
        wait_until(lambda: len(consumed()) == total, 120, f"all {total} records consumed")
        wait_until(lambda: committed(cluster, group) == end, 60, "committed offsets at the end of each partition")
        java.check()
    finally:
        stop.set()
        java.stop()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads), "a consumer thread did not stop (its client would outlive the test)"
    assert consumed() == set(acks.acked)
    assert any(e.t > first_failure for e in java.snapshot("REC")), "the Java consumer consumed after a failure"
    assert not backwards, f"committed offsets went backwards: {backwards[:10]}"
    assert generation(cluster, group) >= before, "the group lost its generation"
    print(f"failures: {failures.done}; commit errors seen by the clients: {len(commit_errors)}")


@pytest.mark.timeout(400)
def test_transactional_copy_is_exactly_once_through_coordinator_failures(cluster):
    """Consume-transform-produce with librdkafka's transactions (offsets sent to the transaction, read_committed
    input): the transaction's coordinator is killed, paused past its lease and cut off from the database
    while the copy runs; a read_committed reader of the output finds every input record exactly once."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

    source, sink = unique_topic("eos-in"), unique_topic("eos-out")
    group, txn_id = unique_topic("eos-group"), unique_topic("eos-txn")
    for t in (source, sink):
        create_topic(cluster.bootstrap, t, PARTITIONS)
    total = 2000
    acks = Acks()
    produce_with(idempotent_producer(cluster.bootstrap), source, acks, total, {}, pace=0)
    assert len(acks.acked) == total

    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "session.timeout.ms": 10000, "socket.timeout.ms": 10000,
                         "topic.metadata.refresh.interval.ms": 1000})
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id,
                         "transaction.timeout.ms": 60000, "socket.timeout.ms": 10000, "message.timeout.ms": 60000,
                         "topic.metadata.refresh.interval.ms": 1000, "linger.ms": 5})
    consumer.subscribe([source])
    producer.init_transactions(60)

    class StepTimedOut(Exception):
        """A transaction step kept failing with retriable errors for its whole budget."""

    def retried(step, *args, budget=60.0):
        """`step`, retried on retriable errors for at most `budget` seconds, then StepTimedOut: the caller
        decides whether the transaction can be given up, rather than waiting on it forever."""
        last = None
        give_up = time.monotonic() + budget
        while time.monotonic() < give_up:
            try:
                return step(*args)
            except KafkaException as e:
                err = last = e.args[0]
                if err.retriable() and not err.txn_requires_abort():
                    print(f"{time.strftime('%H:%M:%S')} {step.__name__}: {err}")
                    time.sleep(0.5)
                    continue
                raise
        raise StepTimedOut(f"{step.__name__} kept failing for {budget:.0f} s: {last}")

    def rewind():
        """After an abort: back to the committed offsets (the aborted batch is read again)."""
        parts = consumer.assignment()
        for tp in retried(consumer.committed, parts, 30):
            consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))

    copied = aborted = 0
    failures = Failures(cluster, TXN, txn_id, [300, 700, 1100, 1500])
    deadline = time.monotonic() + 300
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        failures.at(copied)
        msgs = [m for m in consumer.consume(20, 0.5) if not m.error()]
        if not msgs:
            if copied >= total and not failures.steps and time.monotonic() - idle_since > 3:
                break
            continue
        idle_since = time.monotonic()
        try:
            producer.begin_transaction()
            for m in msgs:
                producer.produce(sink, value=b"copy:" + m.value(), partition=m.partition())
            retried(producer.send_offsets_to_transaction, consumer.position(consumer.assignment()),
                    consumer.consumer_group_metadata(), 20)
            try:
                retried(producer.commit_transaction, 20, budget=120)
            except StepTimedOut as e:
                # not aborted: the commit may have completed, and reading the batch again would copy it twice
                raise AssertionError(str(e)) from e
            copied += len(msgs)
        except (KafkaException, StepTimedOut) as e:
            # A fatal error ends the producer; any other (needing an abort, a request lost with a broker that
            # left the metadata, or a step that kept timing out) aborts the transaction and reads the batch
            # again.
            if isinstance(e, KafkaException) and e.args[0].fatal():
                raise
            print(f"{time.strftime('%H:%M:%S')} aborting: {e.args[0]}")
            retried(producer.abort_transaction, 20, budget=120)
            aborted += 1
            rewind()
    consumer.close()
    assert not failures.steps, f"only {failures.done} before the copy ended"

    reader = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique_topic("eos-reader"),
                       "enable.auto.commit": False, "isolation.level": "read_committed"})
    reader.assign([TopicPartition(sink, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    out: list[bytes] = []
    quiet = time.monotonic()
    while time.monotonic() - quiet < 5:
        m = reader.poll(0.5)
        if m is not None and not m.error():
            out.append(m.value())
            quiet = time.monotonic()
    reader.close()
    expected = sorted(b"copy:" + v for v in acks.acked)
    dupes = len(out) - len(set(out))
    assert dupes == 0, f"{dupes} records copied twice (aborted transactions: {aborted})"
    assert sorted(out) == expected, f"{len(set(expected) - set(out))} records missing from the copy"
    print(f"failures: {failures.done}; aborted and retried transactions: {aborted}")


def test_producing_through_a_broker_cut_off_from_the_database(cluster):
    """librdkafka, idempotent and acks=all, produces while one broker is cut off from the database until the
    others have dropped it, then reconnected: every acknowledged record is in the log once, offsets dense."""
    topic = unique_topic("cut")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    acks = Acks()
    victim = 2

    def cut():
        cluster.proxies[victim].cut()

    def heal():
        wait_until(lambda: victim not in cluster.live_brokers(), 30, f"broker {victim} dropped")
        time.sleep(2)
        cluster.proxies[victim].heal()

    produce_with(idempotent_producer(cluster.bootstrap), topic, acks, 6000, {1500: cut, 3000: heal})
    assert len(acks.acked) == 6000, f"{len(acks.acked)} acknowledged; errors {acks.errors[:5]}"
    wait_until(lambda: victim in cluster.live_brokers(), 30, f"broker {victim} back in the cluster")
    check_log(cluster.bootstrap, topic, PARTITIONS, acks.acked)
