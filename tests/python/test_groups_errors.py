"""Bad group-protocol input over raw sockets (JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v3,
OffsetCommit v7, OffsetFetch v5, DescribeGroups v4): the error codes, and a live group left unharmed.

Every expected code below is what Apache Kafka 4.3 answers (checked with RUNNEL_TEST_TARGET=kafka):
  * JoinGroup with an empty protocol list, an empty protocol type, or a protocol the group does not use:
    INCONSISTENT_GROUP_PROTOCOL (23); with a member id the group does not know: UNKNOWN_MEMBER_ID (25), also
    when the group does not exist (which it then still does not);
  * SyncGroup from a non-member, or for an unknown group: UNKNOWN_MEMBER_ID (25); wrong generation: 22;
  * OffsetCommit with a stale (or future) generation: ILLEGAL_GENERATION (22); unknown member: 25; an
    "admin" commit (generation -1) to a group that does not exist is accepted whatever the member id; during
    CompletingRebalance the member and generation checks come before REBALANCE_IN_PROGRESS (27);
  * Heartbeat for an unknown group or member: UNKNOWN_MEMBER_ID (25); stale generation: 22;
  * a group.instance.id the group does not know: UNKNOWN_MEMBER_ID (25); one that belongs to another member
    id: FENCED_INSTANCE_ID (82)."""

from __future__ import annotations

import threading
import uuid

import pytest

from group_helpers import (ERR_ILLEGAL_GENERATION, ERR_INCONSISTENT_GROUP_PROTOCOL, ERR_MEMBER_ID_REQUIRED,
                           ERR_REBALANCE_IN_PROGRESS, ERR_UNKNOWN_MEMBER_ID, GroupConn, assignment, err_name,
                           module_broker, subscription, wait_coordinator)
from helpers import admin, create_topic, unique_topic, wait_until

ERR_FENCED_INSTANCE_ID = 82
ERR_INVALID_GROUP_ID = 24
ERR_INVALID_SESSION_TIMEOUT = 26


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory):
    yield from module_broker(tmp_path_factory)


@pytest.fixture(scope="module")
def gtopic(gbroker):
    t = unique_topic("group-errors")
    create_topic(gbroker.bootstrap, t, 2)
    wait_coordinator(gbroker.bootstrap, "group-errors")
    return t


class LiveGroup:
    """A Stable group with one member (joined through MEMBER_ID_REQUIRED, synced with both partitions of the
    topic) that has committed 3 and 4 with metadata 'm'. instance_id makes it a static member."""

    def __init__(self, bootstrap, topic, instance_id=None):
        self.bootstrap, self.topic, self.instance_id = bootstrap, topic, instance_id
        self.group = f"errors-{uuid.uuid4().hex[:10]}"
        self.protocols = [("range", subscription([topic]))]
        self.conn = GroupConn(bootstrap, client_id="live-member")
        if instance_id is None:
            first = self.conn.join(self.group, protocols=self.protocols, session_ms=60000)
            assert first["error"] == ERR_MEMBER_ID_REQUIRED and first["member_id"], \
                f"a first JoinGroup v5 without member id: {first}"
            j = self.conn.join(self.group, member_id=first["member_id"], protocols=self.protocols, session_ms=60000)
            assert j["member_id"] == first["member_id"]
        else:
            j = self.conn.join(self.group, protocols=self.protocols, session_ms=60000, instance_id=instance_id)
        assert j["error"] == 0, f"JoinGroup: {err_name(j['error'])}"
        assert j["leader"] == j["member_id"] and len(j["members"]) == 1
        self.member_id, self.gen = j["member_id"], j["generation"]
        self.assignment = assignment({topic: [0, 1]})
        s = self.conn.sync(self.group, self.gen, self.member_id, [(self.member_id, self.assignment)],
                           instance_id=instance_id)
        assert s == {"error": 0, "assignment": self.assignment}, s
        codes = self.conn.commit(self.group, self.gen, self.member_id, {(topic, 0): 3, (topic, 1): 4},
                                 instance_id=instance_id, metadata="m")
        assert set(codes.values()) == {0}, codes

    def assert_unharmed(self):
        """Same member, generation, assignment and committed offsets; its heartbeat and commits still work."""
        assert self.conn.heartbeat(self.group, self.gen, self.member_id, self.instance_id) == 0
        with GroupConn(self.bootstrap) as o:
            d = o.describe(self.group)
            assert (d["error"], d["state"], d["protocol_type"], d["protocol"]) == (0, "Stable", "consumer", "range"), d
            assert [(m[0], m[1], m[5]) for m in d["members"]] == [(self.member_id, self.instance_id, self.assignment)]
            err, offs = o.fetch_offsets(self.group, {self.topic: [0, 1]})
            assert err == 0 and offs == {(self.topic, 0): (3, "m", 0), (self.topic, 1): (4, "m", 0)}, offs
        s = self.conn.sync(self.group, self.gen, self.member_id, [], instance_id=self.instance_id)
        assert s == {"error": 0, "assignment": self.assignment}, "a Stable member's SyncGroup returns its assignment"

    def close(self):
        self.conn.close()


@pytest.fixture
def live(gbroker, gtopic):
    lg = LiveGroup(gbroker.bootstrap, gtopic)
    yield lg
    lg.close()


@pytest.fixture
def live_static(gbroker, gtopic):
    lg = LiveGroup(gbroker.bootstrap, gtopic, instance_id=f"inst-{uuid.uuid4().hex[:6]}")
    yield lg
    lg.close()


def codes_of(d: dict) -> set:
    return set(d.values())


def test_join_with_empty_protocol_list(gbroker, live):
    with GroupConn(gbroker.bootstrap) as o:
        fresh = o.join(f"fresh-{uuid.uuid4().hex[:8]}", protocols=[])
        assert (fresh["error"], fresh["generation"]) == (ERR_INCONSISTENT_GROUP_PROTOCOL, -1), err_name(fresh["error"])
        r = o.join(live.group, protocols=[])
        assert (r["error"], r["generation"], r["members"]) == (ERR_INCONSISTENT_GROUP_PROTOCOL, -1, []), \
            err_name(r["error"])
        r = o.join(live.group, member_id=live.member_id, protocols=[])
        assert r["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL, err_name(r["error"])
        assert r["member_id"] == live.member_id
        r = o.join(live.group, protocol_type="", protocols=live.protocols)
        assert r["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL, f"empty protocol type: {err_name(r['error'])}"
        r = o.join(live.group, protocols=[("roundrobin", subscription([live.topic]))])
        assert r["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL, f"a protocol the group lacks: {err_name(r['error'])}"
        r = o.join(live.group, protocol_type="connect", protocols=live.protocols)
        assert r["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL, f"another protocol type: {err_name(r['error'])}"
    live.assert_unharmed()


def test_join_with_bad_group_id_or_session_timeout(gbroker, live):
    with GroupConn(gbroker.bootstrap) as o:
        assert o.join("", protocols=live.protocols)["error"] == ERR_INVALID_GROUP_ID
        r = o.join(live.group, protocols=live.protocols, session_ms=10)
        assert r["error"] == ERR_INVALID_SESSION_TIMEOUT, err_name(r["error"])
    live.assert_unharmed()


def test_join_with_unknown_member_id(gbroker, live):
    with GroupConn(gbroker.bootstrap) as o:
        r = o.join(live.group, member_id="not-a-member", protocols=live.protocols)
        assert r["error"] == ERR_UNKNOWN_MEMBER_ID, err_name(r["error"])
        r = o.join(live.group, member_id="not-a-member", protocols=[])
        assert r["error"] == ERR_INCONSISTENT_GROUP_PROTOCOL, err_name(r["error"])
    live.assert_unharmed()


def test_join_unknown_member_of_missing_group_creates_nothing(gbroker, gtopic):
    """An unknown member id for a group that does not exist: UNKNOWN_MEMBER_ID, and the group is not created
    (not described, not listed)."""
    group = f"missing-{uuid.uuid4().hex[:8]}"
    with GroupConn(gbroker.bootstrap) as o:
        r = o.join(group, member_id="not-a-member", protocols=[("range", subscription([gtopic]))])
        assert r["error"] == ERR_UNKNOWN_MEMBER_ID, err_name(r["error"])
        d = o.describe(group)
        assert (d["error"], d["state"], d["members"]) == (0, "Dead", []), f"the failed JoinGroup left a group: {d}"
    a = admin(gbroker.bootstrap)  # keep the client alive until its future completes
    listed = [g.group_id for g in a.list_consumer_groups(request_timeout=15).result(15).valid]
    assert group not in listed, "a failed JoinGroup left a group behind"


def test_join_unknown_member_of_missing_group_with_empty_protocols(gbroker):
    """Kafka looks the group up before it checks the protocols: UNKNOWN_MEMBER_ID, not
    INCONSISTENT_GROUP_PROTOCOL."""
    with GroupConn(gbroker.bootstrap) as o:
        r = o.join(f"missing-{uuid.uuid4().hex[:8]}", member_id="not-a-member", protocols=[])
        assert r["error"] == ERR_UNKNOWN_MEMBER_ID, err_name(r["error"])


def test_sync_from_non_member(gbroker, live):
    with GroupConn(gbroker.bootstrap) as o:
        r = o.sync(live.group, live.gen, "not-a-member", [("not-a-member", assignment({live.topic: [0, 1]}))])
        assert r == {"error": ERR_UNKNOWN_MEMBER_ID, "assignment": b""}, err_name(r["error"])
        r = o.sync(live.group, live.gen, "", [])
        assert r["error"] == ERR_UNKNOWN_MEMBER_ID, err_name(r["error"])
        r = o.sync(f"missing-{uuid.uuid4().hex[:8]}", 1, "not-a-member", [])
        assert r["error"] == ERR_UNKNOWN_MEMBER_ID, f"unknown group: {err_name(r['error'])}"
        r = o.sync(live.group, live.gen + 5, live.member_id, [])
        assert r["error"] == ERR_ILLEGAL_GENERATION, f"the member, a wrong generation: {err_name(r['error'])}"
    live.assert_unharmed()


def test_offset_commit_with_stale_generation(gbroker, live):
    t = live.topic
    assert live.gen >= 1
    with GroupConn(gbroker.bootstrap) as o:
        r = o.commit(live.group, live.gen - 1, live.member_id, {(t, 0): 9, (t, 1): 9})
        assert codes_of(r) == {ERR_ILLEGAL_GENERATION}, {k: err_name(v) for k, v in r.items()}
        r = o.commit(live.group, live.gen + 1, live.member_id, {(t, 0): 9})
        assert codes_of(r) == {ERR_ILLEGAL_GENERATION}, f"future generation: {r}"
        r = o.commit(live.group, live.gen, "not-a-member", {(t, 0): 9})
        assert codes_of(r) == {ERR_UNKNOWN_MEMBER_ID}, f"unknown member: {r}"
        r = o.commit(live.group, -1, "", {(t, 0): 9})
        assert codes_of(r) == {ERR_UNKNOWN_MEMBER_ID}, f"an admin commit to a group with members: {r}"
        r = o.commit(live.group, -1, live.member_id, {(t, 0): 9})
        assert codes_of(r) == {ERR_ILLEGAL_GENERATION}, f"generation -1 from the member: {r}"
    live.assert_unharmed()


def test_admin_commit_to_missing_group_with_member_id(gbroker, gtopic):
    """Generation -1 to a group that does not exist is a 'simple' commit, accepted whatever the member id."""
    group = f"simple-{uuid.uuid4().hex[:8]}"
    with GroupConn(gbroker.bootstrap) as o:
        r = o.commit(group, -1, "some-member", {(gtopic, 0): 7})
        assert codes_of(r) == {0}, {k: err_name(v) for k, v in r.items()}
        assert o.fetch_offsets(group, {gtopic: [0]}) == (0, {(gtopic, 0): (7, "", 0)})
        r = o.commit(f"missing-{uuid.uuid4().hex[:8]}", 3, "some-member", {(gtopic, 0): 7})
        assert codes_of(r) == {ERR_ILLEGAL_GENERATION}, f"a generation for a group that does not exist: {r}"


def test_heartbeat_for_unknown_group(gbroker, live):
    with GroupConn(gbroker.bootstrap) as o:
        missing = f"missing-{uuid.uuid4().hex[:8]}"
        assert o.heartbeat(missing, 1, "not-a-member") == ERR_UNKNOWN_MEMBER_ID
        assert o.heartbeat(missing, -1, "") == ERR_UNKNOWN_MEMBER_ID
        assert o.describe(missing)["state"] == "Dead", "a Heartbeat created a group"
        assert o.heartbeat(live.group, live.gen, "not-a-member") == ERR_UNKNOWN_MEMBER_ID
        assert o.heartbeat(live.group, live.gen - 1, live.member_id) == ERR_ILLEGAL_GENERATION
        err, members = o.leave(missing, [("not-a-member", None)])
        assert (err, members) == (0, [("not-a-member", None, ERR_UNKNOWN_MEMBER_ID)])
        err, members = o.leave(live.group, [("not-a-member", None)])
        assert (err, members) == (0, [("not-a-member", None, ERR_UNKNOWN_MEMBER_ID)])
    live.assert_unharmed()


@pytest.mark.parametrize("static", [False, True], ids=["dynamic-member", "static-member"])
def test_unknown_group_instance_id_is_unknown_member(gbroker, gtopic, static):
    """A group.instance.id the group does not know: UNKNOWN_MEMBER_ID (25), not FENCED_INSTANCE_ID (82)."""
    lg = LiveGroup(gbroker.bootstrap, gtopic, instance_id=f"inst-{uuid.uuid4().hex[:6]}" if static else None)
    try:
        with GroupConn(gbroker.bootstrap) as o:
            got = {
                "Heartbeat": o.heartbeat(lg.group, lg.gen, lg.member_id, instance_id="unknown-instance"),
                "SyncGroup": o.sync(lg.group, lg.gen, lg.member_id, [], instance_id="unknown-instance")["error"],
                "OffsetCommit": o.commit(lg.group, lg.gen, lg.member_id, {(gtopic, 0): 9},
                                         instance_id="unknown-instance")[(gtopic, 0)],
                "LeaveGroup": o.leave(lg.group, [(lg.member_id, "unknown-instance")])[1][0][2],
            }
            assert got == {k: ERR_UNKNOWN_MEMBER_ID for k in got}, {k: err_name(v) for k, v in got.items()}
        lg.assert_unharmed()
    finally:
        lg.close()


def test_instance_id_of_another_member_is_fenced(gbroker, live_static):
    """A known group.instance.id with a different member id: FENCED_INSTANCE_ID (82) from every API."""
    lg, t = live_static, live_static.topic
    inst = lg.instance_id
    with GroupConn(gbroker.bootstrap) as o:
        got = {
            "Heartbeat": o.heartbeat(lg.group, lg.gen, "other-member", instance_id=inst),
            "SyncGroup": o.sync(lg.group, lg.gen, "other-member", [], instance_id=inst)["error"],
            "OffsetCommit": o.commit(lg.group, lg.gen, "other-member", {(t, 0): 9}, instance_id=inst)[(t, 0)],
            "JoinGroup": o.join(lg.group, member_id="other-member", instance_id=inst, protocols=lg.protocols)["error"],
            "LeaveGroup": o.leave(lg.group, [("other-member", inst)])[1][0][2],
        }
        assert got == {k: ERR_FENCED_INSTANCE_ID for k in got}, {k: err_name(v) for k, v in got.items()}
    lg.assert_unharmed()


def test_offset_commit_checks_member_then_generation_then_state(gbroker, gtopic):
    """While a group is in CompletingRebalance, Kafka checks an OffsetCommit's member first, then its
    generation, and only then answers REBALANCE_IN_PROGRESS: a member evicted by the rebalance gets
    UNKNOWN_MEMBER_ID, a stale generation ILLEGAL_GENERATION, the current generation REBALANCE_IN_PROGRESS."""
    t, group = gtopic, f"completing-{uuid.uuid4().hex[:8]}"
    protocols = [("range", subscription([t]))]
    a_conn, b_conn, other = GroupConn(gbroker.bootstrap, "a"), GroupConn(gbroker.bootstrap, "b"), \
        GroupConn(gbroker.bootstrap, "other")
    try:
        kw = {"protocols": protocols, "session_ms": 60000, "rebalance_ms": 2000}
        a = a_conn.join_new(group, **kw)
        assert a["error"] == 0
        a_id = a["member_id"]
        # b joins: the group rebalances, a rejoins, both sync in the next generation
        b_res = {}
        th = threading.Thread(target=lambda: b_res.setdefault("b", b_conn.join_new(group, **kw)))
        th.start()
        wait_until(lambda: other.describe(group)["state"] == "PreparingRebalance", 10, "b's join starting a rebalance")
        a = a_conn.join(group, member_id=a_id, **kw)
        th.join(30)
        b = b_res["b"]
        assert a["error"] == 0 and b["error"] == 0 and a["generation"] == b["generation"]
        gen, b_id = a["generation"], b["member_id"]
        sync = {}
        th = threading.Thread(target=lambda: sync.setdefault("b", b_conn.sync(group, gen, b_id, [])))
        th.start()
        assert a_conn.sync(group, gen, a_id, [(a_id, assignment({t: [0]})), (b_id, assignment({t: [1]}))])["error"] == 0
        th.join(30)
        assert sync["b"]["error"] == 0
        # a rejoins; b never does and is dropped when the 2 s rebalance timeout runs out
        done = {}
        th = threading.Thread(target=lambda: done.setdefault("a", a_conn.join(group, member_id=a_id, **kw)))
        th.start()
        th.join(30)
        assert done["a"]["error"] == 0 and [m[0] for m in done["a"]["members"]] == [a_id]
        new_gen = done["a"]["generation"]
        assert new_gen == gen + 1
        assert other.describe(group)["state"] == "CompletingRebalance"
        got = {
            "evicted member": other.commit(group, gen, b_id, {(t, 1): 1})[(t, 1)],
            "stale generation": other.commit(group, gen, a_id, {(t, 0): 1})[(t, 0)],
            "current generation": other.commit(group, new_gen, a_id, {(t, 0): 1})[(t, 0)],
        }
        assert got == {"evicted member": ERR_UNKNOWN_MEMBER_ID, "stale generation": ERR_ILLEGAL_GENERATION,
                       "current generation": ERR_REBALANCE_IN_PROGRESS}, {k: err_name(v) for k, v in got.items()}
        assert a_conn.sync(group, new_gen, a_id, [(a_id, assignment({t: [0, 1]}))])["error"] == 0
        assert other.commit(group, new_gen, a_id, {(t, 0): 1}) == {(t, 0): 0}
    finally:
        for c in (a_conn, b_conn, other):
            c.close()

