"""librdkafka (confluent-kafka) against the broker: produce/consume, codecs, headers, nulls, big records,
timestamps, admin operations, DeleteRecords and the idempotent producer.

Consumers use assign() and never commit, so no group coordinator is needed."""

from __future__ import annotations

import os
import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic, OffsetSpec, ResourceType)

from helpers import (CODECS, admin, consume_all, create_topic, payload, topic_partitions, wait_topic_ready,
                     wait_until, watermarks)


class Delivery:
    """Collects delivery reports; .wait() flushes and fails on any error."""

    def __init__(self):
        self.ok: list = []
        self.errors: list = []

    def __call__(self, err, msg):
        if err is not None:
            self.errors.append((err, msg.value()))
        else:
            self.ok.append((msg.partition(), msg.offset(), msg.value()))

    def wait(self, producer, expected, timeout=60.0):
        deadline = time.monotonic() + timeout
        while producer.flush(1.0) > 0:
            assert time.monotonic() < deadline, f"flush did not finish in {timeout}s"
        assert not self.errors, f"delivery errors: {self.errors[:5]}"
        assert len(self.ok) == expected, f"{len(self.ok)} delivered, {expected} expected"
        return self.ok


def producer(bootstrap, **conf):
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", **conf})


def describe(bootstrap, topic):
    a = admin(bootstrap)  # keep the client alive until the future is done
    res = ConfigResource(ResourceType.TOPIC, topic)
    return a.describe_configs([res], request_timeout=15)[res].result(15)


# ---------------------------------------------------------------- produce / consume

@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_codec(broker, topic, codec):
    n = 300
    p = producer(broker.bootstrap, **{"compression.type": codec, "batch.num.messages": 100})
    d = Delivery()
    ts0 = int(time.time() * 1000) - 60_000
    for i in range(n):
        p.produce(topic, key=f"key-{i}".encode(), value=payload(i, (i * 37) % 3000),
                  headers=[("idx", str(i).encode())], timestamp=ts0 + i, on_delivery=d)
        p.poll(0)
    acked = d.wait(p, n)
    assert sorted(o for _, o, _ in acked) == list(range(n)), "offsets are not 0..n-1"
    msgs = consume_all(broker.bootstrap, topic, 0, n)
    for i, m in enumerate(msgs):
        assert m.offset() == i
        assert m.key() == f"key-{i}".encode()
        assert m.value() == payload(i, (i * 37) % 3000)
        assert m.headers() == [("idx", str(i).encode())]
        assert m.timestamp() == (1, ts0 + i), "CreateTime timestamp not preserved"  # 1 = TIMESTAMP_CREATE_TIME
    assert watermarks(broker.bootstrap, topic) == (0, n)


def test_headers_including_duplicate_keys(broker, topic):
    headers_list = [
        [("a", b"1"), ("a", b"2"), ("b", b""), ("a", b"3")],
        [("dup", b"x"), ("dup", b"x")],
        [("null-value", None), ("", b"empty-key")],
        [("utf8-\u00e9\u4e2d", b"\x00\xff binary")],
        [],
    ]
    p = producer(broker.bootstrap)
    d = Delivery()
    for i, hs in enumerate(headers_list):
        p.produce(topic, value=f"v{i}".encode(), headers=hs, on_delivery=d)
    d.wait(p, len(headers_list))
    msgs = consume_all(broker.bootstrap, topic, 0, len(headers_list))
    for hs, m in zip(headers_list, msgs):
        got = m.headers() or []
        assert got == hs, f"headers {got} != {hs} (order and duplicates must be kept)"


def test_null_and_empty_keys_and_values(broker, topic):
    cases = [(None, None), (b"k", None), (None, b"v"), (b"", b""), (b"", None), (None, b"")]
    p = producer(broker.bootstrap)
    d = Delivery()
    for k, v in cases:
        p.produce(topic, key=k, value=v, on_delivery=d)
    d.wait(p, len(cases))
    msgs = consume_all(broker.bootstrap, topic, 0, len(cases))
    assert [(m.key(), m.value()) for m in msgs] == cases, "null and empty must stay distinct"


@pytest.mark.parametrize("codec", ["none", "lz4"])
def test_900kb_record(broker, topic, codec):
    big = os.urandom(900 * 1024)
    p = producer(broker.bootstrap, **{"compression.type": codec, "message.max.bytes": 2_000_000})
    d = Delivery()
    p.produce(topic, key=b"big", value=big, on_delivery=d)
    p.produce(topic, key=b"after", value=b"small", on_delivery=d)
    d.wait(p, 2)
    msgs = consume_all(broker.bootstrap, topic, 0, 2, **{"fetch.max.bytes": 4_000_000})
    assert msgs[0].key() == b"big" and msgs[0].value() == big
    assert (msgs[1].offset(), msgs[1].value()) == (1, b"small")


def test_multi_partition_keyed_roundtrip(broker, topic):
    create_topic(broker.bootstrap, topic, 3)
    p = producer(broker.bootstrap, **{"compression.type": "zstd"})
    d = Delivery()
    for i in range(300):
        p.produce(topic, key=f"k{i % 17}".encode(), value=payload(i), on_delivery=d)
    acked = d.wait(p, 300)
    per_part = {}
    for part, off, val in acked:
        per_part.setdefault(part, []).append((off, val))
    assert len(per_part) > 1, "the keys did not spread over partitions"
    for part, recs in per_part.items():
        recs.sort()
        assert [o for o, _ in recs] == list(range(len(recs)))
        msgs = consume_all(broker.bootstrap, topic, part, len(recs))
        assert [(m.offset(), m.value()) for m in msgs] == recs
        # same key -> same partition
        assert len({int(m.value()[6:]) % 17 for m in msgs}) == len({m.key() for m in msgs})


def test_consume_from_middle_and_end(broker, topic):
    p = producer(broker.bootstrap)
    d = Delivery()
    for i in range(20):
        p.produce(topic, value=payload(i), on_delivery=d)
    d.wait(p, 20)
    msgs = consume_all(broker.bootstrap, topic, 0, 5, start=15)
    assert [m.offset() for m in msgs] == [15, 16, 17, 18, 19]
    assert msgs[0].value() == payload(15)


# ---------------------------------------------------------------- timestamps / ListOffsets

def _produce_timed(bootstrap, topic, base):
    """Records 0-4 one batch each, records 5-9 in one batch; record i has timestamp base + i*1000."""
    p = producer(bootstrap, **{"linger.ms": 50})
    d = Delivery()
    for i in range(5):
        p.produce(topic, value=payload(i), timestamp=base + i * 1000, on_delivery=d)
        p.flush(10)
    for i in range(5, 10):
        p.produce(topic, value=payload(i), timestamp=base + i * 1000, on_delivery=d)
    d.wait(p, 10)


def test_offsets_for_times(broker, topic):
    from confluent_kafka import Consumer
    base = int(time.time() * 1000) - 3_600_000
    create_topic(broker.bootstrap, topic, 1)
    _produce_timed(broker.bootstrap, topic, base)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        queries = {base - 1: 0, base: 0, base + 1: 1, base + 2500: 3, base + 4000: 4, base + 4001: 5,
                   base + 7500: 8, base + 9000: 9, base + 9001: -1}
        for ts, want in queries.items():
            [tp] = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None
            assert tp.offset == want, f"timestamp base+{ts - base}: offset {tp.offset}, want {want}"
    finally:
        c.close()


def test_list_offsets_specs(broker, topic):
    base = int(time.time() * 1000) - 3_600_000
    create_topic(broker.bootstrap, topic, 1)
    _produce_timed(broker.bootstrap, topic, base)
    # one more record with a smaller timestamp, so that the max timestamp is not the last record's
    p = producer(broker.bootstrap)
    d = Delivery()
    p.produce(topic, value=b"late", timestamp=base - 5000, on_delivery=d)
    d.wait(p, 1)
    a = admin(broker.bootstrap)
    tp = TopicPartition(topic, 0)

    def one(spec):
        return a.list_offsets({tp: spec}, request_timeout=10)[tp].result(10)

    assert one(OffsetSpec.earliest()).offset == 0
    assert one(OffsetSpec.latest()).offset == 11
    r = one(OffsetSpec.max_timestamp())
    assert (r.offset, r.timestamp) == (9, base + 9000)
    r = one(OffsetSpec.for_timestamp(base + 2500))
    assert (r.offset, r.timestamp) == (3, base + 3000)
    assert one(OffsetSpec.for_timestamp(base + 60_000)).offset == -1


# ---------------------------------------------------------------- admin

def test_create_topic_with_configs_and_describe(broker, topic):
    create_topic(broker.bootstrap, topic, 2, {"retention.ms": "3600000", "cleanup.policy": "delete",
                                              "max.message.bytes": "200000"})
    assert len(topic_partitions(broker.bootstrap, topic)) == 2
    entries = describe(broker.bootstrap, topic)
    assert len(entries) >= 10, f"DescribeConfigs returned only {sorted(entries)}"
    e = entries["retention.ms"]
    assert e.value == "3600000"
    assert e.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and not e.is_default
    assert entries["max.message.bytes"].value == "200000"
    # entries the topic did not set come back with their defaults
    d = entries["retention.bytes"]
    assert d.value == "-1" and d.is_default and d.source == ConfigSource.DEFAULT_CONFIG.value
    assert entries["min.insync.replicas"].value == "1"
    assert entries["cleanup.policy"].value == "delete"


def test_describe_configs_of_auto_created_topic(broker, topic):
    p = producer(broker.bootstrap)
    d = Delivery()
    p.produce(topic, value=b"x", on_delivery=d)
    d.wait(p, 1)
    entries = describe(broker.bootstrap, topic)
    assert entries["retention.ms"].value == "604800000" and entries["retention.ms"].is_default
    assert entries["max.message.bytes"].value == "1048588"


def test_describe_broker_configs(broker):
    res = ConfigResource(ResourceType.BROKER, str(broker.node_id))
    a = admin(broker.bootstrap)
    entries = a.describe_configs([res], request_timeout=15)[res].result(15)
    assert len(entries) >= 10
    assert "log.retention.hours" in entries or "log.retention.ms" in entries
    assert entries["auto.create.topics.enable"].value == "true"


def test_create_topic_errors(broker, topic):
    a = admin(broker.bootstrap)
    create_topic(broker.bootstrap, topic, 1)
    f = a.create_topics([NewTopic(topic, 1, 1)], request_timeout=15)[topic]
    with pytest.raises(KafkaException) as ei:
        f.result(15)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
    bad = topic + "-badcfg"
    f = a.create_topics([NewTopic(bad, 1, 1, config={"retention.ms": "not-a-number"})], request_timeout=15)[bad]
    with pytest.raises(KafkaException) as ei:
        f.result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    f = a.create_topics([NewTopic(topic + "-zero", 0, 1)], request_timeout=15)[topic + "-zero"]
    with pytest.raises(KafkaException) as ei:
        f.result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    assert topic_partitions(broker.bootstrap, bad) is None


def test_create_topic_validate_only(broker, topic):
    a = admin(broker.bootstrap)
    a.create_topics([NewTopic(topic, 4, 1)], validate_only=True, request_timeout=15)[topic].result(15)
    assert topic_partitions(broker.bootstrap, topic) is None, "validate_only created the topic"


def test_incremental_alter_configs(broker, topic):
    create_topic(broker.bootstrap, topic, 1, {"max.message.bytes": "200000"})
    a = admin(broker.bootstrap)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    a.incremental_alter_configs([res], request_timeout=15)[res].result(15)

    def applied():
        e = describe(broker.bootstrap, topic)
        return e["retention.ms"].value == "7200000" and e["max.message.bytes"].value == "1048588" and e
    e = wait_until(applied, 15, "the altered configs to show in DescribeConfigs")
    assert e["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert e["max.message.bytes"].is_default


def test_incremental_alter_configs_invalid_value(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    a = admin(broker.bootstrap)
    with pytest.raises(KafkaException) as ei:
        a.incremental_alter_configs([res], request_timeout=15)[res].result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert describe(broker.bootstrap, topic)["retention.ms"].value == "604800000"


def test_altered_max_message_bytes_is_enforced(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)])
    a = admin(broker.bootstrap)
    a.incremental_alter_configs([res], request_timeout=15)[res].result(15)
    wait_until(lambda: describe(broker.bootstrap, topic)["max.message.bytes"].value == "2000", 15, "alter")
    p = producer(broker.bootstrap, **{"retries": 0})
    d = Delivery()
    p.produce(topic, value=b"x" * 5000, on_delivery=d)
    p.flush(30)
    assert len(d.errors) == 1 and d.errors[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE, d.errors
    assert watermarks(broker.bootstrap, topic)[1] == 0


def test_create_partitions(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    a = admin(broker.bootstrap)
    a.create_partitions([NewPartitions(topic, 3)], request_timeout=15)[topic].result(15)
    wait_topic_ready(broker.bootstrap, topic, 3)
    p = producer(broker.bootstrap)
    d = Delivery()
    p.produce(topic, value=b"to-p2", partition=2, on_delivery=d)
    d.wait(p, 1)
    assert consume_all(broker.bootstrap, topic, 2, 1)[0].value() == b"to-p2"
    # fewer partitions than now: INVALID_PARTITIONS
    f = a.create_partitions([NewPartitions(topic, 2)], request_timeout=15)[topic]
    with pytest.raises(KafkaException) as ei:
        f.result(15)
    assert ei.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    assert len(topic_partitions(broker.bootstrap, topic)) == 3


def test_delete_topic_and_recreate(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    p = producer(broker.bootstrap)
    d = Delivery()
    for i in range(5):
        p.produce(topic, value=payload(i), on_delivery=d)
    d.wait(p, 5)
    a = admin(broker.bootstrap)
    a.delete_topics([topic], request_timeout=15)[topic].result(15)
    wait_until(lambda: topic_partitions(broker.bootstrap, topic) is None, 20, "the topic to leave Metadata")
    f = a.delete_topics([topic], request_timeout=15)[topic]
    with pytest.raises(KafkaException) as ei:
        f.result(15)
    assert ei.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    def recreate():
        try:
            create_topic(broker.bootstrap, topic, 1)
            return True
        except KafkaException as e:  # deletion may still be in progress
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            return False
    wait_until(recreate, 30, "the topic to be re-creatable")
    assert watermarks(broker.bootstrap, topic) == (0, 0), "the re-created topic still holds the old records"
    p = producer(broker.bootstrap)
    d = Delivery()
    p.produce(topic, value=b"fresh", on_delivery=d)
    assert d.wait(p, 1)[0][1] == 0


def test_describe_cluster(broker):
    a = admin(broker.bootstrap)
    desc = a.describe_cluster(request_timeout=15).result(15)
    assert desc.cluster_id
    assert sorted((n.id, n.host, n.port) for n in desc.nodes) == broker.nodes
    assert desc.controller is not None


def test_metadata_auto_create(broker, topic):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused",
                  "allow.auto.create.topics": True})
    try:
        wait_until(lambda: topic in c.list_topics(topic, timeout=5).topics
                   and c.list_topics(topic, timeout=5).topics[topic].error is None, 20, "auto-creation")
    finally:
        c.close()
    parts = wait_until(lambda: topic_partitions(broker.bootstrap, topic), 10, "metadata")
    assert list(parts) == [0] and parts[0] in [n for n, _, _ in broker.nodes]


# ---------------------------------------------------------------- DeleteRecords

def test_delete_records(broker, topic):
    create_topic(broker.bootstrap, topic, 1)
    p = producer(broker.bootstrap)
    d = Delivery()
    for i in range(10):
        p.produce(topic, value=payload(i), on_delivery=d)
        if i == 3:
            p.flush(10)  # two batches: the new start falls inside the second one
    d.wait(p, 10)
    a = admin(broker.bootstrap)
    tp = TopicPartition(topic, 0, 6)
    res = a.delete_records([tp], request_timeout=15)
    deleted = list(res.values())[0].result(15)
    assert deleted.low_watermark == 6
    assert watermarks(broker.bootstrap, topic) == (6, 10)
    earliest = a.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()},
                              request_timeout=10)[TopicPartition(topic, 0)].result(10)
    assert earliest.offset == 6
    msgs = consume_all(broker.bootstrap, topic, 0, 4)
    assert [(m.offset(), m.value()) for m in msgs] == [(i, payload(i)) for i in range(6, 10)]
    # -1 means "up to the high watermark"
    res = a.delete_records([TopicPartition(topic, 0, -1)], request_timeout=15)
    assert list(res.values())[0].result(15).low_watermark == 10
    assert watermarks(broker.bootstrap, topic) == (10, 10)
    # beyond the high watermark: OFFSET_OUT_OF_RANGE
    res = a.delete_records([TopicPartition(topic, 0, 50)], request_timeout=15)
    with pytest.raises(KafkaException) as ei:
        list(res.values())[0].result(15)
    assert ei.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE


# ---------------------------------------------------------------- idempotent producer

def test_idempotent_producer_in_order_exactly_once(broker, topic):
    n = 5000
    p = producer(broker.bootstrap, **{"enable.idempotence": True, "linger.ms": 1,
                                      "max.in.flight.requests.per.connection": 5, "batch.num.messages": 50,
                                      "compression.type": "lz4"})
    d = Delivery()
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=payload(i), on_delivery=d)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    acked = d.wait(p, n)
    assert [o for _, o, _ in acked] == list(range(n)), "acked offsets not in send order"
    msgs = consume_all(broker.bootstrap, topic, 0, n, timeout=60)
    assert [m.value() for m in msgs] == [payload(i) for i in range(n)]
    assert watermarks(broker.bootstrap, topic)[1] == n


def test_idempotent_producer_retries_across_broker_kill(start_broker, topic):
    """The broker is SIGKILLed mid-stream and restarted on the same port: the producer retries the batches
    it never got answers for, and the broker's sequence checks (state rebuilt from the log) must drop the
    ones it had already written. Every record lands exactly once, in order."""
    b = start_broker({"log.flush.interval.messages": 1})
    create_topic(b.bootstrap, topic, 1)
    n = 3000
    kill_at = 1200
    p = producer(b.bootstrap, **{"enable.idempotence": True, "linger.ms": 2, "batch.num.messages": 20,
                                 "max.in.flight.requests.per.connection": 5, "message.timeout.ms": 120000,
                                 "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    d = Delivery()
    for i in range(n):
        if i == kill_at:
            # records are still in flight here: some were written and not yet acknowledged
            wait_until(lambda: p.poll(0.02) is not None and len(d.ok) >= 600, 60, "600 acks before the kill")
            in_flight = len(p)
            b.kill9()
            b.restart(same_port=True)
            print(f"killed with {len(d.ok)} acked, {in_flight} queued or in flight")
        while True:
            try:
                p.produce(topic, value=payload(i), on_delivery=d)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        if i % 10 == 9:
            time.sleep(0.002)
    acked = d.wait(p, n, timeout=120)
    assert sorted(o for _, o, _ in acked) == list(range(n))
    by_offset = {o: v for _, o, v in acked}
    assert [by_offset[o] for o in range(n)] == [payload(i) for i in range(n)], "records out of order"
    msgs = consume_all(b.bootstrap, topic, 0, n, timeout=60)
    assert [m.value() for m in msgs] == [payload(i) for i in range(n)]
    assert watermarks(b.bootstrap, topic)[1] == n, "duplicates were written"


# ---------------------------------------------------------------- edge behaviours

@pytest.mark.parametrize("name", ["bad/name", "bad name", "x" * 250, ".", ".."])
def test_create_topic_invalid_name(broker, name):
    a = admin(broker.bootstrap)
    f = a.create_topics([NewTopic(name, 1, 1)], request_timeout=15)[name]
    with pytest.raises(KafkaException) as ei:
        f.result(15)
    assert ei.value.args[0].code() == KafkaError.TOPIC_EXCEPTION  # 17 INVALID_TOPIC_EXCEPTION


def test_fetch_out_of_range_offset(broker, topic):
    from confluent_kafka import Consumer
    create_topic(broker.bootstrap, topic, 1)
    p = producer(broker.bootstrap)
    d = Delivery()
    for i in range(3):
        p.produce(topic, value=payload(i), on_delivery=d)
    d.wait(p, 3)
    # with auto.offset.reset=error, a position past the end surfaces as an error
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 100)])
        m = wait_until(lambda: (lambda m: m if m is not None and m.error() else None)(c.poll(0.5)), 20,
                       "an out-of-range error")
        assert m.error().code() == KafkaError._AUTO_OFFSET_RESET, m.error()
    finally:
        c.close()
    # with auto.offset.reset=earliest the consumer starts over at the log start
    msgs = consume_all(broker.bootstrap, topic, 0, 3, start=100, **{"auto.offset.reset": "earliest"})
    assert [m.offset() for m in msgs] == [0, 1, 2]


def test_long_poll_fetch_wakes_up_on_new_data(broker, topic):
    """A consumer waiting at the end with a long fetch.wait.max.ms gets a new record as soon as it is written
    (fetch.min.bytes=1): the broker must complete parked fetches on append, not at the end of the wait."""
    from confluent_kafka import Consumer
    create_topic(broker.bootstrap, topic, 1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 10000, "fetch.min.bytes": 1})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        assert c.poll(2.0) is None  # nothing yet: the fetch is parked on the broker
        time.sleep(0.5)  # let the next long fetch reach the broker (timing only, not correctness)
        p = producer(broker.bootstrap, **{"linger.ms": 0})
        d = Delivery()
        t0 = time.monotonic()
        p.produce(topic, value=b"wake-up", on_delivery=d)
        d.wait(p, 1)
        m = None
        deadline = time.monotonic() + 15
        while m is None and time.monotonic() < deadline:
            m = c.poll(0.1)
        elapsed = time.monotonic() - t0
        assert m is not None and m.error() is None and m.value() == b"wake-up"
        assert elapsed < 3.0, f"record arrived {elapsed:.1f}s after the produce: the parked fetch was not woken"
    finally:
        c.close()


def test_fetch_min_bytes_waits_for_data(broker, topic):
    """fetch.min.bytes larger than what is there: the broker holds the fetch up to fetch.wait.max.ms and
    answers when enough data has arrived."""
    from confluent_kafka import Consumer
    create_topic(broker.bootstrap, topic, 1)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 1500, "fetch.min.bytes": 50_000})
    p = producer(broker.bootstrap, **{"linger.ms": 0})
    try:
        d = Delivery()
        p.produce(topic, value=b"small", on_delivery=d)
        d.wait(p, 1)
        c.assign([TopicPartition(topic, 0, 0)])
        m = wait_until(lambda: c.poll(0.2), 15, "the small record after fetch.wait.max.ms")
        assert m.value() == b"small"
    finally:
        c.close()
