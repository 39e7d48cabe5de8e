"""Group APIs over raw sockets, beyond the clients' usual paths: the MEMBER_ID_REQUIRED round trip by JoinGroup
version, LeaveGroup v0-v2, ListGroups v4 state filter and v5 type filter, OffsetFetch v8 for several groups at
once, OffsetDelete and OffsetCommit edge cases. Every expectation is what Apache Kafka 4.3 answers (checked with
RUNNEL_TEST_TARGET=kafka)."""

from __future__ import annotations

import threading
import uuid

import pytest

import wire
from group_helpers import (ERR_MEMBER_ID_REQUIRED, ERR_UNKNOWN_MEMBER_ID, GROUP_SETTINGS, GroupConn, assignment,
                           err_name, module_broker, subscription, wait_coordinator)
from helpers import create_topic, unique_topic, wait_until

ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_OFFSET_METADATA_TOO_LARGE = 12
ERR_GROUP_ID_NOT_FOUND = 69
ERR_GROUP_SUBSCRIBED_TO_TOPIC = 86
ERR_GROUP_MAX_SIZE_REACHED = 81


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory):
    yield from module_broker(tmp_path_factory)


@pytest.fixture(scope="module")
def gtopic(gbroker):
    t = unique_topic("group-wire")
    create_topic(gbroker.bootstrap, t, 2)
    wait_coordinator(gbroker.bootstrap, "group-wire")
    return t


@pytest.fixture
def run():
    return uuid.uuid4().hex[:8]


# ---------------------------------------------------------------- flexible encodings for ListGroups / OffsetFetch v8

def carr(items):
    return wire.uvarint(len(items) + 1) + b"".join(items)


def read_uvarint(r):
    shift = n = 0
    while True:
        b = r.take(1)[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n


def read_cstr(r):
    n = read_uvarint(r)
    return None if n == 0 else r.take(n - 1).decode()


def flexible_call(bootstrap, api, version, body):
    with wire.connect(bootstrap) as s:
        s.sendall(wire.request(api, version, 77, body, flexible_header=True))
        data = wire.recv_frame(s)
        assert data is not None, f"api {api} v{version}: connection closed"
        r = wire.Reader(data)
        assert r.i32() == 77
        read_uvarint(r)  # response header tags
        return r


def list_groups(broker, version, states=(), types=None):
    """ListGroups v4/v5 asked of every broker of the cluster, as an admin client does (each lists the groups
    it coordinates): (first error or 0, {group: (protocol type, state, group type or None)})."""
    err, groups = 0, {}
    for _, host, port in broker.nodes:
        e, g = list_groups_of(f"{host}:{port}", version, states, types)
        err = err or e
        groups.update(g)
    return err, groups


def list_groups_of(bootstrap, version, states=(), types=None):
    """ListGroups v4/v5 of one broker: (error, {group: (protocol type, state, group type or None)})."""
    body = carr([wire.compact_string(s) for s in states])
    if version >= 5:
        body += carr([wire.compact_string(t) for t in types or []])
    r = flexible_call(bootstrap, 16, version, body + wire.uvarint(0))
    r.i32()
    err = r.i16()
    out = {}
    for _ in range(read_uvarint(r) - 1):
        gid, ptype, state = read_cstr(r), read_cstr(r), read_cstr(r)
        gtype = read_cstr(r) if version >= 5 else None
        read_uvarint(r)
        out[gid] = (ptype, state, gtype)
    return err, out


def offset_fetch_v8(bootstrap, groups):
    """groups: [(group, {topic: [partitions]} or None)] -> {group: (error, {(topic, partition): (offset, metadata,
    error)})}."""
    gs = []
    for g, topics in groups:
        tb = wire.uvarint(0) if topics is None else carr(
            [wire.compact_string(t) + carr([wire.i32(p) for p in ps]) + wire.uvarint(0) for t, ps in topics.items()])
        gs.append(wire.compact_string(g) + tb + wire.uvarint(0))
    r = flexible_call(bootstrap, 9, 8, carr(gs) + wire.i8(0) + wire.uvarint(0))
    r.i32()
    out = {}
    for _ in range(read_uvarint(r) - 1):
        g = read_cstr(r)
        offs = {}
        for _ in range(read_uvarint(r) - 1):
            t = read_cstr(r)
            for _ in range(read_uvarint(r) - 1):
                p, o = r.i32(), r.i64()
                r.i32()
                m, e = read_cstr(r), r.i16()
                read_uvarint(r)
                offs[(t, p)] = (o, m, e)
            read_uvarint(r)
        err = r.i16()
        read_uvarint(r)
        out[g] = (err, offs)
    return out


def stable_group(bootstrap, topic, group):
    """A Stable one-member group subscribed to topic; returns (conn, member id, generation)."""
    c = GroupConn(bootstrap)
    j = c.join_new(group, protocols=[("range", subscription([topic]))], session_ms=60000)
    assert j["error"] == 0, err_name(j["error"])
    s = c.sync(group, j["generation"], j["member_id"], [(j["member_id"], assignment({topic: [0, 1]}))])
    assert s["error"] == 0
    return c, j["member_id"], j["generation"]


# ---------------------------------------------------------------- tests

def join_body(version, group, sub):
    body = wire.string(group) + wire.i32(10000)
    if version >= 1:
        body += wire.i32(10000)
    body += wire.string("")
    if version >= 5:
        body += wire.string(None)
    return body + wire.string("consumer") + wire.i32(1) + wire.string("range") + wire.nbytes(sub)


@pytest.mark.parametrize("version", [0, 1, 3, 4, 5])
def test_member_id_required_from_join_group_v4(gbroker, gtopic, run, version):
    """JoinGroup v0-v3 without a member id joins at once; v4+ first answers MEMBER_ID_REQUIRED with an id."""
    with GroupConn(gbroker.bootstrap) as c:
        group = f"v{version}-{run}"
        r = c.call(11, version, join_body(version, group, subscription([gtopic])), group=group)
        if version >= 2:
            r.i32()
        err, gen = r.i16(), r.i32()
        protocol, leader, member = r.string(), r.string(), r.string()
        if version >= 4:
            assert (err, gen) == (ERR_MEMBER_ID_REQUIRED, -1), err_name(err)
            assert member, "MEMBER_ID_REQUIRED without a member id"
        else:
            assert (err, gen, protocol) == (0, 1, "range"), err_name(err)
            assert member and leader == member


@pytest.mark.parametrize("version", [0, 1, 2])
def test_leave_group_v0_to_v2_unknown_member(gbroker, gtopic, run, version):
    c, mid, gen = stable_group(gbroker.bootstrap, gtopic, f"leave-{run}")
    try:
        r = c.call(13, version, wire.string(f"leave-{run}") + wire.string("not-a-member"), group=f"leave-{run}")
        if version >= 1:
            r.i32()
        assert r.i16() == ERR_UNKNOWN_MEMBER_ID
        assert c.heartbeat(f"leave-{run}", gen, mid) == 0, "the group's member was disturbed"
        r = c.call(13, version, wire.string(f"leave-{run}") + wire.string(mid), group=f"leave-{run}")
        if version >= 1:
            r.i32()
        assert r.i16() == 0
        assert c.describe(f"leave-{run}")["state"] == "Empty"
    finally:
        c.close()


def test_list_groups_state_and_type_filters(gbroker, gtopic, run):
    stable, simple = f"stable-{run}", f"simple-{run}"
    c, _, _ = stable_group(gbroker.bootstrap, gtopic, stable)
    try:
        assert c.commit(simple, -1, "", {(gtopic, 0): 1}) == {(gtopic, 0): 0}

        def mine(res):
            err, groups = res
            assert err == 0, err_name(err)
            return {g: v for g, v in groups.items() if g in (stable, simple)}
        assert mine(list_groups(gbroker, 4)) == {stable: ("consumer", "Stable", None),
                                                          simple: ("", "Empty", None)}
        assert mine(list_groups(gbroker, 4, ["Stable"])) == {stable: ("consumer", "Stable", None)}
        assert mine(list_groups(gbroker, 4, ["stable"])) == {stable: ("consumer", "Stable", None)}, \
            "the state filter ignores case"
        assert mine(list_groups(gbroker, 4, ["Empty"])) == {simple: ("", "Empty", None)}
        assert mine(list_groups(gbroker, 4, ["Dead", "PreparingRebalance"])) == {}
        both = {stable: ("consumer", "Stable", "classic"), simple: ("", "Empty", "classic")}
        assert mine(list_groups(gbroker, 5)) == both
        assert mine(list_groups(gbroker, 5, [], ["classic"])) == both
        assert mine(list_groups(gbroker, 5, [], ["Classic"])) == both, "the type filter ignores case"
        assert mine(list_groups(gbroker, 5, [], ["consumer"])) == {}
    finally:
        c.close()


def groups_of_one_coordinator(conn, names):
    """The names, each suffixed until its group has the first one's coordinator (an admin client sends one
    OffsetFetch per coordinator); returns (coordinator, names)."""
    coordinator = conn.coordinator(names[0])
    out = [names[0]]
    for name in names[1:]:
        candidates = (f"{name}-{i}" for i in range(1000))
        out.append(next(n for n in candidates if conn.coordinator(n) == coordinator))
    return coordinator, out


def test_offset_fetch_v8_several_groups(gbroker, gtopic, run):
    with GroupConn(gbroker.bootstrap) as c:
        coordinator, (m0, m1, none, none2) = groups_of_one_coordinator(
            c, [f"m0-{run}", f"m1-{run}", f"none-{run}", f"none2-{run}"])
        for i, g in enumerate([m0, m1]):
            assert set(c.commit(g, -1, "", {(gtopic, 0): 10 + i, (gtopic, 1): 20 + i},
                                metadata=f"md{i}").values()) == {0}
    got = offset_fetch_v8(coordinator, [(m0, {gtopic: [0, 1]}), (m1, None), (none, {gtopic: [0]}), (none2, None)])
    assert got == {
        m0: (0, {(gtopic, 0): (10, "md0", 0), (gtopic, 1): (20, "md0", 0)}),
        m1: (0, {(gtopic, 0): (11, "md1", 0), (gtopic, 1): (21, "md1", 0)}),
        none: (0, {(gtopic, 0): (-1, "", 0)}),
        none2: (0, {}),
    }


def test_offset_delete(gbroker, gtopic, run):
    stable, simple = f"stable-{run}", f"simple-{run}"
    c, mid, gen = stable_group(gbroker.bootstrap, gtopic, stable)
    try:
        assert set(c.commit(stable, gen, mid, {(gtopic, 0): 3, (gtopic, 1): 3}).values()) == {0}
        assert set(c.commit(simple, -1, "", {(gtopic, 0): 5, (gtopic, 1): 6}).values()) == {0}
        assert c.offset_delete(stable, {gtopic: [0]}) == (0, {(gtopic, 0): ERR_GROUP_SUBSCRIBED_TO_TOPIC})
        assert c.offset_delete(f"missing-{run}", {gtopic: [0]}) == (ERR_GROUP_ID_NOT_FOUND, {})
        assert c.offset_delete(simple, {gtopic: [0]}) == (0, {(gtopic, 0): 0})
        assert c.fetch_offsets(simple, {gtopic: [0, 1]}) == (0, {(gtopic, 0): (-1, "", 0), (gtopic, 1): (6, "", 0)})
        assert c.fetch_offsets(stable, {gtopic: [0, 1]}) == (0, {(gtopic, 0): (3, "", 0), (gtopic, 1): (3, "", 0)})
    finally:
        c.close()


def test_offset_delete_unknown_topic_or_partition(gbroker, gtopic, run):
    """OffsetDelete names a topic that does not exist / a partition past the end: UNKNOWN_TOPIC_OR_PARTITION."""
    simple = f"simple-{run}"
    with GroupConn(gbroker.bootstrap) as c:
        assert set(c.commit(simple, -1, "", {(gtopic, 0): 5}).values()) == {0}
        err, codes = c.offset_delete(simple, {f"no-such-topic-{run}": [0]})
        assert (err, codes) == (0, {(f"no-such-topic-{run}", 0): ERR_UNKNOWN_TOPIC_OR_PARTITION}), \
            (err_name(err), {k: err_name(v) for k, v in codes.items()})
        err, codes = c.offset_delete(simple, {gtopic: [7]})
        assert (err, codes) == (0, {(gtopic, 7): ERR_UNKNOWN_TOPIC_OR_PARTITION}), \
            (err_name(err), {k: err_name(v) for k, v in codes.items()})
        assert c.fetch_offsets(simple, {gtopic: [0]}) == (0, {(gtopic, 0): (5, "", 0)})


def test_offset_commit_edge_cases(gbroker, gtopic, run):
    simple = f"simple-{run}"
    with GroupConn(gbroker.bootstrap) as c:
        assert c.commit(simple, -1, "", {(gtopic, 0): 1}, metadata="x" * 5000) == \
            {(gtopic, 0): ERR_OFFSET_METADATA_TOO_LARGE}, "offset.metadata.max.bytes is 4096"
        assert c.commit(simple, -1, "", {(gtopic, 9): 1, (f"no-such-topic-{run}", 0): 1}) == \
            {(gtopic, 9): ERR_UNKNOWN_TOPIC_OR_PARTITION, (f"no-such-topic-{run}", 0): ERR_UNKNOWN_TOPIC_OR_PARTITION}
        # Kafka stores a negative offset as given
        assert c.commit(simple, -1, "", {(gtopic, 0): -5}) == {(gtopic, 0): 0}
        assert c.fetch_offsets(simple, {gtopic: [0]}) == (0, {(gtopic, 0): (-5, "", 0)})
        assert c.commit(simple, -1, "", {(gtopic, 1): 4}, metadata="x" * 4096) == {(gtopic, 1): 0}
        assert c.fetch_offsets(simple, {gtopic: [1]}) == (0, {(gtopic, 1): (4, "x" * 4096, 0)})


def test_group_max_size(start_broker):
    """group.max.size=2: a third member is refused with GROUP_MAX_SIZE_REACHED (81) at its first JoinGroup,
    dynamic (before any MEMBER_ID_REQUIRED) or static; the two members are undisturbed."""
    b = start_broker({**GROUP_SETTINGS, "group.max.size": "2"})
    topic, group = unique_topic("max-size"), f"max-size-{uuid.uuid4().hex[:8]}"
    create_topic(b.bootstrap, topic, 2)
    wait_coordinator(b.bootstrap, group)
    kw = {"protocols": [("range", subscription([topic]))], "session_ms": 30000, "rebalance_ms": 10000}
    conns = [GroupConn(b.bootstrap, n) for n in ("a", "b", "c", "d")]
    try:
        a = conns[0].join_new(group, **kw)
        assert a["error"] == 0
        res = {}
        th = threading.Thread(target=lambda: res.setdefault("b", conns[1].join_new(group, **kw)))
        th.start()
        wait_until(lambda: conns[3].describe(group)["state"] == "PreparingRebalance", 10, "b's join rebalancing")
        a = conns[0].join(group, member_id=a["member_id"], **kw)
        th.join(30)
        assert a["error"] == 0 and res["b"]["error"] == 0 and a["generation"] == res["b"]["generation"]
        gen = a["generation"]
        th = threading.Thread(target=lambda: res.setdefault("bs", conns[1].sync(group, gen, res["b"]["member_id"], [])))
        th.start()
        assert conns[0].sync(group, gen, a["member_id"], [])["error"] == 0
        th.join(30)
        assert res["bs"]["error"] == 0
        c = conns[2].join(group, **kw)
        assert (c["error"], c["member_id"]) == (ERR_GROUP_MAX_SIZE_REACHED, ""), err_name(c["error"])
        d = conns[3].join(group, instance_id="static-d", **kw)
        assert d["error"] == ERR_GROUP_MAX_SIZE_REACHED, err_name(d["error"])
        desc = conns[3].describe(group)
        assert desc["state"] == "Stable" and len(desc["members"]) == 2
        assert conns[0].heartbeat(group, gen, a["member_id"]) == 0
    finally:
        for c in conns:
            c.close()
