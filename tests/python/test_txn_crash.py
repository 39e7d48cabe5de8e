"""kill -9 of the broker during a stream of transactions (TxnTool loop: 6 records a transaction over 3 partitions,
every third aborted, each outcome printed as commit/abort returns). After a restart on the same data dir: no record
of an acknowledged commit is missing, nothing of an aborted transaction is visible to read_committed, the
transaction in flight at the kill is all-or-nothing, and every open transaction gets resolved: by the
coordinator's timeout (rounds 1 and 3) or by a new producer with the same transactional.id (round 2). The last
stable offset reaches the high watermark and the Java Admin (ListTransactions, DescribeTransactions,
DescribeProducers) shows nothing open."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from helpers import TARGET, create_topic, wait_until
from txn_helpers import Background, hw, lso, read_all, run_ok, txn_tool_command, wait_lso_caught_up

pytestmark = pytest.mark.java

PARTITIONS = 3
TIMEOUT_MS = 10000
# Real Kafka (single-node KRaft, controller in the same JVM) restarted after kill -9 cannot register again until
# the dead incarnation's broker session expires, then elects its partitions again: a transaction timing out in
# that window gets CompleteAbort in the coordinator but its markers never reach the (leaderless) partitions, and
# the LSO stays stuck for good. A short broker session keeps the reference run clear of that window.
KAFKA_SETS = {"broker.session.timeout.ms": 2000, "broker.heartbeat.interval.ms": 500} if TARGET == "kafka" else {}
PER_TXN = 6
OUTCOME = re.compile(r"^(BEGIN|COMMITTED|ABORTED) (\d+)$")


def run_loop_until_killed(broker, topic, txid, prefix, tmp_path, outcomes=30, hold=False):
    """Start the loop, kill -9 the broker once `outcomes` transactions ended (hold: once transaction `outcomes`
    has its records on the broker and is held open), then the producer; returns (committed, aborted, in_flight)
    transaction numbers as the producer printed them."""
    args = ["loop", broker.bootstrap, topic, txid, "100000", str(TIMEOUT_MS), prefix]
    if hold:
        args.append(str(outcomes))
    jp = Background(txn_tool_command(*args), tmp_path / f"loop-{prefix}.stderr")
    try:
        jp.wait_line(lambda l: l in (f"COMMITTED {outcomes}", f"ABORTED {outcomes}", f"HOLD {outcomes}")
                     or l.startswith("ERROR"), 120, f"{outcomes} transactions from the loop")
        broker.kill9()
    finally:
        jp.kill9()
    assert not [l for l in jp.lines if l.startswith("ERROR")], jp.describe()
    begun, committed, aborted = set(), set(), set()
    for line in jp.lines:
        if line.startswith("HOLD "):
            continue
        m = OUTCOME.match(line)
        assert m, f"unexpected output line {line!r}"
        {"BEGIN": begun, "COMMITTED": committed, "ABORTED": aborted}[m.group(1)].add(int(m.group(2)))
    assert all(i % 3 == 2 for i in aborted) and not any(i % 3 == 2 for i in committed)
    in_flight = begun - committed - aborted
    assert len(in_flight) <= 1 and begun == set(range(len(begun)))
    return committed, aborted, in_flight


def check_log(bootstrap, topic, prefix, committed, aborted, in_flight):
    """read_committed holds every record of every acknowledged commit, once, nothing of an aborted transaction;
    the transaction in flight is all or nothing (never visible if it was to abort)."""
    recs = read_all(bootstrap, topic, PARTITIONS, "read_committed", timeout=60)
    mine = [v for p in recs for _, v in recs[p] if v.startswith(prefix)]
    dupes = [v for v, n in Counter(mine).items() if n > 1]
    assert not dupes, f"records visible twice: {dupes[:10]}"
    per_txn = Counter(int(v[len(prefix):].split("-")[0]) for v in mine)
    missing = {i: per_txn.get(i, 0) for i in committed if per_txn.get(i, 0) != PER_TXN}
    assert not missing, f"committed transactions with records missing (txn: visible count): {missing}"
    visible_aborts = {i: n for i, n in per_txn.items() if i % 3 == 2 or i in aborted}
    assert not visible_aborts, f"aborted transactions visible to read_committed: {visible_aborts}"
    unknown = set(per_txn) - committed - in_flight
    assert not unknown, f"records of transactions never begun or aborted: {sorted(unknown)}"
    for i in in_flight:
        assert per_txn.get(i, 0) in (0, PER_TXN), f"in-flight transaction {i} partly visible: {per_txn.get(i)}"
    return per_txn


def admin_state(tmp_path, bootstrap, topic, txid, states):
    """Java Admin: nothing Ongoing/Prepare* (ListTransactions, DescribeTransactions), no producer with an open
    transaction on the topic's partitions (DescribeProducers), and TXID in one of `states`."""
    lines = run_ok(tmp_path, "txstate", bootstrap, "30", topic, timeout=90)
    assert lines[-1] == "RESOLVED", "open transactions remain:\n" + "\n".join(lines)
    mine = [l.split() for l in lines if l.startswith(f"TXN {txid} ")]
    assert len(mine) == 1 and mine[0][2] in states, lines
    assert [l for l in lines if l.startswith(f"LISTED {txid} {mine[0][2]} ")], lines
    producers = [l for l in lines if l.startswith("PRODUCER ")]
    assert producers and all(l.split()[-1] == "-1" for l in producers), producers
    return lines


def offsets_now(bootstrap, topic):
    """(high watermarks, last stable offsets), retried while a restarted broker settles."""
    return wait_until(lambda: (hw(bootstrap, topic, PARTITIONS), lso(bootstrap, topic, PARTITIONS)), 60,
                      f"ListOffsets on {topic}", interval=0.2)


def test_broker_kill9_during_transactions(start_broker, topic, tmp_path):
    b = start_broker({"group.initial.rebalance.delay.ms": 0,
                      "transaction.abort.timed.out.transaction.cleanup.interval.ms": 500, **KAFKA_SETS})
    create_topic(b.bootstrap, topic, PARTITIONS)
    txid = f"txid-{topic}"

    # round 1: transaction 30 has its records on the broker and is open when the broker and the producer die;
    # after the restart the coordinator must abort it once its timeout passes
    c1, a1, f1 = run_loop_until_killed(b, topic, txid, "x", tmp_path, outcomes=30, hold=True)
    assert f1 == {30}
    b.restart()
    h, s = offsets_now(b.bootstrap, topic)
    print(f"round 1: {len(c1)} committed, {len(a1)} aborted, in flight {f1}; after restart HW {h} LSO {s}")
    assert all(s[p] < h[p] for p in h), "the open transaction must hold the LSO back after the restart"
    unc = read_all(b.bootstrap, topic, PARTITIONS, "read_uncommitted", timeout=60)
    assert sorted(v for p in unc for _, v in unc[p] if v.startswith("x30-")) == [f"x30-{j}" for j in range(PER_TXN)]
    ends = wait_lso_caught_up(b.bootstrap, topic, PARTITIONS, TIMEOUT_MS / 1000 + 60,
                              "every transaction resolved after the restart (LSO == high watermark)")
    assert all(ends[p] == h[p] + 1 for p in h), "one abort marker per partition"
    check_log(b.bootstrap, topic, "x", c1, a1 | f1, set())
    admin_state(tmp_path, b.bootstrap, topic, txid, ("CompleteAbort",))

    # round 2: the same transactional.id goes on (epoch bump after the restart); transaction 30 is open again when
    # both die, and this time a new producer with that id resolves it at once through InitProducerId
    c2, a2, f2 = run_loop_until_killed(b, topic, txid, "y", tmp_path, outcomes=30, hold=True)
    assert f2 == {30}
    b.restart()
    h, s = offsets_now(b.bootstrap, topic)
    print(f"round 2: {len(c2)} committed, {len(a2)} aborted, in flight {f2}; after restart HW {h} LSO {s}")
    assert all(s[p] < h[p] for p in h), "the open transaction must hold the LSO back after the restart"
    lines = run_ok(tmp_path, "loop", b.bootstrap, topic, txid, "3", str(TIMEOUT_MS), "z", timeout=120)
    assert lines == ["BEGIN 0", "COMMITTED 0", "BEGIN 1", "COMMITTED 1", "BEGIN 2", "ABORTED 2", "LOOP DONE"]
    wait_lso_caught_up(b.bootstrap, topic, PARTITIONS, 30, "LSO == high watermark after the new producer's commits")
    check_log(b.bootstrap, topic, "y", c2, a2 | f2, set())
    check_log(b.bootstrap, topic, "z", {0, 1}, {2}, set())
    # the last transaction aborted, but the Java client sends no EndTxn for one that never added a partition (its
    # records may still have been queued), so the coordinator may still show the commit before it
    admin_state(tmp_path, b.bootstrap, topic, txid, ("CompleteAbort", "CompleteCommit"))

    # round 3: the broker dies at whatever point the loop is at (mid-send, mid-commit, between transactions); the
    # producer dies too and whatever it left open is resolved after the restart
    c3, a3, f3 = run_loop_until_killed(b, topic, txid, "w", tmp_path, outcomes=20)
    b.restart()
    h, s = offsets_now(b.bootstrap, topic)
    print(f"round 3: {len(c3)} committed, {len(a3)} aborted, in flight {f3}; after restart HW {h} LSO {s}")
    wait_lso_caught_up(b.bootstrap, topic, PARTITIONS, TIMEOUT_MS / 1000 + 60,
                       "every transaction resolved after the restart (LSO == high watermark)")
    check_log(b.bootstrap, topic, "w", c3, a3, f3)
    admin_state(tmp_path, b.bootstrap, topic, txid, ("CompleteAbort", "CompleteCommit"))

    # and a clean restart keeps it all
    b.restart()
    assert wait_until(lambda: (lambda hs: hs[0] == hs[1])(offsets_now(b.bootstrap, topic)), 30,
                      "LSO == high watermark after a clean restart")
    check_log(b.bootstrap, topic, "x", c1, a1 | f1, set())
    check_log(b.bootstrap, topic, "y", c2, a2 | f2, set())
    check_log(b.bootstrap, topic, "z", {0, 1}, {2}, set())
    check_log(b.bootstrap, topic, "w", c3, a3, f3)
