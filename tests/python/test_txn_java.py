"""Transactions with the real Java client (kafka-clients 4.3.1) through tests/java/src/TxnTool.java: visibility of
committed and aborted records under both isolation levels (control records never reach the application),
consume-transform-produce with sendOffsetsToTransaction (group offsets move only with a commit; require_stable),
fencing by a second producer with the same transactional.id, generation/member checks of TxnOffsetCommit, the
abort of a transaction left open by a killed producer once its timeout passes, interleaved transactional producers
on one partition, and the transaction admin APIs (ListTransactions, DescribeTransactions, DescribeProducers).

The module's broker runs with group.initial.rebalance.delay.ms=0 and the expired-transaction check every 500 ms."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

import conftest
from helpers import create_topic, unique_topic
from txn_helpers import Background, hw, lso, read_all, run_ok, txn_tool_command, wait_lso_caught_up

pytestmark = pytest.mark.java

BROKER_SETS = {
    "group.initial.rebalance.delay.ms": 0,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500,
}


@pytest.fixture(scope="module")
def txn_broker(tmp_path_factory):
    b = conftest._new_broker(tmp_path_factory, BROKER_SETS, "txn-broker")
    yield b
    conftest._teardown(b)


def sent_records(lines):
    """SENT I P OFFSET VALUE lines -> [(txn, partition, offset, value)]."""
    out = []
    for line in lines:
        f = line.split()
        if f and f[0] == "SENT":
            out.append((int(f[1]), int(f[2]), int(f[3]), f[4]))
    return out


def consumed(lines):
    """TxnTool consume output -> ({partition: [(offset, value)]}, {partition: end}, {partition: position}, count)."""
    recs, ends, pos, count = {}, {}, {}, None
    for line in lines:
        f = line.split()
        if f[0] == "REC":
            recs.setdefault(int(f[1]), []).append((int(f[2]), f[3]))
        elif f[0] == "END":
            ends[int(f[1])] = int(f[2])
        elif f[0] == "POS":
            pos[int(f[1])] = int(f[2])
        elif f[0] == "CONSUMED":
            count = int(f[1])
    return recs, ends, pos, count


def java_consume(tmp_path, bootstrap, topic, isolation):
    return consumed(run_ok(tmp_path, "consume", bootstrap, topic, isolation, "60"))


def test_java_commit_and_abort_visibility(txn_broker, topic, tmp_path):
    """Commit 10 records a partition, abort 5, commit 4, on 3 partitions: read_committed (Java and librdkafka) sees
    exactly the 42 committed records, read_uncommitted exactly all 57, never a control record; every transaction
    leaves exactly one marker offset per partition behind it."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 3)
    lines = run_ok(tmp_path, "txns", b, topic, f"txid-{topic}", "C10,A5,C4")
    assert [l for l in lines if l.startswith("DONE")] == ["DONE 0 COMMIT", "DONE 1 ABORT", "DONE 2 COMMIT"]
    assert not [l for l in lines if l.startswith("SENDFAIL")], lines
    sent = sent_records(lines)
    assert len(sent) == 3 * (10 + 5 + 4)

    # layout: each transaction's records are contiguous, followed by one marker offset
    expected_offsets = list(range(0, 10)) + list(range(11, 16)) + list(range(17, 21))
    for p in range(3):
        assert sorted(o for _, q, o, _ in sent if q == p) == expected_offsets, f"partition {p} offsets"
    # commitTransaction returns once the coordinator recorded PrepareCommit; Kafka writes the markers after that
    assert wait_lso_caught_up(b, topic, 3, 15) == {0: 22, 1: 22, 2: 22}

    committed = {p: sorted((o, v) for t, q, o, v in sent if q == p and t != 1) for p in range(3)}
    everything = {p: sorted((o, v) for t, q, o, v in sent if q == p) for p in range(3)}

    recs, ends, pos, count = java_consume(tmp_path, b, topic, "read_committed")
    assert ends == {0: 22, 1: 22, 2: 22}
    assert recs == committed, "Java read_committed consumer"
    assert count == 42
    assert pos == {0: 22, 1: 22, 2: 22}, "read_committed position must move past the last marker"

    recs, ends, pos, count = java_consume(tmp_path, b, topic, "read_uncommitted")
    assert ends == {0: 22, 1: 22, 2: 22}
    assert recs == everything, "Java read_uncommitted consumer (no control records)"
    assert count == 57
    assert pos == {0: 22, 1: 22, 2: 22}

    assert read_all(b, topic, 3, "read_committed") == committed, "librdkafka read_committed"
    assert read_all(b, topic, 3, "read_uncommitted") == everything, "librdkafka read_uncommitted"


def parse_ctp(lines):
    out = {}
    for line in lines:
        f = line.split()
        if f[0] in ("GROUPOFFSETS", "STABLE", "TXNOFFSETS"):
            out[(f[0], f[1])] = f[2]
    return out


def test_java_consume_transform_produce_group_offsets(txn_broker, tmp_path):
    """sendOffsetsToTransaction(offsets, consumer.groupMetadata()): the group's committed offsets (Admin
    listConsumerGroupOffsets) move only when the transaction commits, stay after an abort; the output topic holds
    each transformed record exactly once under read_committed."""
    b = txn_broker.bootstrap
    src, dst, group = unique_topic("ctp-in"), unique_topic("ctp-out"), unique_topic("ctp-group")
    create_topic(b, src, 3)
    create_topic(b, dst, 3)
    n, m = 30, 12
    lines = run_ok(tmp_path, "ctp", b, src, dst, group, f"txid-{group}", str(n), str(m), timeout=180)
    assert lines[-1] == "CTP DONE", lines[-10:]
    r = parse_ctp(lines)
    first = "0=10,1=10,2=10"
    second = "0=14,1=14,2=14"
    assert r[("TXNOFFSETS", "commit1")] == first
    assert r[("TXNOFFSETS", "abort")] == second
    assert r[("TXNOFFSETS", "commit2")] == second
    assert r[("GROUPOFFSETS", "commit1-open")] == "-", "offsets visible before the transaction committed"
    assert r[("GROUPOFFSETS", "commit1-done")] == first, "offsets not committed with the transaction"
    assert r[("GROUPOFFSETS", "abort-open")] == first
    assert r[("GROUPOFFSETS", "abort-done")] == first, "an aborted transaction moved the group's offsets"
    assert r[("GROUPOFFSETS", "commit2-open")] == first
    assert r[("GROUPOFFSETS", "commit2-done")] == second
    # requireStable: while the transaction holds offsets for the group, OffsetFetch answers UNSTABLE_OFFSET_COMMIT
    # for those partitions, which the Java Admin client drops from its result ("-": none), even where a committed
    # offset exists (abort-open, commit2-open); once the transaction ended the stable view is the committed one.
    stable = {k[1]: v for k, v in r.items() if k[0] == "STABLE"}
    assert stable == {"commit1-open": "-", "commit1-done": first, "abort-open": "-", "abort-done": first,
                      "commit2-open": "-", "commit2-done": second}
    assert not [l for l in lines if l.startswith("UNSETTLED")], lines
    assert r[("STABLE", "commit1-done")] == first
    assert r[("STABLE", "abort-done")] == first
    assert r[("STABLE", "commit2-done")] == second
    assert sorted(l for l in lines if l.startswith("SEEK")) == ["SEEK 0 10", "SEEK 1 10", "SEEK 2 10"]

    # per partition: 10 committed + marker, 4 aborted + marker, 4 committed + marker
    assert wait_lso_caught_up(b, dst, 3, 15) == {0: 21, 1: 21, 2: 21}
    want = sorted(f"out-in-{i}" for i in range(n + m))
    got = read_all(b, dst, 3, "read_committed")
    assert sorted(v for p in got for _, v in got[p]) == want, "read_committed output: each record exactly once"
    everything = read_all(b, dst, 3, "read_uncommitted")
    allv = sorted(v for p in everything for _, v in everything[p])
    assert allv == sorted(want + [f"out-in-{i}" for i in range(n, n + m)]), "aborted outputs are in the log"
    # per partition: 10 committed + marker, 4 aborted + marker, 4 committed + marker
    assert wait_lso_caught_up(b, dst, 3, 15) == {0: 21, 1: 21, 2: 21}
    want = sorted(f"out-in-{i}" for i in range(n + m))

@pytest.mark.parametrize("variant", ["send", "commit"])
def test_java_second_producer_fences_first(txn_broker, topic, tmp_path, variant):
    """A second producer with the same transactional.id fences the first and aborts its open transaction; the new
    producer's transaction commits. The fenced producer's next produce is refused with INVALID_PRODUCER_EPOCH (the
    Java client throws InvalidProducerEpochException from the send and again from commitTransaction, as it does
    against Kafka); a commit as its next call gets PRODUCER_FENCED (ProducerFencedException)."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 1)
    lines = run_ok(tmp_path, "fence", b, topic, f"txid-{topic}", variant)
    if variant == "send":
        assert lines == ["A SENT", "B INIT", "A SEND2 InvalidProducerEpochException",
                         "A COMMIT InvalidProducerEpochException", "B COMMITTED"]
    else:
        assert lines == ["A SENT", "B INIT", "A COMMIT ProducerFencedException", "B COMMITTED"]
    wait_lso_caught_up(b, topic, 1, 15)
    assert values_of(read_all(b, topic, 1, "read_committed")) == ["b-0"]
    # a-0 was written (then aborted by B's InitProducerId); a-1 was refused
    assert values_of(read_all(b, topic, 1, "read_uncommitted")) == ["a-0", "b-0"]


def values_of(recs):
    return [v for p in sorted(recs) for _, v in recs[p]]


def test_java_killed_producer_transaction_times_out(txn_broker, topic, tmp_path):
    """kill -9 a producer with an open transaction (transaction.timeout.ms 10000): the last stable offset stays at
    the transaction's first offset (Admin: Ongoing, DescribeProducers: current transaction start offset) until the
    coordinator aborts it after the timeout, then reaches the high watermark; a read_committed consumer then gets
    the records after it and none of the aborted ones."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 1)
    timeout_ms = 10000
    txid = f"txid-{topic}"
    p = Producer({"bootstrap.servers": b, "acks": "all"})
    for i in range(3):
        p.produce(topic, value=f"pre-{i}".encode(), partition=0)
    assert p.flush(30) == 0

    jp = Background(txn_tool_command("hang", b, topic, txid, str(timeout_ms), "5"), tmp_path / "hang.stderr")
    try:
        jp.wait_line(lambda l: l == "OPEN", 60, "OPEN from the hanging producer")
        opened = time.monotonic()
    finally:
        jp.kill9()
    sent = sent_records(jp.lines)
    assert [(o, v) for *_, o, v in sent] == [(3 + j, f"h-{j}") for j in range(5)]

    for i in range(5):
        p.produce(topic, value=f"post-{i}".encode(), partition=0)
    assert p.flush(30) == 0
    stuck_lso, high = lso(b, topic)[0], hw(b, topic)[0]
    elapsed = time.monotonic() - opened
    assert elapsed < timeout_ms / 1000 - 1, f"too slow to observe the open transaction ({elapsed:.1f}s)"
    assert (stuck_lso, high) == (3, 13), "LSO must stay at the open transaction's first offset"
    recs, ends, pos, count = java_consume(tmp_path, b, topic, "read_committed")
    assert ends == {0: 3} and recs == {0: [(0, "pre-0"), (1, "pre-1"), (2, "pre-2")]}
    # the admin view of the open transaction (txstate with no wait prints the state as it is)
    lines = run_ok(tmp_path, "txstate", b, "0", topic)
    still_open = time.monotonic() - opened < timeout_ms / 1000
    assert still_open, "too slow to observe the open transaction through the Admin client"
    assert lines[-1] == "UNRESOLVED", lines
    txn = [l.split() for l in lines if l.startswith(f"TXN {txid} ")]
    assert len(txn) == 1 and txn[0][2] == "Ongoing" and txn[0][4:] == [str(timeout_ms), f"{topic}-0"], lines
    assert [l for l in lines if l.startswith(f"LISTED {txid} Ongoing ")], lines
    producers = [l.split() for l in lines if l.startswith("PRODUCER ")]
    assert len(producers) == 1 and producers[0][1] == "0" and producers[0][4] == "3", lines

    ends = wait_lso_caught_up(b, topic, 1, timeout_ms / 1000 + 30, "the expired transaction to be aborted")
    assert ends == {0: 14}, "one abort marker after the post records"
    recs, ends, pos, count = java_consume(tmp_path, b, topic, "read_committed")
    assert recs == {0: [(i, f"pre-{i}") for i in range(3)] + [(8 + i, f"post-{i}") for i in range(5)]}
    assert ends == {0: 14} and pos == {0: 14} and count == 8
    recs, *_ = java_consume(tmp_path, b, topic, "read_uncommitted")
    assert [v for _, v in recs[0]] == [f"pre-{i}" for i in range(3)] + [f"h-{j}" for j in range(5)] + \
        [f"post-{i}" for i in range(5)]

    lines = run_ok(tmp_path, "txstate", b, "20", topic)
    mine = [l for l in lines if l.startswith(("TXN " + txid + " ", "LISTED " + txid + " "))]
    assert any(l.startswith(f"TXN {txid} CompleteAbort ") for l in mine), lines
    assert any(l.startswith(f"LISTED {txid} CompleteAbort ") for l in mine), lines
    assert lines[-1] == "RESOLVED", lines


def test_java_txn_offset_commit_checks_generation_and_member(txn_broker, topic, tmp_path):
    """TxnOffsetCommit v3 carries the consumer's generation and member id: a wrong generation
    (ILLEGAL_GENERATION) or an unknown member (UNKNOWN_MEMBER_ID) fails sendOffsetsToTransaction with
    CommitFailedException, the transaction aborts, and the real metadata then commits the offset."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 1)
    p = Producer({"bootstrap.servers": b})
    p.produce(topic, value=b"one", partition=0)
    assert p.flush(30) == 0
    group = unique_topic("genfence")
    lines = run_ok(tmp_path, "genfence", b, topic, group, f"txid-{group}")
    assert lines[0].startswith("JOINED ") and int(lines[0].split()[1]) >= 1, lines
    assert lines[1:] == ["BADGEN CommitFailedException", "BADMEMBER CommitFailedException", "REAL OK",
                         "GROUPOFFSETS final 0=1"]


def test_interleaved_transactions_on_one_partition(txn_broker, topic, tmp_path):
    """Three transactional producers interleave on one partition, with a plain producer between them: each
    read_committed consumer (Java and librdkafka) must drop exactly the aborted producers' records, by producer,
    and keep everything else in offset order, even where aborted and committed batches alternate."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 1)
    delivered = []

    def on_delivery(err, m):
        assert err is None, err
        delivered.append((m.offset(), m.value().decode()))

    def producer(name):
        p = Producer({"bootstrap.servers": b, "transactional.id": f"txid-{topic}-{name}", "linger.ms": 0})
        p.init_transactions(30)
        return p

    def send(p, *vals):
        for v in vals:
            p.produce(topic, value=v.encode(), partition=0, on_delivery=on_delivery)
        assert p.flush(30) == 0

    pa, pb, pc = producer("a"), producer("b"), producer("c")
    plain = Producer({"bootstrap.servers": b, "linger.ms": 0})
    pa.begin_transaction()
    pb.begin_transaction()
    send(pa, "a1-0", "a1-1")
    send(pb, "b1-0")
    send(plain, "plain-0")
    send(pa, "a1-2")
    send(pb, "b1-1", "b1-2")
    pb.commit_transaction(30)       # b1 committed while a1 is still open before and after it
    pc.begin_transaction()
    send(pc, "c1-0")
    send(pa, "a1-3")
    pa.abort_transaction(30)        # a1 aborted: its four records, around b1's, must vanish
    pa.begin_transaction()
    send(pa, "a2-0")
    send(plain, "plain-1")
    send(pc, "c1-1")
    pa.commit_transaction(30)
    pc.abort_transaction(30)        # c1 aborted around a2's commit
    pb.begin_transaction()
    send(pb, "b2-0")
    pb.commit_transaction(30)

    wait_lso_caught_up(b, topic, 1, 15)
    keep = ("b1-", "plain-", "a2-", "b2-")
    want = sorted((o, v) for o, v in delivered if v.startswith(keep))
    assert [v for _, v in want] == ["b1-0", "plain-0", "b1-1", "b1-2", "a2-0", "plain-1", "b2-0"]
    assert read_all(b, topic, 1, "read_committed") == {0: want}, "librdkafka read_committed"
    recs, *_ = java_consume(tmp_path, b, topic, "read_committed")
    assert recs == {0: want}, "Java read_committed"
    recs, *_ = java_consume(tmp_path, b, topic, "read_uncommitted")
    assert recs == {0: sorted(delivered)}, "Java read_uncommitted"


def test_java_admin_transaction_queries(txn_broker, topic, tmp_path):
    """DescribeTransactions of an unknown transactional id fails with TRANSACTIONAL_ID_NOT_FOUND; ListTransactions
    filters by state and by producer id."""
    b = txn_broker.bootstrap
    create_topic(b, topic, 1)
    txid = f"txid-{topic}"
    run_ok(tmp_path, "txns", b, topic, txid, "C1")
    lines = run_ok(tmp_path, "txquery", b, txid, f"no-such-{topic}")
    assert lines == ["DESCRIBE_UNKNOWN TransactionalIdNotFoundException", "LIST_ALL YES",
                     "LIST_STATE_CompleteCommit YES", "LIST_STATE_Ongoing NO", "LIST_PID YES", "LIST_OTHER_PID NO"]
