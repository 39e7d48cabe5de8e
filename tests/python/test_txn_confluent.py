"""Transactions with librdkafka (confluent-kafka): commit, abort with records produced (delivered or still queued),
empty transactions, abort after a failed transaction, consume-transform-produce with
send_offsets_to_transaction, fencing, transaction.timeout.ms validation; verified with read_committed and
read_uncommitted librdkafka consumers."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Producer, TopicPartition

import conftest
from helpers import create_topic, unique_topic, wait_until
from txn_helpers import read_all, wait_lso_caught_up

MAX_TIMEOUT_MS = 120000
BROKER_SETS = {
    "group.initial.rebalance.delay.ms": 0,
    "transaction.max.timeout.ms": MAX_TIMEOUT_MS,
}


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory):
    b = conftest._new_broker(tmp_path_factory, BROKER_SETS, "txn-broker")
    yield b
    conftest._teardown(b)


def txn_producer(bootstrap, txid, **conf):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txid, "linger.ms": 5, **conf})
    p.init_transactions(30)
    return p


class Deliveries:
    def __init__(self):
        self.ok: list[tuple[int, int, str]] = []
        self.failed: list[tuple[str, KafkaError]] = []

    def __call__(self, err, m):
        v = m.value().decode()
        if err is None:
            self.ok.append((m.partition(), m.offset(), v))
        else:
            self.failed.append((v, err))


def by_partition(recs, partitions):
    out = {p: [] for p in range(partitions)}
    for p, o, v in recs:
        out[p].append((o, v))
    return {p: sorted(r) for p, r in out.items()}


def test_librdkafka_commit_and_abort(txn_broker, topic):
    """Commit 5 a partition, abort 4 (delivered before the abort), abort 3 still queued (never flushed), commit 2:
    read_committed sees exactly the 7 committed records a partition; read_uncommitted sees those plus the
    delivered aborted ones; one marker offset follows every transaction that reached the partition."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 3)
    p = txn_producer(b, f"txid-{topic}")
    committed, aborted = Deliveries(), Deliveries()

    p.begin_transaction()
    for j in range(5):
        for part in range(3):
            p.produce(topic, value=f"c0-{part}-{j}".encode(), partition=part, on_delivery=committed)
    p.commit_transaction(30)  # flushes
    assert len(committed.ok) == 15 and not committed.failed

    p.begin_transaction()
    for j in range(4):
        for part in range(3):
            p.produce(topic, value=f"a1-{part}-{j}".encode(), partition=part, on_delivery=aborted)
    assert p.flush(30) == 0
    assert len(aborted.ok) == 12 and not aborted.failed
    p.abort_transaction(30)

    queued = Deliveries()
    p.begin_transaction()
    for part in range(3):
        p.produce(topic, value=f"a2-{part}".encode(), partition=part, on_delivery=queued)
    p.abort_transaction(30)  # without flush: purges what was not sent, aborts what was
    p.poll(0)

    p.begin_transaction()
    for j in range(2):
        for part in range(3):
            p.produce(topic, value=f"c3-{part}-{j}".encode(), partition=part, on_delivery=committed)
    p.commit_transaction(30)
    assert len(committed.ok) == 21 and not committed.failed
    p.flush(10)

    sent_a2 = {part for part, _, _ in queued.ok}
    want = by_partition(committed.ok, 3)
    for part in range(3):
        offs = [o for o, _ in want[part]]
        # c0 at 0..4, marker 5, a1 6..9, marker 10, then what a2 left: its record and the abort marker when
        # the record was delivered; only the marker when the partition had joined the transaction
        # (AddPartitionsToTxn) but the abort purged the record before it was sent; nothing when neither
        # happened. Then c3 and its marker.
        bases = {13} if part in sent_a2 else {11, 12}
        assert offs[:5] == [0, 1, 2, 3, 4] and offs[5] in bases and offs[6:] == [offs[5] + 1], \
            f"partition {part}: {offs} (a2 delivered: {part in sent_a2})"
    ends = wait_lso_caught_up(b, topic, 3, 15)
    for part in range(3):
        assert ends[part] == want[part][-1][0] + 2, f"partition {part}: one marker after the last transaction"

    assert read_all(b, topic, 3, "read_committed") == want
    everything = by_partition(committed.ok + aborted.ok + queued.ok, 3)
    assert read_all(b, topic, 3, "read_uncommitted") == everything


def test_librdkafka_empty_transactions(txn_broker, topic):
    """Transactions with no records commit and abort; the producer goes on to commit one with records."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 1)
    p = txn_producer(b, f"txid-{topic}")
    p.begin_transaction()
    p.commit_transaction(30)
    p.begin_transaction()
    p.abort_transaction(30)
    d = Deliveries()
    p.begin_transaction()
    p.produce(topic, value=b"only", partition=0, on_delivery=d)
    p.commit_transaction(30)
    p.flush(10)
    assert d.ok == [(0, 0, "only")]
    assert wait_lso_caught_up(b, topic, 1, 15) == {0: 2}
    assert read_all(b, topic, 1, "read_committed") == {0: [(0, "only")]}


def failed_transaction(p, topic, d):
    """A transaction with a small record on partition 0 and one on partition 1 that the broker refuses (over the
    topic's max.message.bytes): commit_transaction raises an abortable (not fatal) error; abort_transaction works."""
    p.begin_transaction()
    p.produce(topic, value=b"small-in-failed", partition=0, on_delivery=d)
    # acknowledged before the big one fails: otherwise librdkafka may purge it unsent when the transaction
    # fails (it does when partition 0's leader is another broker not yet connected)
    assert p.flush(30) == 0 and [v for _, _, v in d.ok] == ["small-in-failed"], d.failed
    p.produce(topic, value=b"big" + b"x" * 5000, partition=1, on_delivery=d)
    with pytest.raises(KafkaException) as ei:
        p.commit_transaction(30)
    err = ei.value.args[0]
    assert err.txn_requires_abort(), f"not abortable: {err}"
    assert not err.fatal()
    p.abort_transaction(30)
    assert [(v[:3], e.code()) for v, e in d.failed] == [("big", KafkaError.MSG_SIZE_TOO_LARGE)], d.failed


def test_librdkafka_abort_after_failed_transaction(txn_broker, topic):
    """After a failed transaction is aborted the producer commits the next one; read_committed never sees the failed
    transaction's record that the broker had accepted."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 2, config={"max.message.bytes": "2000"})
    p = txn_producer(b, f"txid-{topic}")
    d = Deliveries()
    failed_transaction(p, topic, d)
    p.begin_transaction()
    p.produce(topic, value=b"after", partition=0, on_delivery=d)
    p.commit_transaction(30)
    p.flush(10)
    wait_lso_caught_up(b, topic, 2, 15)
    assert [v for _, v in read_all(b, topic, 2, "read_committed")[0]] == ["after"]
    assert [v for _, v in read_all(b, topic, 2, "read_uncommitted")[0]] == ["small-in-failed", "after"]


def test_librdkafka_sequence_gap_after_failed_record_is_refused(txn_broker, topic):
    """librdkafka keeps counting sequence numbers past the refused record, so its next record to that partition
    leaves a gap after the abort marker: Kafka refuses it with OUT_OF_ORDER_SEQUENCE_NUMBER (the marker left the
    producer's state on the partition with epoch 0 and no sequence), librdkafka makes the transaction abortable and
    bumps its epoch on the abort, and the transaction after that commits."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 2, config={"max.message.bytes": "2000"})
    p = txn_producer(b, f"txid-{topic}")
    d = Deliveries()
    failed_transaction(p, topic, d)
    p.begin_transaction()
    p.produce(topic, value=b"gap", partition=1, on_delivery=d)
    with pytest.raises(KafkaException) as ei:
        p.commit_transaction(30)
    err = ei.value.args[0]
    assert err.code() == KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER and err.txn_requires_abort(), err
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, value=b"after", partition=1, on_delivery=d)
    p.commit_transaction(30)
    p.flush(10)
    wait_lso_caught_up(b, topic, 2, 15)
    assert [v for _, v in read_all(b, topic, 2, "read_committed")[1]] == ["after"]


def test_librdkafka_consume_transform_produce(txn_broker):
    """send_offsets_to_transaction with the consumer's group metadata: committed offsets follow the committed
    transaction, not the aborted one; output holds each input once under read_committed."""
    b = txn_broker.bootstrap
    src, dst, group = unique_topic("rk-ctp-in"), unique_topic("rk-ctp-out"), unique_topic("rk-ctp-group")
    create_topic(b, src, 2)
    create_topic(b, dst, 2)
    plain = Producer({"bootstrap.servers": b})
    for i in range(20):
        plain.produce(src, value=f"in-{i}".encode(), partition=i % 2)
    assert plain.flush(30) == 0

    c = Consumer({"bootstrap.servers": b, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    p = txn_producer(b, f"txid-{group}")
    tps = [TopicPartition(src, 0), TopicPartition(src, 1)]
    try:
        c.subscribe([src])

        def consume(n):
            got = []
            wait_until(lambda: got.extend(x for x in c.consume(50, 0.2) if not x.error()) or len(got) >= n,
                       60, f"{n} input records")
            assert len(got) == n
            return got

        def transform(msgs, commit, before_end=None):
            p.begin_transaction()
            for m in msgs:
                p.produce(dst, value=b"out-" + m.value(), partition=m.partition())
            p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
            if before_end:
                before_end()
            if commit:
                p.commit_transaction(30)
            else:
                p.abort_transaction(30)

        def committed():
            return {tp.partition: tp.offset for tp in c.committed(tps, 15)}

        def pending_offsets_are_unstable():
            # OffsetFetch with require_stable (librdkafka sets it under read_committed) answers
            # UNSTABLE_OFFSET_COMMIT while the transaction holds offsets; librdkafka retries until its timeout
            with pytest.raises(KafkaException) as ei:
                c.committed(tps, 2)
            assert ei.value.args[0].code() == KafkaError._TIMED_OUT, ei.value.args[0]
            # without require_stable the answer is the last committed offsets: none yet
            other = Consumer({"bootstrap.servers": b, "group.id": group, "isolation.level": "read_uncommitted"})
            try:
                assert [tp.offset for tp in other.committed(tps, 10)] == [OFFSET_INVALID, OFFSET_INVALID]
            finally:
                other.close()

        first = consume(20)
        transform(first, commit=True, before_end=pending_offsets_are_unstable)
        assert wait_until(lambda: committed() == {0: 10, 1: 10}, 15, "offsets committed with the transaction")
        for i in range(20, 30):
            plain.produce(src, value=f"in-{i}".encode(), partition=i % 2)
        assert plain.flush(30) == 0
        second = consume(10)
        transform(second, commit=False)
        assert committed() == {0: 10, 1: 10}, "an aborted transaction moved the offsets"
        for tp in tps:
            c.seek(TopicPartition(src, tp.partition, 10))
        again = consume(10)
        assert sorted(m.value() for m in again) == sorted(m.value() for m in second)
        transform(again, commit=True)
        assert wait_until(lambda: committed() == {0: 15, 1: 15}, 15, "offsets of the second commit")
    finally:
        c.close()
    wait_lso_caught_up(b, dst, 2, 15)
    out = read_all(b, dst, 2, "read_committed")
    assert sorted(v for r in out.values() for _, v in r) == sorted(f"out-in-{i}" for i in range(30))


def test_librdkafka_fenced_producer(txn_broker, topic):
    """A second producer with the same transactional.id fences the first: the first's commit fails with a fatal
    error and its open transaction is aborted."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 1)
    txid = f"txid-{topic}"
    p1 = txn_producer(b, txid)
    p1.begin_transaction()
    p1.produce(topic, value=b"p1", partition=0)
    assert p1.flush(30) == 0
    p2 = txn_producer(b, txid)
    with pytest.raises(KafkaException) as ei:
        p1.commit_transaction(30)
    err = ei.value.args[0]
    assert err.fatal(), err
    assert err.code() == KafkaError._FENCED, err
    p2.begin_transaction()
    p2.produce(topic, value=b"p2", partition=0)
    p2.commit_transaction(30)
    wait_lso_caught_up(b, topic, 1, 15)
    assert [v for _, v in read_all(b, topic, 1, "read_committed")[0]] == ["p2"]
    assert [v for _, v in read_all(b, topic, 1, "read_uncommitted")[0]] == ["p1", "p2"]


def test_librdkafka_transaction_timeout_validated(txn_broker):
    """transaction.timeout.ms above the broker's transaction.max.timeout.ms: InitProducerId answers
    INVALID_TRANSACTION_TIMEOUT; exactly the maximum is accepted."""
    b = txn_broker.bootstrap
    p = Producer({"bootstrap.servers": b, "transactional.id": unique_topic("txid-too-long"),
                  "transaction.timeout.ms": MAX_TIMEOUT_MS + 1})
    with pytest.raises(KafkaException) as ei:
        p.init_transactions(30)
    assert ei.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT, ei.value.args[0]
    ok = Producer({"bootstrap.servers": b, "transactional.id": unique_topic("txid-max"),
                   "transaction.timeout.ms": MAX_TIMEOUT_MS})
    ok.init_transactions(30)
