"""Consumer groups with the real Java client (kafka-clients 4.3.1, classic group protocol), through
tests/java/src/GroupMember.java: commit and resume, members joining and leaving one at a time under the range,
round-robin and cooperative-sticky assignors, a member killed with kill -9 losing its partitions after its
session timeout, and a static member (group.instance.id) restarting without a rebalance.

The broker runs with group.initial.rebalance.delay.ms=0 and group.min.session.timeout.ms=1000 so that
rebalances and expiry are quick; every expectation was checked against Apache Kafka (RUNNEL_TEST_TARGET=kafka)."""

from __future__ import annotations

import time
import uuid

import pytest

from group_helpers import (JavaMembers, committed, end_offsets, module_broker, produce, records_by_member,
                           wait_checked)
from helpers import create_topic, unique_topic, wait_until

pytestmark = pytest.mark.java

PARTS = 6
ASSIGNORS = {
    "range": "org.apache.kafka.clients.consumer.RangeAssignor",
    "roundrobin": "org.apache.kafka.clients.consumer.RoundRobinAssignor",
    "cooperative-sticky": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
}


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory):
    yield from module_broker(tmp_path_factory)


@pytest.fixture
def jvms(tmp_path):
    """Factory for GroupMember JVMs; all are stopped (or already killed) at the end of the test."""
    started: list[JavaMembers] = []

    def make(bootstrap, topic, group, label):
        jm = JavaMembers(bootstrap, topic, group, tmp_path, label)
        started.append(jm)
        return jm

    yield make
    for jm in started:
        jm.stop()


def group_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def check_generations(events):
    """Within each generation no partition is assigned to two members, and every record a member consumed in
    generation g is from a partition it was assigned in g and was consumed by no other member in g."""
    owners = {}
    for e in events:
        if e.kind != "ASSIGNED":
            continue
        for p in e.all:
            prev = owners.setdefault((e.gen, p), e.name)
            assert prev == e.name, f"generation {e.gen}: partition {p} assigned to both {prev} and {e.name}"
    assigned_in = {(e.name, e.gen): e.all for e in events if e.kind == "ASSIGNED"}
    for e in events:
        if e.kind == "REC":
            p, o, _ = e.record
            assert (e.name, e.gen) in assigned_in, f"{e.name} consumed {p}@{o} in generation {e.gen} " \
                                                  f"without an assignment in that generation"
            assert p in assigned_in[(e.name, e.gen)], \
                f"{e.name} consumed {p}@{o} in generation {e.gen} but was assigned {sorted(assigned_in[(e.name, e.gen)])}"
    for (p, o), who in records_by_member(events).items():
        by_gen = {}
        for name, gen in who:
            prev = by_gen.setdefault(gen, name)
            assert prev == name, f"record {p}@{o} consumed by both {prev} and {name} in generation {gen}"


def settle(jm_list, live: dict, after_gen: int, timeout=60.0):
    """Wait until the members in `live` ({name: JavaMembers}) all report their latest assignment in one
    generation newer than after_gen, together covering every partition exactly once; returns (gen, {name: parts})."""
    def cond():
        last = {n: jm.last_assigned(n) for n, jm in live.items()}
        if any(e is None for e in last.values()):
            return None
        gens = {e.gen for e in last.values()}
        if len(gens) != 1 or min(gens) <= after_gen:
            return None
        owned = sorted(p for e in last.values() for p in e.all)
        if owned != list(range(PARTS)):
            return None
        return gens.pop(), {n: e.all for n, e in last.items()}

    try:
        return wait_checked(cond, lambda: [jm.check() for jm in jm_list], timeout,
                            f"one generation after {after_gen} where {sorted(live)} cover partitions "
                            f"0..{PARTS - 1} exactly once")
    except AssertionError as e:
        raise AssertionError(f"{e}\n" + "\n".join(jm.diagnostics() for jm in jm_list)) from None


def wait_consumed(jm_list, produced: dict, timeout=60.0, by=None):
    """Wait until every (partition, offset) in `produced` was consumed (by a member named in `by`, if given)."""
    def cond():
        seen = set()
        for jm in jm_list:
            for e in jm.snapshot("REC"):
                if by is None or e.name in by:
                    p, o, v = e.record
                    assert produced.get((p, o), v) == v, f"{e.name} read {v!r} at {p}@{o}, " \
                                                         f"produced {produced[(p, o)]!r}"
                    seen.add((p, o))
        missing = set(produced) - seen
        return not missing or None
    try:
        wait_checked(cond, lambda: [jm.check() for jm in jm_list], timeout, f"{len(produced)} records consumed")
    except AssertionError as e:
        raise AssertionError(f"{e}\n" + "\n".join(jm.diagnostics() for jm in jm_list)) from None


def test_java_commit_close_and_resume(gbroker, tmp_path, jvms):
    """subscribe, poll, commitSync, close; a new consumer of the group starts exactly at the committed offsets."""
    topic, group = unique_topic("java-resume"), group_name("java-resume")
    create_topic(gbroker.bootstrap, topic, 2)
    first = produce(gbroker.bootstrap, topic, 2, 10, "a")
    jm = jvms(gbroker.bootstrap, topic, group, "resume")
    jm.add("c1")
    wait_consumed([jm], first)
    jm.close_member("c1")
    jm.wait_event(lambda e: e.kind == "CLOSED" and e.name == "c1", 30, "c1 closed")
    assert committed(gbroker.bootstrap, group, topic, 2) == {0: 10, 1: 10}

    second = produce(gbroker.bootstrap, topic, 2, 10, "b")
    assert min(o for _, o in second) == 10
    jm.add("c2")
    wait_consumed([jm], second, by={"c2"})
    c2 = [e.record for e in jm.snapshot("REC", "c2")]
    assert min(o for _, o, _ in c2) == 10, f"c2 re-read records before the committed offset: {sorted(c2)[:5]}"
    assert sorted((p, o) for p, o, _ in c2) == sorted(second), "c2 read each new record exactly once"
    jm.close_member("c2")
    jm.wait_event(lambda e: e.kind == "CLOSED" and e.name == "c2", 30, "c2 closed")
    assert committed(gbroker.bootstrap, group, topic, 2) == {0: 20, 1: 20}


@pytest.mark.parametrize("assignor", list(ASSIGNORS))
def test_java_members_join_and_leave_one_at_a_time(gbroker, tmp_path, jvms, assignor):
    """Three consumers join one at a time, then leave one at a time, on a 6-partition topic. After each change
    the members of the new generation cover every partition exactly once, no record is consumed by two members
    in one generation, and every record is consumed; at the end the group's committed offsets are the log ends."""
    topic, group = unique_topic(f"java-{assignor}"), group_name(f"java-{assignor}")
    create_topic(gbroker.bootstrap, topic, PARTS)
    jm = jvms(gbroker.bootstrap, topic, group, f"members-{assignor}")
    conf = {"partition.assignment.strategy": ASSIGNORS[assignor], "session.timeout.ms": 6000}
    produced: dict = {}
    gen = 0
    live: dict = {}
    history = []
    steps = [("add", "c1"), ("add", "c2"), ("add", "c3"), ("close", "c3"), ("close", "c2")]
    for i, (action, name) in enumerate(steps):
        batch = produce(gbroker.bootstrap, topic, PARTS, 5, f"s{i}")
        produced.update(batch)
        if action == "add":
            jm.add(name, **conf)
            live[name] = jm
        else:
            jm.close_member(name)
            del live[name]
            jm.wait_event(lambda e, n=name: e.kind == "CLOSED" and e.name == n, 30, f"{name} closed")
        gen, owned = settle([jm], live, gen)
        history.append((action, name, gen, {n: sorted(p) for n, p in owned.items()}))
        assert all(owned.values()) or len(live) > PARTS, f"a member without partitions: {owned}"
        wait_consumed([jm], produced)
        check_generations(jm.snapshot())
    before_last_close = jm.snapshot()
    jm.close_member("c1")
    jm.wait_event(lambda e: e.kind == "CLOSED" and e.name == "c1", 30, "c1 closed")
    check_generations(jm.snapshot())
    assert [len(h[3]) for h in history] == [1, 2, 3, 2, 1], history
    gens = [h[2] for h in history]
    assert gens == sorted(set(gens)), f"generations did not increase with each change: {history}"
    ends = end_offsets(gbroker.bootstrap, topic, PARTS)
    assert ends == {p: 25 for p in range(PARTS)}
    assert committed(gbroker.bootstrap, group, topic, PARTS) == ends
    if assignor == "cooperative-sticky":
        # incremental: while it stays in the group, c1 only ever gives up some of its partitions
        revoked = [e for e in before_last_close if e.kind == "REVOKED" and e.name == "c1"]
        assert revoked and all(len(e.parts(0)) < PARTS for e in revoked), \
            f"cooperative-sticky revoked everything from c1: {revoked}"


def test_java_killed_member_loses_partitions_after_session_timeout(gbroker, tmp_path, jvms):
    """A member whose JVM is killed with kill -9 (no LeaveGroup) keeps its partitions until its session times
    out; then the surviving member gets all of them and consumes what is produced there."""
    session_ms = 4000
    topic, group = unique_topic("java-kill"), group_name("java-kill")
    create_topic(gbroker.bootstrap, topic, PARTS)
    a = jvms(gbroker.bootstrap, topic, group, "survivor")
    b = jvms(gbroker.bootstrap, topic, group, "victim")
    conf = {"session.timeout.ms": session_ms, "heartbeat.interval.ms": 300}
    a.add("a1", **conf)
    gen, _ = settle([a], {"a1": a}, 0)
    b.add("b1", **conf)
    gen, owned = settle([a, b], {"a1": a, "b1": b}, gen)
    assert owned["a1"] and owned["b1"], owned
    before = produce(gbroker.bootstrap, topic, PARTS, 3, "before")
    wait_consumed([a, b], before)

    a_events_before = len(a.snapshot())
    t_kill = time.monotonic()
    b.kill9()
    gen2, owned2 = settle([a], {"a1": a}, gen, timeout=session_ms / 1000 + 30)
    took = a.last_assigned("a1").t - t_kill
    assert owned2 == {"a1": frozenset(range(PARTS))}
    # the session (4 s) counts from b1's last heartbeat, at most one heartbeat interval before the kill
    assert took >= session_ms / 1000 - 1.0, f"b1's partitions moved {took:.2f}s after kill -9, before its " \
                                              f"{session_ms} ms session could expire"
    assert took <= session_ms / 1000 + 20, f"b1's partitions moved only {took:.2f}s after kill -9"
    changes = [e for e in a.snapshot()[a_events_before:] if e.kind in ("ASSIGNED", "REVOKED", "LOST")]
    early = [e for e in changes if e.t - t_kill < session_ms / 1000 - 1.0]
    assert not early, f"a1's assignment changed before b1's session expired: {early}"

    after = produce(gbroker.bootstrap, topic, PARTS, 3, "after")
    wait_consumed([a], after, by={"a1"})
    check_generations(a.snapshot() + b.snapshot())


def test_java_static_member_restarts_without_rebalance(gbroker, tmp_path, jvms):
    """A static member (group.instance.id) killed with kill -9 and restarted within its session timeout gets
    its old partitions back in the same generation; the other member sees no rebalance at all."""
    topic, group = unique_topic("java-static"), group_name("java-static")
    instance = f"static-{uuid.uuid4().hex[:6]}"
    create_topic(gbroker.bootstrap, topic, PARTS)
    conf = {"session.timeout.ms": 30000, "heartbeat.interval.ms": 300}
    a = jvms(gbroker.bootstrap, topic, group, "dynamic")
    a.add("a1", **conf)  # first member: the group leader
    gen, _ = settle([a], {"a1": a}, 0)
    b = jvms(gbroker.bootstrap, topic, group, "static-1")
    b.add("s1", group__instance__id=instance, **conf)
    gen, owned = settle([a, b], {"a1": a, "s1": b}, gen)
    first = produce(gbroker.bootstrap, topic, PARTS, 3, "one")
    wait_consumed([a, b], first)
    old_member_id = b.last_assigned("s1").member_id

    a_before = len(a.snapshot())
    b.kill9()
    b2 = jvms(gbroker.bootstrap, topic, group, "static-2")
    b2.add("s1", group__instance__id=instance, **conf)
    back = b2.wait_event(lambda e: e.kind == "ASSIGNED" and e.name == "s1", 40, "the restarted static member's "
                                                                                  "assignment")
    assert back.gen == gen, f"the static member came back in generation {back.gen}, not {gen}: a rebalance"
    assert back.all == owned["s1"], f"the static member got {sorted(back.all)} back, had {sorted(owned['s1'])}"
    assert back.member_id != old_member_id, "the restarted static member should get a new member id"

    second = produce(gbroker.bootstrap, topic, PARTS, 3, "two")
    wait_consumed([a, b2], second)
    for (p, o) in second:
        owner = "a1" if p in owned["a1"] else "s1"
        jm = a if owner == "a1" else b2
        assert any(e.record[:2] == (p, o) for e in jm.snapshot("REC", owner)), f"{p}@{o} not read by {owner}"
    # Let a1 heartbeat a few more times: a rebalance would reach it as REBALANCE_IN_PROGRESS by now.
    wait_until(lambda: time.monotonic() - back.t > 2.0, 5, "2 s after the static rejoin")
    changes = [e for e in a.snapshot()[a_before:] if e.kind in ("ASSIGNED", "REVOKED", "LOST")]
    assert not changes, f"the other member saw a rebalance when the static member restarted: {changes}"
    assert {e.gen for e in a.snapshot("REC")[-3:]} == {gen}
    check_generations(a.snapshot() + b.snapshot() + b2.snapshot())
