"""Cluster mode: three Runnel brokers on one SeaweedFS bucket and one PostgreSQL, all on loopback, driven by
real clients (librdkafka through confluent-kafka, kafka-python). Brokers are killed with kill -9, paused
with SIGSTOP past their lease, restarted all at once, and the two engines are restarted mid-stream; after
each, a reader checks that no acknowledged record was lost or duplicated and that offsets are dense.
"""

from __future__ import annotations

import time

import pytest

from cluster_helpers import PARTITIONS, Acks, Cluster, check_log, idempotent_producer, produce_with
from helpers import TARGET, create_topic, topic_partitions, unique_topic, wait_until

pytestmark = pytest.mark.skipif(TARGET == "kafka", reason="Runnel's cluster mode (Kafka has its own replication)")

@pytest.fixture(scope="module")
def engines(cluster_engines):
    return cluster_engines


@pytest.fixture(scope="module")
def cluster(engines, tmp_path_factory):
    pg, s3 = engines
    # Housekeeping every second: retention, batches older than 3 s compacted into segment objects (so every
    # test here also runs with objects moving under it), unreferenced objects kept 5 s.
    c = Cluster(tmp_path_factory.mktemp("cluster"), pg, s3, n=3,
                sets={"log.retention.check.interval.ms": "1000", "diskless.compaction.delay.ms": "3000",
                      "diskless.object.delete.grace.ms": "5000"})
    wait_until(lambda: c.live_brokers() == [1, 2, 3], 30, "three brokers registered")
    c.wait_listed({1, 2, 3})
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _all_brokers_up(cluster):
    """Each test starts with brokers 1-3 running and registered (a failed test may have left one down)."""
    for node in (1, 2, 3):
        b = cluster.brokers[node]
        if not b.alive():
            b.restart(same_port=True)
    cluster.wait_listed({1, 2, 3})
    yield


def test_brokers_share_one_log(cluster):
    """Metadata lists every live broker and spreads leaders over them; a record produced through one broker
    is read through another, with kafka-python on one side and librdkafka on the other."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = unique_topic("shared")
    b1, b2, b3 = (cluster.brokers[n].bootstrap for n in (1, 2, 3))
    a = KafkaAdminClient(bootstrap_servers=b1)
    a.create_topics([NewTopic(topic, PARTITIONS, 3)])
    described = a.describe_cluster()
    a.close()
    assert sorted(b.get("node_id", b.get("broker_id")) for b in described["brokers"]) == [1, 2, 3], described
    leaders = wait_until(lambda: topic_partitions(b3, topic), 30, "the topic seen through broker 3")
    assert len(leaders) == PARTITIONS
    assert set(leaders.values()) == {1, 2, 3}, f"leaders all on a subset: {leaders}"

    p = KafkaProducer(bootstrap_servers=b2, acks="all", enable_idempotence=True)
    futures = {f"v{i}".encode(): p.send(topic, value=f"v{i}".encode(), partition=i % PARTITIONS)
               for i in range(600)}
    sent = {v: (md.partition, md.offset) for v, md in ((v, f.get(30)) for v, f in futures.items())}
    p.close()
    check_log(b3, topic, PARTITIONS, sent)

    c = KafkaConsumer(bootstrap_servers=b1, enable_auto_commit=False, consumer_timeout_ms=10000)
    c.assign([TopicPartition(topic, 0)])
    c.seek(TopicPartition(topic, 0), 0)
    got = [m.value for m in c][:50]
    c.close()
    assert got == [v for v, (part, _) in sorted(sent.items(), key=lambda kv: kv[1]) if part == 0]


def test_metadata_lists_replicas_as_created(cluster):
    """Replicas named in CreateTopics and CreatePartitions are what Metadata lists, the first live one
    leading; a replication factor lists that many live brokers; a killed replica drops out of the in-sync
    list and its partition is led by the next one named."""
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    named, spread = unique_topic("named"), unique_topic("factor")
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    for f in admin.create_topics([NewTopic(named, 2, replica_assignment=[[3, 1], [2, 3]]),
                                  NewTopic(spread, 4, replication_factor=3)]).values():
        f.result(30)
    admin.create_partitions([NewPartitions(named, 3, replica_assignment=[[1, 2]])])[named].result(30)

    def partitions(topic):
        md = admin.list_topics(topic, timeout=10).topics[topic]
        return {p: (m.leader, m.replicas, m.isrs) for p, m in md.partitions.items()}

    got = wait_until(lambda: (p := partitions(named)) and len(p) == 3 and p, 30, "three partitions listed")
    assert got == {0: (3, [3, 1], [3, 1]), 1: (2, [2, 3], [2, 3]), 2: (1, [1, 2], [1, 2])}, got
    for leader, replicas, isrs in partitions(spread).values():
        assert sorted(replicas) == [1, 2, 3] and leader == replicas[0] and isrs == replicas, (leader, replicas)

    cluster.brokers[3].kill9()
    wait_until(lambda: 3 not in cluster.live_brokers(), 20, "broker 3's lease to run out")
    got = wait_until(lambda: (p := partitions(named))[0][0] == 1 and p, 30, "partition 0 led by broker 1")
    assert got == {0: (1, [3, 1], [1]), 1: (2, [2, 3], [2]), 2: (1, [1, 2], [1, 2])}, got


def test_metrics_show_the_engines(cluster):
    """Each broker's /metrics carries its upload and commit latency histograms, read cache hits and misses,
    the live brokers, and the bucket's object count as the database reports it."""
    topic = unique_topic("metrics")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    acks = Acks()
    produce_with(idempotent_producer(cluster.bootstrap), topic, acks, 600, {}, pace=0)
    check_log(cluster.brokers[1].bootstrap, topic, PARTITIONS, acks.acked)
    scrapes = {n: b.metrics() for n, b in cluster.brokers.items()}
    total = lambda series: sum(m.get(series, 0) for m in scrapes.values())  # noqa: E731
    assert total("runnel_cluster_upload_seconds_count") > 0
    assert total("runnel_cluster_commit_seconds_count") > 0
    assert total('runnel_cluster_commit_seconds_bucket{le="+Inf"}') == total("runnel_cluster_commit_seconds_count")
    assert total("runnel_cluster_uploaded_bytes_total") > 600 * 10
    assert total("runnel_cluster_read_cache_hits_total") + total("runnel_cluster_read_cache_misses_total") > 0
    assert all(m["runnel_cluster_live_brokers"] == 3 for m in scrapes.values())
    wait_until(lambda: cluster.brokers[1].metrics()["runnel_cluster_objects"] > 0, 30,
               "broker 1 to count the bucket's objects")


def test_kill_and_pause_brokers_while_producing(cluster):
    """Idempotent acks=all producing while one broker is killed with kill -9 and restarted and another is
    paused (SIGSTOP) past its lease: every acknowledged record is in the log once, offsets dense."""
    topic = unique_topic("failures")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    acks = Acks()
    producer = idempotent_producer(cluster.bootstrap)
    count = 6000

    def pause_3():
        cluster.pause(3)
        # Past the 3 s lease: the others drop broker 3 from their answers.
        wait_until(lambda: 3 not in cluster.live_brokers(), 20, "broker 3's lease to run out")

    events = {
        1000: lambda: cluster.brokers[2].kill9(),
        2500: lambda: cluster.brokers[2].start(cluster.brokers[2].port),
        3500: pause_3,
        4500: lambda: cluster.resume(3),
    }
    produce_with(producer, topic, acks, count, events)
    assert len(acks.acked) == count, f"only {len(acks.acked)} of {count} acknowledged: {acks.errors[:5]}"
    seen = check_log(cluster.brokers[1].bootstrap, topic, PARTITIONS, acks.acked)
    assert len(seen) == count


def test_engines_restarted_mid_stream(cluster):
    """PostgreSQL and SeaweedFS each stopped and started again while records are produced: the producer
    sees errors and retries, and the log ends with every record once."""
    topic = unique_topic("engines")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    pg, s3 = cluster.pg, cluster.s3
    acks = Acks()
    producer = idempotent_producer(cluster.bootstrap)

    def outage(stop, start):
        def run():
            stop()
            time.sleep(2)
            start()
        return run

    events = {1000: outage(pg.stop, pg.start), 2500: outage(s3.stop, s3.start)}
    produce_with(producer, topic, acks, 4000, events)
    assert len(acks.acked) == 4000, f"{len(acks.acked)} acknowledged; errors: {acks.errors[:5]}"
    wait_until(lambda: set(cluster.live_brokers()) >= {1, 2, 3}, 30, "brokers live again after the outage")
    check_log(cluster.brokers[2].bootstrap, topic, PARTITIONS, acks.acked)


def test_every_broker_killed_at_once_loses_nothing(cluster):
    """What was acknowledged is in object storage and the database: kill -9 of all three brokers together,
    then a fresh start, and every record is there."""
    topic = unique_topic("all-down")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    acks = Acks()
    producer = idempotent_producer(cluster.bootstrap)
    produce_with(producer, topic, acks, 1500, {}, pace=0)
    for b in cluster.brokers.values():
        b.kill9()
    for b in cluster.brokers.values():
        b.start(b.port)
    check_log(cluster.bootstrap, topic, PARTITIONS, acks.acked)


def test_added_broker_takes_load(cluster):
    """A fourth broker pointed at the same bucket and database is listed at once, leads a share of the
    partitions and commits the records sent to them."""
    topic = unique_topic("grow")
    # Leaders come from rendezvous hashing: with 12 partitions a fourth broker leads none of them about 3% of
    # the time, with 48 about once in a million.
    partitions = 48
    create_topic(cluster.bootstrap, topic, partitions)
    b4 = cluster.add(4)
    try:
        cluster.wait_listed({1, 2, 3, 4})
        leaders = wait_until(lambda: (l := topic_partitions(cluster.bootstrap, topic)) and 4 in l.values() and l,
                             30, "broker 4 leading some partitions")
        before = int(cluster.pg.psql("SELECT count(*) FROM runnel_objects WHERE uploaded_by = 4"))
        acks = Acks()
        producer = idempotent_producer(cluster.bootstrap)
        produce_with(producer, topic, acks, 1200, {}, pace=0, partitions=partitions)
        after = int(cluster.pg.psql("SELECT count(*) FROM runnel_objects WHERE uploaded_by = 4"))
        assert after > before, "broker 4 committed nothing"
        mine = [p for p, leader in leaders.items() if leader == 4]
        assert mine and all(acks.acked[v][0] in range(partitions) for v in acks.acked)
        check_log(b4.bootstrap, topic, partitions, acks.acked)
    finally:
        b4.stop()
        del cluster.brokers[4]


def test_cluster_status_reads_the_database(cluster):
    """`runnel cluster status` lists the brokers with their leases and counts the objects, from the
    database alone."""
    import re
    import subprocess

    from conftest import RUNNEL_BIN

    topic = unique_topic("status")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    acks = Acks()
    produce_with(idempotent_producer(cluster.bootstrap), topic, acks, 50, {}, pace=0)
    out = subprocess.run([str(RUNNEL_BIN), "cluster", "status", "--metadata", cluster.pg.url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"3 of 3 registered brokers live", out.stdout), out.stdout
    for node, b in cluster.brokers.items():
        assert re.search(rf"^\s+{node}\s+PLAINTEXT://{b.host}:{b.port}\s+-\s+\d+\.\ds\s", out.stdout, re.M), out.stdout
    objects = int(re.search(r"^objects (\d+) \(", out.stdout, re.M).group(1))
    assert objects > 0, out.stdout


def test_retention_deletes_old_batches_and_then_their_objects(cluster):
    """retention.ms on a topic: once its records are older than that, the log start moves to the end of
    every partition, the objects that held them lose their rows and are deleted from the bucket; a topic
    without retention beside it keeps everything."""
    kept, expiring = unique_topic("kept"), unique_topic("expiring")
    create_topic(cluster.bootstrap, kept, 3)
    create_topic(cluster.bootstrap, expiring, 3, config={"retention.ms": "4000"})
    for t in (kept, expiring):
        acks = Acks()
        produce_with(idempotent_producer(cluster.bootstrap), t, acks, 300, {}, pace=0, partitions=3)
        assert len(acks.acked) == 300

    def objects_of(topic):
        rows = cluster.pg.psql(f"""SELECT DISTINCT b.object_key FROM runnel_batches b
                                   JOIN runnel_topics t USING (topic_id) WHERE t.name = '{topic}'""")
        return set(rows.split())

    expiring_objects, kept_objects = objects_of(expiring), objects_of(kept)
    assert expiring_objects and kept_objects and not expiring_objects & kept_objects
    prefix = cluster.base_sets["storage"].split("/", 3)[3]  # s3://BUCKET/PREFIX: keys are under PREFIX
    in_bucket = lambda k: cluster.s3.has_object(f"{prefix}/{k}")  # noqa: E731
    assert all(in_bucket(k) for k in expiring_objects), "objects are in the bucket"

    from helpers import watermarks
    wait_until(lambda: all(watermarks(cluster.bootstrap, expiring, p)[0] == 100 for p in range(3)), 60,
               "retention to move every log start to the end")
    wait_until(lambda: not cluster.pg.psql("SELECT object_key FROM runnel_objects WHERE object_key IN ("
                                           + ",".join(f"'{k}'" for k in expiring_objects) + ")"),
               60, "the expired objects' rows to go")
    wait_until(lambda: not any(in_bucket(k) for k in expiring_objects), 30, "the expired objects to leave the bucket")
    assert not objects_of(expiring), "batch rows of the expired topic are left"
    # The kept topic's batches may have moved into segment objects meanwhile: wherever they are, they are there.
    assert all(in_bucket(k) for k in objects_of(kept))
    assert all(watermarks(cluster.bootstrap, kept, p) == (0, 100) for p in range(3))


def batch_offsets(segment: bytes) -> list[tuple[int, int]]:
    """(base offset, last offset) of each record batch of a Kafka segment file's bytes."""
    import struct

    out, at = [], 0
    while at + 27 <= len(segment):
        base, length = struct.unpack_from(">qi", segment, at)
        (last_delta,) = struct.unpack_from(">i", segment, at + 23)
        out.append((base, base + last_delta))
        at += 12 + length
    assert at == len(segment), f"{len(segment) - at} bytes after the last batch"
    return out


def test_old_batches_are_compacted_into_segment_objects(cluster):
    """A partition's batches, scattered over many produce rounds' objects, are copied once older than the
    compaction delay into segment objects of that partition alone, in Kafka's segment format (batches with
    their offsets, back to back, dense); the log reads the same, and the round objects leave the bucket."""
    topic = unique_topic("segments")
    create_topic(cluster.bootstrap, topic, 3)
    acks = Acks()
    produce_with(idempotent_producer(cluster.bootstrap), topic, acks, 600, {}, pace=0.003, partitions=3)
    assert len(acks.acked) == 600

    def rows():
        out = cluster.pg.psql(f"""SELECT b.partition, b.object_key FROM runnel_batches b
                                  JOIN runnel_topics t USING (topic_id) WHERE t.name = '{topic}'""")
        return [(int(p), k) for p, k in (line.split("|") for line in out.splitlines())]

    rounds = {k for _, k in rows()}
    assert len(rounds) > 3, f"the records came in {len(rounds)} rounds only"
    batch_rows = len(rows())
    wait_until(lambda: all(k.startswith("objects/seg-") for _, k in rows()), 60,
               "every batch of the topic in a segment object")
    # The index of old data is a row per run of batches (about 1 MiB), not a row per batch: here, with
    # 200 small records per partition, one row per segment.
    merged = rows()
    assert len(merged) < batch_rows, f"{len(merged)} rows after compaction, {batch_rows} before"
    for p in range(3):
        segments = {k for q, k in merged if q == p}
        assert len([k for q, k in merged if q == p]) == len(segments), \
            f"partition {p}: more index rows than segments: {[k for q, k in merged if q == p]}"
    prefix = cluster.base_sets["storage"].split("/", 3)[3]
    by_partition: dict[int, set[str]] = {}
    for p, k in rows():
        by_partition.setdefault(p, set()).add(k)
    for p, keys in by_partition.items():
        offsets = []
        for k in sorted(keys):
            assert f"-{p}-" in k, f"segment {k} named for another partition than {p}"
            data = cluster.s3.get_object(f"{prefix}/{k}")
            assert data is not None, f"segment {k} is not in the bucket"
            offsets += batch_offsets(data)
        offsets.sort()
        assert offsets[0][0] == 0 and all(b == a[1] + 1 for a, (b, _) in zip(offsets, offsets[1:])), \
            f"partition {p}: segment batches not dense: {offsets[:10]}"
        assert offsets[-1][1] == 199
    check_log(cluster.bootstrap, topic, 3, acks.acked)
    # A read from inside a merged row starts at the offset asked for, and a timestamp inside one finds its
    # record, on every broker.
    by_offset = {at: v for v, at in acks.acked.items()}
    for b in cluster.brokers.values():
        assert read_from(b.bootstrap, topic, 1, 137)[0] == (137, by_offset[(1, 137)])
        first, ts = read_from(b.bootstrap, topic, 2, 88, with_timestamp=True)[0]
        assert first == 88
        found = offsets_for_times(b.bootstrap, topic, 2, ts)
        assert found <= 88 and read_from(b.bootstrap, topic, 2, found, with_timestamp=True)[0][1] == ts
    # The rounds held this topic alone (nothing else was produced meanwhile): emptied, they go.
    wait_until(lambda: not any(cluster.s3.has_object(f"{prefix}/{k}") for k in rounds), 60,
               "the emptied round objects to leave the bucket")


def read_from(bootstrap: str, topic: str, partition: int, offset: int, with_timestamp: bool = False) -> list:
    """The first records of `partition` from `offset`: (offset, value), or (offset, timestamp)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("reader"), "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        msgs = wait_until(lambda: [m for m in c.consume(10, timeout=1) if m.error() is None], 30,
                          f"records of {topic}-{partition} from {offset}")
        return [(m.offset(), m.timestamp()[1] if with_timestamp else m.value()) for m in msgs]
    finally:
        c.close()


def offsets_for_times(bootstrap: str, topic: str, partition: int, ts: int) -> int:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("times")})
    try:
        return c.offsets_for_times([TopicPartition(topic, partition, ts)], timeout=10)[0].offset
    finally:
        c.close()


def test_compacted_topic_keeps_the_newest_record_per_key(cluster):
    """cleanup.policy=compact on the shared log: once in segment objects, a partition keeps of each key only
    its newest record, at the offset it was written at, and a tombstone goes after delete.retention.ms."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = unique_topic("compacted")
    create_topic(cluster.bootstrap, topic, 1, {"cleanup.policy": "compact", "delete.retention.ms": "2000"})
    acked: dict[int, tuple[bytes, bytes | None]] = {}

    def on_delivery(err, msg):
        assert err is None, err
        acked[msg.offset()] = (msg.key(), msg.value())

    p = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True, "linger.ms": 2})
    for i in range(300):
        p.produce(topic, key=f"k{i % 10}".encode(), value=f"v{i}".encode(), partition=0, on_delivery=on_delivery)
        if i % 20 == 0:
            p.flush(10)  # many small batches, in several rounds
    p.produce(topic, key=b"k0", value=None, partition=0, on_delivery=on_delivery)
    assert p.flush(30) == 0 and len(acked) == 301
    newest = {}
    for offset in sorted(acked):
        newest[acked[offset][0]] = offset
    expected = sorted((o, acked[o][1]) for k, o in newest.items() if k != b"k0")

    def view() -> list[tuple[int, bytes | None]]:
        c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": unique_topic("view"),
                      "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            out, idle_since = [], time.monotonic()
            while time.monotonic() - idle_since < 1.5:
                m = c.poll(0.2)
                if m is not None and m.error() is None:
                    out.append((m.offset(), m.value()))
                    idle_since = time.monotonic()
            return out
        finally:
            c.close()

    wait_until(lambda: view() == expected, 90, "the newest record of each key alone, the tombstone gone")
    rows = cluster.pg.psql(f"""SELECT count(*) FROM runnel_batches b JOIN runnel_topics t USING (topic_id)
                               WHERE t.name = '{topic}' AND b.object_key NOT LIKE 'objects/seg-%'""")
    assert rows == "0", f"{rows} rows of the topic still outside segments"


def test_java_producer_through_a_killed_broker(cluster, tmp_path):
    """The Java client (kafka-clients 4.x, idempotent, acks=all) produces while a broker is killed with
    kill -9 and started again: every acknowledged record is in the log once, offsets dense."""
    import subprocess

    from helpers import java_command

    topic = unique_topic("java")
    create_topic(cluster.bootstrap, topic, PARTITIONS)
    acked: dict[bytes, tuple[int, int]] = {}
    with open(tmp_path / "producer.stderr", "wb") as err:
        proc = subprocess.Popen(java_command("CrashProducer", cluster.bootstrap, topic, "20000", "150"),
                                stdout=subprocess.PIPE, stderr=err, text=True)
        killed = restarted = False
        for line in proc.stdout:
            parts = line.split()
            if parts[:1] == ["ACK"]:
                acked[parts[3].encode()] = (int(parts[1]), int(parts[2]))
            if len(acked) >= 3000 and not killed:
                cluster.brokers[1].kill9()
                killed = True
            if len(acked) >= 8000 and killed and not restarted:
                cluster.brokers[1].start(cluster.brokers[1].port)
                restarted = True
        assert proc.wait(60) == 0
    assert killed and restarted, f"only {len(acked)} records acknowledged"
    assert len(acked) == 20000, f"{len(acked)} acknowledged:\n{(tmp_path / 'producer.stderr').read_text()[-2000:]}"
    check_log(cluster.brokers[2].bootstrap, topic, PARTITIONS, acked)


def test_consumers_fetch_from_their_own_rack(engines, tmp_path_factory):
    """KIP-392 in a cluster: with brokers in racks a, b and c, a consumer with client.rack=b is sent to rack b's
    broker for every partition (whoever leads it) and reads everything there; the other brokers send it no
    records."""
    pg, s3 = engines
    pg.psql("CREATE DATABASE racks")
    racks = Cluster(tmp_path_factory.mktemp("racks"), pg, s3, n=3, prefix="racks", database="racks",
                    racks={1: "a", 2: "b", 3: "c"})
    try:
        racks.wait_listed({1, 2, 3})
        topic = unique_topic("racks")
        create_topic(racks.bootstrap, topic, PARTITIONS)
        leaders = topic_partitions(racks.bootstrap, topic)
        assert {1, 3} & set(leaders.values()), f"every partition led by rack b's broker: {leaders}"
        acks = Acks()
        produce_with(idempotent_producer(racks.bootstrap), topic, acks, 1200, {}, pace=0)
        fetched = lambda n: racks.brokers[n].metrics().get('runnel_response_bytes_total{api="Fetch"}', 0)  # noqa: E731
        before = {n: fetched(n) for n in (1, 2, 3)}
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": racks.bootstrap, "group.id": "racks-unused", "client.rack": "b",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        got = set()
        deadline = time.monotonic() + 60
        while len(got) < 1200 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.add(m.value())
        c.close()
        assert got == set(acks.acked), f"read {len(got)} of 1200"
        grew = {n: fetched(n) - before[n] for n in (1, 2, 3)}
        payload = sum(len(v) for v in got)
        assert grew[2] > payload, f"rack b's broker served {grew}"
        assert grew[1] < payload / 4 and grew[3] < payload / 4, f"brokers in other racks served records: {grew}"
    finally:
        racks.close()
