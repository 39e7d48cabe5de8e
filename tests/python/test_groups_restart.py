"""Committed offsets and group metadata survive a broker restart: every offset acknowledged before a kill -9
is there afterwards (with its metadata), the last of repeated commits wins, deleted groups and offsets stay
deleted, a consumer resumes at the committed offsets, a Stable group keeps its member; then the same after a
clean (SIGTERM) restart. Checked against Apache Kafka too (RUNNEL_TEST_TARGET=kafka)."""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer

from group_helpers import (GROUP_SETTINGS, GroupConn, assignment, committed, err_name, produce, subscription,
                           wait_coordinator)
from helpers import admin, create_topic, unique_topic, wait_until

PARTS = 4
N_SIMPLE = 12


def fetch_all(bootstrap, groups, topic, timeout=60.0):
    """{group: {partition: (offset, metadata)}} through OffsetFetch v5, waiting out COORDINATOR_LOAD_IN_PROGRESS
    and the like after a restart."""
    out = {}
    with GroupConn(bootstrap) as c:
        for g in groups:
            def one():
                err, offs = c.fetch_offsets(g, {topic: list(range(PARTS))})
                if err != 0 or any(e != 0 for _, _, e in offs.values()):
                    return None
                return {p: (o, m) for (_, p), (o, m, _) in offs.items()}
            out[g] = wait_until(one, timeout, f"OffsetFetch of {g} without errors")
    return out


def consume_group(bootstrap, topic, group, expected: dict, timeout=60.0):
    """Subscribe as a new member, read until `expected` ({(partition, offset): value}) is all there, commit,
    close; returns everything read."""
    import time
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 300})
    got = {}
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + timeout
        while not set(expected) <= set(got):
            assert time.monotonic() < deadline, f"{group} read {len(got)} of {len(expected)} records in {timeout}s"
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            got[(m.partition(), m.offset())] = m.value().decode()
        c.commit(asynchronous=False)
    finally:
        c.close()
    return got


def test_offsets_and_groups_survive_kill9_and_clean_restart(start_broker):
    b = start_broker(GROUP_SETTINGS)
    topic = unique_topic("group-restart")
    create_topic(b.bootstrap, topic, PARTS)
    wait_coordinator(b.bootstrap, "group-restart")
    first = produce(b.bootstrap, topic, PARTS, 10, "a")
    run = uuid.uuid4().hex[:6]

    # 1. many "simple" groups (generation -1), each with its own offsets and metadata
    simple = [f"simple-{run}-{i}" for i in range(N_SIMPLE)]
    expected = {g: {p: ((i * 7 + p) % 11, f"md-{i}-{p}") for p in range(PARTS)} for i, g in enumerate(simple)}
    with GroupConn(b.bootstrap) as c:
        for g, offs in expected.items():
            for p, (o, md) in offs.items():
                codes = c.commit(g, -1, "", {(topic, p): o}, metadata=md)
                assert codes == {(topic, p): 0}, f"commit {g}: {codes}"
        # 2. one partition committed 30 times in a row: the last one wins
        overwritten = f"overwritten-{run}"
        for k in range(1, 31):
            assert c.commit(overwritten, -1, "", {(topic, 0): k}, metadata=f"k{k}") == {(topic, 0): 0}
        expected[overwritten] = {0: (30, "k30"), 1: (-1, ""), 2: (-1, ""), 3: (-1, "")}
        # 3. offsets deleted with OffsetDelete stay deleted
        trimmed = f"trimmed-{run}"
        assert set(c.commit(trimmed, -1, "", {(topic, p): 5 for p in range(PARTS)}).values()) == {0}
        err, codes = c.offset_delete(trimmed, {topic: [1, 3]})
        assert err == 0 and set(codes.values()) == {0}, (err_name(err), codes)
        expected[trimmed] = {0: (5, ""), 1: (-1, ""), 2: (5, ""), 3: (-1, "")}
    # 4. a group deleted with DeleteGroups stays deleted
    deleted = f"deleted-{run}"
    with GroupConn(b.bootstrap) as c:
        assert set(c.commit(deleted, -1, "", {(topic, p): 9 for p in range(PARTS)}).values()) == {0}
    a = admin(b.bootstrap)  # keep the client alive until its futures complete
    a.delete_consumer_groups([deleted], request_timeout=15)[deleted].result(15)
    expected[deleted] = {p: (-1, "") for p in range(PARTS)}
    # 5. a real consumer group that read everything and committed, then closed
    consumer_group = f"consumers-{run}"
    assert consume_group(b.bootstrap, topic, consumer_group, first) == first
    expected[consumer_group] = {p: (10, "") for p in range(PARTS)}
    # 6. a Stable group whose member is still there at the kill
    stable = f"stable-{run}"
    member = GroupConn(b.bootstrap, client_id="stable-member")
    j = member.join_new(stable, protocols=[("range", subscription([topic]))], session_ms=120000)
    assert j["error"] == 0, err_name(j["error"])
    mid, gen = j["member_id"], j["generation"]
    given = assignment({topic: list(range(PARTS))})
    assert member.sync(stable, gen, mid, [(mid, given)])["error"] == 0
    assert set(member.commit(stable, gen, mid, {(topic, p): 2 for p in range(PARTS)}).values()) == {0}
    member.close()
    expected[stable] = {p: (2, "") for p in range(PARTS)}

    assert fetch_all(b.bootstrap, expected, topic) == expected, "before any restart"

    b.kill9()
    b.restart()
    assert fetch_all(b.bootstrap, expected, topic) == expected, "after kill -9"
    with GroupConn(b.bootstrap) as c:
        d = c.describe(stable)
        assert (d["state"], d["protocol"], [(m[0], m[5]) for m in d["members"]]) == ("Stable", "range", [(mid, given)]), \
            f"the Stable group after kill -9: {d}"
        assert c.heartbeat(stable, gen, mid) == 0, "the member of the Stable group after kill -9"
        assert c.describe(deleted)["state"] == "Dead"
    a = admin(b.bootstrap)
    listed = {g.group_id for g in a.list_consumer_groups(request_timeout=15).result(15).valid}
    assert deleted not in listed and consumer_group in listed and stable in listed, listed

    # the consumer group resumes where it committed: only the new records
    second = produce(b.bootstrap, topic, PARTS, 5, "b")
    assert consume_group(b.bootstrap, topic, consumer_group, second) == second
    expected[consumer_group] = {p: (15, "") for p in range(PARTS)}
    with GroupConn(b.bootstrap) as c:
        assert c.commit(simple[0], -1, "", {(topic, 0): 99}, metadata="late") == {(topic, 0): 0}
    expected[simple[0]][0] = (99, "late")

    b.restart()  # SIGTERM, then start again
    assert fetch_all(b.bootstrap, expected, topic) == expected, "after a clean restart"
    assert committed(b.bootstrap, consumer_group, topic, PARTS) == {p: 15 for p in range(PARTS)}
