"""Kafka's own consumer group tool (kafka-tools 4.3.1, org.apache.kafka.tools.consumer.group.ConsumerGroupCommand,
i.e. kafka-consumer-groups.sh) against the broker: --list, --describe (offsets, --members, --state), and the
same lag figures the consumer sees; --reset-offsets (--to-earliest, --to-datetime, --dry-run) with --execute,
refused while the group is active; --delete, refused while the group has members.

Every expectation (including the tool's wording) was checked against Apache Kafka (RUNNEL_TEST_TARGET=kafka)."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition

from group_helpers import committed, end_offsets, group_tool, module_broker, parse_table, produce
from helpers import create_topic, unique_topic

pytestmark = pytest.mark.java

PARTS = 3
COMMITS = {0: 5, 1: 12, 2: 20}


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory):
    yield from module_broker(tmp_path_factory)


def tool(b, *args):
    rc, out, err = group_tool(b.bootstrap, *args)
    assert rc == 0, f"ConsumerGroupCommand {' '.join(args)} exited {rc}\nstdout:\n{out}\nstderr:\n{err[-3000:]}"
    return out, err


def iso_utc(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


@pytest.fixture
def group_with_lag(gbroker):
    """A topic of 3 partitions with 20 records each (10 stamped an hour ago, 10 half an hour ago), and a group
    whose one live librdkafka member read everything and committed 5 / 12 / 20."""
    topic, group = unique_topic("tool"), f"tool-{uuid.uuid4().hex[:8]}"
    create_topic(gbroker.bootstrap, topic, PARTS)
    now = int(time.time() * 1000)
    old_ts, new_ts = now - 3_600_000, now - 1_800_000
    produce(gbroker.bootstrap, topic, PARTS, 10, "old", timestamp_ms=old_ts)
    produce(gbroker.bootstrap, topic, PARTS, 10, "new", timestamp_ms=new_ts)
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": group, "client.id": "lag-consumer",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                  "heartbeat.interval.ms": 500})
    c.subscribe([topic])
    n, deadline = 0, time.monotonic() + 60
    while n < PARTS * 20:
        assert time.monotonic() < deadline, f"consumed {n} of {PARTS * 20} in 60s"
        m = c.poll(0.2)
        if m is not None:
            assert not m.error(), m.error()
            n += 1
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in COMMITS.items()], asynchronous=False)
    state = {"topic": topic, "group": group, "consumer": c, "old_ts": old_ts, "new_ts": new_ts, "closed": False}
    yield state
    if not state["closed"]:
        c.close()


def consumer_view(c, topic):
    """What the consumer itself sees: {partition: (committed, log end, lag)}."""
    out = {}
    for tp in c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=15):
        hw = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=15)[1]
        out[tp.partition] = (tp.offset, hw, hw - tp.offset)
    return out


def offsets_table(out, group, topic):
    rows = [r for r in parse_table(out) if r.get("GROUP") == group and r.get("TOPIC") == topic]
    return {int(r["PARTITION"]): r for r in rows}


def test_group_tool_lists_and_describes_an_active_group(gbroker, group_with_lag):
    s = group_with_lag
    c, topic, group = s["consumer"], s["topic"], s["group"]
    out, _ = tool(gbroker, "--list")
    assert group in out.split()
    out, _ = tool(gbroker, "--list", "--state")
    assert {r["GROUP"]: r["STATE"] for r in parse_table(out)}.get(group) == "Stable", out

    view = consumer_view(c, topic)
    assert view == {p: (o, 20, 20 - o) for p, o in COMMITS.items()}
    out, _ = tool(gbroker, "--describe", "--group", group)
    rows = offsets_table(out, group, topic)
    assert sorted(rows) == list(range(PARTS)), out
    for p, (off, end, lag) in view.items():
        r = rows[p]
        assert (int(r["CURRENT-OFFSET"]), int(r["LOG-END-OFFSET"]), int(r["LAG"])) == (off, end, lag), \
            f"partition {p}: the tool says {r}, the consumer sees committed {off}, log end {end}, lag {lag}"
        assert r["CONSUMER-ID"] == c.memberid(), f"partition {p}: consumer id {r['CONSUMER-ID']} != {c.memberid()}"
        assert r["CLIENT-ID"] == "lag-consumer"
        assert r["HOST"].lstrip("/") == "127.0.0.1"

    out, _ = tool(gbroker, "--describe", "--group", group, "--state")
    state = [r for r in parse_table(out) if r.get("GROUP") == group]
    assert len(state) == 1, out
    assert (state[0]["ASSIGNMENT-STRATEGY"], state[0]["STATE"], state[0]["#MEMBERS"]) == ("range", "Stable", "1")

    out, _ = tool(gbroker, "--describe", "--group", group, "--members")
    members = [r for r in parse_table(out) if r.get("GROUP") == group]
    assert [(m["CONSUMER-ID"], m["#PARTITIONS"]) for m in members] == [(c.memberid(), str(PARTS))], out

    # more records: the lag grows by as much for the tool as for the consumer
    produce(gbroker.bootstrap, topic, [1], 7, "more")
    view = consumer_view(c, topic)
    assert view[1] == (12, 27, 15)
    rows = offsets_table(tool(gbroker, "--describe", "--group", group)[0], group, topic)
    assert {p: (int(r["CURRENT-OFFSET"]), int(r["LOG-END-OFFSET"]), int(r["LAG"])) for p, r in rows.items()} == view


def test_group_tool_refuses_reset_and_delete_while_active(gbroker, group_with_lag):
    s = group_with_lag
    group, topic = s["group"], s["topic"]
    out, err = tool(gbroker, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    assert "can only be reset if the group" in out + err and "inactive" in out + err, out + err
    assert committed(gbroker.bootstrap, group, topic, PARTS) == COMMITS
    out, err = tool(gbroker, "--delete", "--group", group)
    assert "GroupNotEmptyException" in out + err and "was successful" not in out, out + err
    assert group in tool(gbroker, "--list")[0].split()
    assert committed(gbroker.bootstrap, group, topic, PARTS) == COMMITS


def test_group_tool_resets_and_deletes_an_inactive_group(gbroker, group_with_lag):
    s = group_with_lag
    group, topic = s["group"], s["topic"]
    s["consumer"].close()
    s["closed"] = True
    # the closed member left (LeaveGroup): the group is Empty, its offsets stay
    out, err = tool(gbroker, "--describe", "--group", group)
    assert f"Consumer group '{group}' has no active members." in out + err, out + err
    rows = offsets_table(out, group, topic)
    assert {p: (int(r["CURRENT-OFFSET"]), int(r["LAG"]), r["CONSUMER-ID"]) for p, r in rows.items()} == \
        {p: (o, 20 - o, "-") for p, o in COMMITS.items()}
    out, _ = tool(gbroker, "--list", "--state")
    assert {r["GROUP"]: r["STATE"] for r in parse_table(out)}.get(group) == "Empty", out

    # a dry run shows the new offsets and changes nothing
    out, _ = tool(gbroker, "--reset-offsets", "--group", group, "--all-topics", "--to-latest", "--dry-run")
    assert {p: r["NEW-OFFSET"] for p, r in offsets_table(out, group, topic).items()} == {0: "20", 1: "20", 2: "20"}
    assert committed(gbroker.bootstrap, group, topic, PARTS) == COMMITS

    out, _ = tool(gbroker, "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute")
    assert {p: r["NEW-OFFSET"] for p, r in offsets_table(out, group, topic).items()} == {0: "0", 1: "0", 2: "0"}
    assert committed(gbroker.bootstrap, group, topic, PARTS) == {0: 0, 1: 0, 2: 0}

    # between the two timestamps: the first record at or after it is the 11th of each partition
    when = iso_utc((s["old_ts"] + s["new_ts"]) // 2)
    out, _ = tool(gbroker, "--reset-offsets", "--group", group, "--topic", topic, "--to-datetime", when, "--execute")
    assert {p: r["NEW-OFFSET"] for p, r in offsets_table(out, group, topic).items()} == {0: "10", 1: "10", 2: "10"}
    assert committed(gbroker.bootstrap, group, topic, PARTS) == {0: 10, 1: 10, 2: 10}
    rows = offsets_table(tool(gbroker, "--describe", "--group", group)[0], group, topic)
    assert {p: (r["CURRENT-OFFSET"], r["LAG"]) for p, r in rows.items()} == {p: ("10", "10") for p in range(PARTS)}

    # a new member resumes where the reset put the group
    c = Consumer({"bootstrap.servers": gbroker.bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        firsts, deadline = {}, time.monotonic() + 60
        while len(firsts) < PARTS:
            assert time.monotonic() < deadline, f"first records after the reset: {firsts}"
            m = c.poll(0.2)
            if m is not None and not m.error():
                firsts.setdefault(m.partition(), (m.offset(), m.value().decode()))
        assert firsts == {p: (10, f"new-{p}-0") for p in range(PARTS)}
    finally:
        c.close()

    out, _ = tool(gbroker, "--delete", "--group", group)
    assert f"Deletion of requested consumer groups ('{group}') was successful." in out, out
    assert group not in tool(gbroker, "--list")[0].split()
    assert committed(gbroker.bootstrap, group, topic, PARTS) == {p: -1001 for p in range(PARTS)}
    out, err = tool(gbroker, "--describe", "--group", group)
    # Kafka 4.3 answers DescribeGroups v6 with GROUP_ID_NOT_FOUND ("Group X not found."); with DescribeGroups
    # v5 (state Dead) the tool words it "Consumer group 'X' does not exist." Either way: no such group, exit 0.
    assert (f"Consumer group '{group}' does not exist." in out + err
            or f"GroupIdNotFoundException: Group {group} not found." in out + err), out + err
    out, err = tool(gbroker, "--delete", "--group", group)
    assert "GroupIdNotFoundException" in out + err, out + err
    assert end_offsets(gbroker.bootstrap, topic, PARTS) == {p: 20 for p in range(PARTS)}, "the topic changed"
