"""kafka-python (pure Python client, its own protocol code) against the broker.

kafka-python 3.x is idempotent by default (enable_idempotence=True, acks=all), like the Java client.
Consumers use group_id=None + assign(): no group coordinator needed."""

from __future__ import annotations

import os
import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import (InvalidPartitionsError, KafkaError, TopicAlreadyExistsError,
                          UnknownTopicOrPartitionError)

from helpers import CODECS, payload, topic_partitions, wait_topic_ready, wait_until


@pytest.fixture
def kadmin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    yield a
    a.close()


def make_producer(broker, **conf):
    conf.setdefault("linger_ms", 5)
    return KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000, **conf)


def send_all(producer, records, timeout=60):
    """records: list of dicts of send() kwargs. Returns the RecordMetadata of each, in order."""
    futures = [producer.send(**r) for r in records]
    producer.flush(timeout)
    return [f.get(timeout=timeout) for f in futures]


def consume(broker, topic, partition, count, start=None, timeout=30.0, **conf):
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", request_timeout_ms=15000, **conf)
    tp = TopicPartition(topic, partition)
    out = []
    try:
        c.assign([tp])
        if start is None:
            c.seek_to_beginning(tp)
        else:
            c.seek(tp, start)
        deadline = time.monotonic() + timeout
        while len(out) < count:
            assert time.monotonic() < deadline, f"consumed {len(out)} of {count} from {topic}[{partition}]"
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
    finally:
        c.close()
    return out


def create(kadmin, broker, topic, partitions=1, configs=None):
    kadmin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1,
                                  "configs": configs or {}}})
    wait_topic_ready(broker.bootstrap, topic, partitions)


def topic_configs(kadmin, topic, config_filter="all"):
    res = kadmin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter=config_filter)
    return res["topic"][topic]


# ---------------------------------------------------------------- produce / consume

@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_codec(broker, topic, codec):
    n = 250
    p = make_producer(broker, compression_type=None if codec == "none" else codec)
    ts0 = int(time.time() * 1000) - 60_000
    metas = send_all(p, [dict(topic=topic, key=f"k{i}".encode(), value=payload(i, (i * 53) % 2500),
                              headers=[("i", str(i).encode())], timestamp_ms=ts0 + i) for i in range(n)])
    p.close()
    assert [m.offset for m in metas] == list(range(n)), "kafka-python's idempotent producer keeps order"
    recs = consume(broker, topic, 0, n)
    for i, r in enumerate(recs):
        assert (r.offset, r.key, r.value) == (i, f"k{i}".encode(), payload(i, (i * 53) % 2500))
        assert list(r.headers) == [("i", str(i).encode())]
        assert (r.timestamp, r.timestamp_type) == (ts0 + i, 0)


def test_headers_including_duplicate_keys(broker, topic):
    headers_list = [
        [("a", b"1"), ("a", b"2"), ("b", b""), ("a", b"3")],
        [("dup", b"x"), ("dup", b"x")],
        [],
    ]
    p = make_producer(broker)
    send_all(p, [dict(topic=topic, value=f"v{i}".encode(), headers=hs) for i, hs in enumerate(headers_list)])
    p.close()
    recs = consume(broker, topic, 0, len(headers_list))
    assert [list(r.headers) for r in recs] == headers_list


def test_null_and_empty_keys_and_values(broker, topic):
    # (kafka-python refuses key=None with value=None; test_confluent covers that one)
    cases = [(None, b"v"), (b"k", None), (b"", b""), (None, b""), (b"", None)]
    p = make_producer(broker)
    send_all(p, [dict(topic=topic, key=k, value=v) for k, v in cases])
    p.close()
    recs = consume(broker, topic, 0, len(cases))
    assert [(r.key, r.value) for r in recs] == cases


def test_900kb_record(broker, topic):
    big = os.urandom(900 * 1024)
    p = make_producer(broker, max_request_size=2_000_000, compression_type="gzip")
    metas = send_all(p, [dict(topic=topic, key=b"big", value=big), dict(topic=topic, value=b"after")])
    p.close()
    assert [m.offset for m in metas] == [0, 1]
    recs = consume(broker, topic, 0, 2, max_partition_fetch_bytes=2_000_000)
    assert recs[0].value == big and recs[1].value == b"after"


def test_consumer_seek_and_end_offsets(broker, topic):
    p = make_producer(broker)
    send_all(p, [dict(topic=topic, value=payload(i)) for i in range(30)])
    p.close()
    recs = consume(broker, topic, 0, 5, start=25)
    assert [r.offset for r in recs] == [25, 26, 27, 28, 29]
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        tp = TopicPartition(topic, 0)
        assert c.beginning_offsets([tp])[tp] == 0
        assert c.end_offsets([tp])[tp] == 30
        assert c.partitions_for_topic(topic) == {0}
    finally:
        c.close()


def test_offsets_for_times(broker, topic, kadmin):
    create(kadmin, broker, topic)
    base = int(time.time() * 1000) - 3_600_000
    p = make_producer(broker)
    for i in range(10):
        p.send(topic, value=payload(i), timestamp_ms=base + i * 1000)
        if i < 5:
            p.flush(30)  # one batch each for the first five
    p.flush(30)
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        tp = TopicPartition(topic, 0)
        for ts, want in {base - 10: 0, base + 1: 1, base + 3000: 3, base + 6500: 7, base + 9000: 9}.items():
            got = c.offsets_for_times({tp: ts})[tp]
            assert got is not None and got.offset == want, f"base+{ts - base}: {got}, want offset {want}"
            assert got.timestamp == base + want * 1000
        assert c.offsets_for_times({tp: base + 10_000})[tp] is None
    finally:
        c.close()


# ---------------------------------------------------------------- idempotent producer

def test_idempotent_producer_exactly_once_in_order(broker, topic):
    n = 3000
    p = make_producer(broker, enable_idempotence=True, acks="all", linger_ms=1, batch_size=4096,
                      max_in_flight_requests_per_connection=5, compression_type="snappy")
    futures = [p.send(topic, value=payload(i)) for i in range(n)]
    p.flush(60)
    offsets = [f.get(30).offset for f in futures]
    p.close()
    assert offsets == list(range(n))
    recs = consume(broker, topic, 0, n, timeout=60)
    assert [r.value for r in recs] == [payload(i) for i in range(n)]


# ---------------------------------------------------------------- admin

def test_create_topic_with_configs_describe_alter(broker, topic, kadmin):
    create(kadmin, broker, topic, 2, {"retention.ms": "3600000", "segment.ms": "86400000"})
    assert len(topic_partitions(broker.bootstrap, topic)) == 2
    every = topic_configs(kadmin, topic)
    assert len(every) >= 10, f"only {sorted(every)}"
    assert every["retention.ms"]["value"] == "3600000"
    assert every["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert every["retention.bytes"]["value"] == "-1"
    assert every["retention.bytes"]["config_source"] == "DEFAULT_CONFIG"
    modified = topic_configs(kadmin, topic, "modified")
    assert set(modified) == {"retention.ms", "segment.ms"}

    # incremental (IncrementalAlterConfigs): only the named key changes
    res = kadmin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "7200000"})],
                               incremental=True)
    assert res["topic"][topic] == "OK"
    wait_until(lambda: topic_configs(kadmin, topic, "modified")["retention.ms"]["value"] == "7200000", 15,
               "retention.ms=7200000")
    assert topic_configs(kadmin, topic, "modified")["segment.ms"]["value"] == "86400000"


def test_legacy_alter_configs_replaces_the_whole_set(broker, topic, kadmin):
    """AlterConfigs (non-incremental) sets exactly the given keys: those left out go back to defaults."""
    create(kadmin, broker, topic, 1, {"retention.ms": "3600000", "segment.ms": "86400000"})
    res = kadmin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "1800000"})],
                               incremental=False)
    assert res["topic"][topic] == "OK"
    # kafka-python fills in the other modified keys itself before a non-incremental alter (to avoid resets),
    # so send the raw request for the real semantics
    from kafka.protocol.admin import AlterConfigsRequest
    req = AlterConfigsRequest(resources=[(ConfigResourceType.TOPIC, topic, [("max.message.bytes", "500000")])],
                              validate_only=False)
    resp = kadmin._manager.run(kadmin._manager.send, req)
    assert [r.error_code for r in resp.responses] == [0]
    modified = wait_until(lambda: (lambda m: set(m) == {"max.message.bytes"} and m)(
        topic_configs(kadmin, topic, "modified")), 15, "the config set to be replaced")
    assert modified["max.message.bytes"]["value"] == "500000"


def test_describe_broker_config(broker, kadmin):
    node = str(broker.node_id)
    res = kadmin.describe_configs([ConfigResource(ConfigResourceType.BROKER, node)], config_filter="all")
    entries = res["broker"][node]
    assert len(entries) >= 10
    assert entries["num.partitions"]["value"] == "1"


def test_create_existing_topic_fails(broker, topic, kadmin):
    create(kadmin, broker, topic)
    with pytest.raises(TopicAlreadyExistsError):
        kadmin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})


def test_create_partitions(broker, topic, kadmin):
    create(kadmin, broker, topic, 2)
    kadmin.create_partitions({topic: 4})
    wait_topic_ready(broker.bootstrap, topic, 4)
    p = make_producer(broker)
    meta = p.send(topic, value=b"p3", partition=3).get(30)
    p.close()
    assert (meta.partition, meta.offset) == (3, 0)
    with pytest.raises(InvalidPartitionsError):
        kadmin.create_partitions({topic: 4})  # same count: nothing to add


def test_delete_topics(broker, topic, kadmin):
    create(kadmin, broker, topic)
    assert topic in kadmin.list_topics()
    kadmin.delete_topics([topic])
    wait_until(lambda: topic not in kadmin.list_topics(), 20, "the deleted topic to disappear")
    with pytest.raises(UnknownTopicOrPartitionError):
        kadmin.delete_topics([topic])


def test_delete_records(broker, topic, kadmin):
    create(kadmin, broker, topic)
    p = make_producer(broker)
    send_all(p, [dict(topic=topic, value=payload(i)) for i in range(12)])
    p.close()
    tp = TopicPartition(topic, 0)
    res = kadmin.delete_records({tp: 7})
    assert res[tp]["low_watermark"] == 7
    recs = consume(broker, topic, 0, 5)
    assert [r.offset for r in recs] == [7, 8, 9, 10, 11]
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        assert c.beginning_offsets([tp])[tp] == 7
    finally:
        c.close()


def test_describe_cluster(broker, kadmin):
    desc = kadmin.describe_cluster()
    assert sorted((b["broker_id"], b["host"], b["port"]) for b in desc["brokers"]) == broker.nodes
    assert desc["controller_id"] == min(n for n, _, _ in broker.nodes)
    assert desc["cluster_id"]


def test_api_versions_probe(broker):
    """kafka-python negotiates versions from ApiVersions: the advertised ranges must be usable."""
    from kafka.protocol.metadata import MetadataRequest  # noqa: F401 - the import is the check
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None)
    try:
        assert c.topics() is not None
    finally:
        c.close()
