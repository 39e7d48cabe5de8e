"""Authorization end to end, with Kafka's StandardAuthorizer semantics: for each request path (Produce, Fetch,
the consumer group's FindCoordinator/JoinGroup/OffsetCommit/OffsetFetch, the transaction's InitProducerId /
AddPartitionsToTxn / AddOffsetsToTxn / TxnOffsetCommit / EndTxn, and the admin requests) a user without ACLs
is refused with Kafka's error as the client surfaces it, then allowed once the ACL Kafka needs exists; DENY
beats ALLOW; PREFIXED patterns; Metadata shows only topics the user may DESCRIBE; ListGroups only groups it
may DESCRIBE; the principal of a client certificate (User:alice through ssl.principal.mapping.rules); ACL
administration with librdkafka, the Java AdminClient (with its SCRAM credential calls) and Kafka's own
kafka-acls.sh / kafka-configs.sh.

One broker for the module:
  ADMIN           PLAINTEXT (User:ANONYMOUS, a super user: every ACL and user is made through it)
  SASL_PLAINTEXT  SASL_PLAINTEXT, PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512, users alice, bob, admin
  MTLS            SSL with listener.name.mtls.ssl.client.auth=required; ssl.principal.mapping.rules=
                  RULE:^CN=([^,]+).*$/$1/,DEFAULT maps the client certificate CN=alice,O=runnel to User:alice
  authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer,
  super.users=User:ANONYMOUS;User:admin, allow.everyone.if.no.acl.found=false
Every test uses its own topics, groups and transactional ids, and literal (or prefixed, unique) resource
names, so the ACLs of one test never apply to another.

Operations and the ACLs Kafka 4.3.1 wants (checked here): Produce TOPIC WRITE; Fetch TOPIC READ; ListOffsets
and Metadata TOPIC DESCRIBE (implied by READ, WRITE, DELETE, ALTER, ...); FindCoordinator(group) GROUP
DESCRIBE, JoinGroup and OffsetCommit GROUP READ, OffsetFetch GROUP DESCRIBE; FindCoordinator(txn) and
InitProducerId TRANSACTIONAL_ID DESCRIBE / WRITE, AddPartitionsToTxn TOPIC WRITE, AddOffsetsToTxn GROUP READ,
TxnOffsetCommit GROUP READ + TOPIC READ, EndTxn TRANSACTIONAL_ID WRITE; CreateTopics TOPIC CREATE (or CLUSTER
CREATE); DeleteTopics and DeleteRecords TOPIC DELETE; DescribeConfigs TOPIC DESCRIBE_CONFIGS / CLUSTER
DESCRIBE_CONFIGS (broker resource); AlterConfigs and IncrementalAlterConfigs TOPIC ALTER_CONFIGS;
CreatePartitions TOPIC ALTER; DescribeGroups GROUP DESCRIBE; DeleteGroups GROUP DELETE; CreateAcls /
DeleteAcls CLUSTER ALTER, DescribeAcls CLUSTER DESCRIBE. DescribeCluster is never refused: without CLUSTER
DESCRIBE its authorized operations are empty.
"""

from __future__ import annotations

import time
import uuid
import warnings

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic,
                                   ResourceType)

from helpers import create_topic, unique_topic, wait_topic_ready, wait_until
from security_helpers import (PRINCIPAL_RULES, USERS, Endpoint, acl, add_acls, authorizer_sets, create_scram_users,
                              kafka_python_conf, listener_sets, module_broker, rdkafka_conf, remove_acls)

LISTENERS = {"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "MTLS": "SSL"}


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory, certs):
    sets = listener_sets(LISTENERS, certs, sasl=True, extra={
        "listener.name.mtls.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": PRINCIPAL_RULES,
        **authorizer_sets(),
    })

    def users(b):
        create_scram_users(b.address("ADMIN"), login_check=b.address("SASL_PLAINTEXT"))
    yield from module_broker(tmp_path_factory, sets, "acl-broker", users)


def uid() -> str:
    return uuid.uuid4().hex[:8]


def sasl(b, user, mechanism="SCRAM-SHA-256") -> Endpoint:
    return Endpoint(b.address("SASL_PLAINTEXT"), "SASL_PLAINTEXT", mechanism, user, USERS[user])


def mtls(b, certs) -> Endpoint:
    return Endpoint(b.address("MTLS"), "SSL", ca=certs.ca, cert=certs.client_cert, key=certs.client_key,
                    keystore=certs.client)


def admin_as(b, user) -> AdminClient:
    return AdminClient(rdkafka_conf(sasl(b, user)))


def root(b) -> str:
    return b.address("ADMIN")


def topic_for(b, what, partitions=1, records=0) -> str:
    """A new topic (made through ADMIN) with `records` records in partition 0."""
    t = unique_topic(f"acl-{what}")
    create_topic(root(b), t, partitions)
    if records:
        p = Producer({"bootstrap.servers": root(b), "acks": "all"})
        for i in range(records):
            p.produce(t, value=f"{t}-{i}".encode(), partition=0)
        assert p.flush(30) == 0
    return t


def produce_as(ep: Endpoint, topic, value=b"v", timeout=10.0):
    """One record to partition 0; returns (error name or None, offset)."""
    out = []
    p = Producer({**rdkafka_conf(ep), "acks": "all", "message.timeout.ms": int(timeout * 1000)})
    p.produce(topic, value=value, partition=0, on_delivery=lambda err, msg: out.append((err, msg.offset())))
    deadline = time.monotonic() + timeout + 10
    while p.flush(1.0) > 0:
        assert time.monotonic() < deadline, "flush did not finish"
    assert len(out) == 1
    err, offset = out[0]
    return (err.name() if err else None), offset


def error_name(fn) -> str | None:
    """Runs fn(); the name of the KafkaError it raises (KafkaException), or None if it succeeds."""
    try:
        fn()
    except KafkaException as e:
        return e.args[0].name()
    return None


def first_consumer_event(c: Consumer, timeout=20.0):
    """The first message or error the consumer returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None:
            return m
    raise AssertionError(f"no message and no error within {timeout}s")


def consumed_values(c: Consumer, n, timeout=30.0) -> list[bytes]:
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n:
        assert time.monotonic() < deadline, f"consumed {len(out)} of {n}"
        m = c.poll(0.2)
        if m is None:
            continue
        assert not m.error(), m.error()
        out.append(m.value())
    return out


# ---------------------------------------------------------------- principals

def test_mtls_principal_is_user_alice(acl_broker, certs):
    """The certificate CN=alice,O=runnel on the MTLS listener is User:alice: an ACL for User:alice lets it
    produce (librdkafka) and fetch (kafka-python), as it lets alice over SASL; bob stays refused."""
    t = topic_for(acl_broker, "mtls")
    assert produce_as(mtls(acl_broker, certs), t)[0] == "TOPIC_AUTHORIZATION_FAILED"
    add_acls(root(acl_broker), acl("TOPIC", t, "User:alice", "WRITE"), acl("TOPIC", t, "User:alice", "READ"))
    assert produce_as(mtls(acl_broker, certs), t, b"from-cert") == (None, 0)
    assert produce_as(sasl(acl_broker, "alice"), t, b"from-sasl") == (None, 1)
    assert produce_as(sasl(acl_broker, "bob"), t)[0] == "TOPIC_AUTHORIZATION_FAILED"

    from kafka import KafkaConsumer, TopicPartition as KTP
    c = KafkaConsumer(group_id=None, enable_auto_commit=False, request_timeout_ms=15000,
                      **kafka_python_conf(mtls(acl_broker, certs)))
    try:
        c.assign([KTP(t, 0)])
        c.seek_to_beginning(KTP(t, 0))
        got, deadline = [], time.monotonic() + 30
        while len(got) < 2:
            assert time.monotonic() < deadline, f"read {got}"
            for recs in c.poll(timeout_ms=500).values():
                got.extend(r.value for r in recs)
    finally:
        c.close()
    assert got == [b"from-cert", b"from-sasl"]


# ---------------------------------------------------------------- produce and fetch

def test_produce_needs_topic_write(acl_broker):
    t = topic_for(acl_broker, "produce")
    alice = sasl(acl_broker, "alice")
    assert produce_as(alice, t)[0] == "TOPIC_AUTHORIZATION_FAILED"
    add_acls(root(acl_broker), acl("TOPIC", t, "User:alice", "READ"))
    assert produce_as(alice, t)[0] == "TOPIC_AUTHORIZATION_FAILED", "READ must not allow Produce"
    add_acls(root(acl_broker), acl("TOPIC", t, "User:alice", "WRITE"))
    assert produce_as(alice, t) == (None, 0)


def test_fetch_needs_topic_read(acl_broker):
    """kafka-python without a group (librdkafka's consumer always looks its group's coordinator up): with
    DESCRIBE only, Fetch is refused with TOPIC_AUTHORIZATION_FAILED; with READ it returns the records."""
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.errors import TopicAuthorizationFailedError
    t = topic_for(acl_broker, "fetch", records=3)
    add_acls(root(acl_broker), acl("TOPIC", t, "User:bob", "DESCRIBE"))

    def reader():
        c = KafkaConsumer(group_id=None, enable_auto_commit=False, request_timeout_ms=15000,
                          **kafka_python_conf(sasl(acl_broker, "bob", "SCRAM-SHA-512")))
        c.assign([KTP(t, 0)])
        c.seek(KTP(t, 0), 0)
        return c

    c = reader()
    try:
        deadline = time.monotonic() + 20
        with pytest.raises(TopicAuthorizationFailedError):
            while time.monotonic() < deadline:
                assert not c.poll(timeout_ms=500), "records fetched without READ"
    finally:
        c.close()
    add_acls(root(acl_broker), acl("TOPIC", t, "User:bob", "READ"))
    c = reader()
    try:
        got, deadline = [], time.monotonic() + 30
        while len(got) < 3:
            assert time.monotonic() < deadline, f"read {got}"
            for recs in c.poll(timeout_ms=500).values():
                got.extend(r.value for r in recs)
    finally:
        c.close()
    assert got == [f"{t}-{i}".encode() for i in range(3)]


# ---------------------------------------------------------------- consumer groups

def test_consumer_group_needs_group_acls(acl_broker):
    b = acl_broker
    t = topic_for(b, "group", records=3)
    g = f"acl-group-{uid()}"
    add_acls(root(b), acl("TOPIC", t, "User:alice", "READ"))
    conf = {**rdkafka_conf(sasl(b, "alice")), "group.id": g, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": 10000}

    # no group ACL: FindCoordinator refused
    c = Consumer(conf)
    c.subscribe([t])
    m = first_consumer_event(c)
    assert m.error() and m.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED, m.error() or m.value()
    c.close()

    # DESCRIBE: OffsetFetch allowed (nothing committed yet), OffsetCommit and JoinGroup refused
    add_acls(root(b), acl("GROUP", g, "User:alice", "DESCRIBE"))
    c = Consumer(conf)
    c.assign([TopicPartition(t, 0, 0)])
    committed = c.committed([TopicPartition(t, 0)], timeout=15)
    assert committed[0].error is None and committed[0].offset < 0, committed
    assert error_name(lambda: c.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=False)) == \
        "GROUP_AUTHORIZATION_FAILED"
    c.close()
    c = Consumer(conf)
    c.subscribe([t])
    m = first_consumer_event(c)
    assert m.error() and m.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED, m.error() or m.value()
    c.close()

    # READ: JoinGroup, Fetch, OffsetCommit, OffsetFetch
    add_acls(root(b), acl("GROUP", g, "User:alice", "READ"))
    c = Consumer(conf)
    c.subscribe([t])
    try:
        assert consumed_values(c, 3) == [f"{t}-{i}".encode() for i in range(3)]
        c.commit(offsets=[TopicPartition(t, 0, 3)], asynchronous=False)
        assert c.committed([TopicPartition(t, 0)], timeout=15)[0].offset == 3
    finally:
        c.close()
    a = AdminClient({"bootstrap.servers": root(b)})
    from confluent_kafka import ConsumerGroupTopicPartitions
    res = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(g)], request_timeout=15)[g].result(15)
    assert [(p.topic, p.partition, p.offset) for p in res.topic_partitions] == [(t, 0, 3)]


# ---------------------------------------------------------------- transactions

def test_transactions_need_acls(acl_broker):
    b = acl_broker
    t = topic_for(b, "txn")
    txid, g = f"acl-txn-{uid()}", f"acl-txn-group-{uid()}"
    conf = {**rdkafka_conf(sasl(b, "alice")), "transactional.id": txid, "transaction.timeout.ms": 20000}
    meta_source = Consumer({**rdkafka_conf(sasl(b, "alice")), "group.id": g})
    meta = meta_source.consumer_group_metadata()
    meta_source.close()

    def txn_error(fn):
        try:
            fn()
        except KafkaException as e:
            return e.args[0]
        return None

    # InitProducerId (its FindCoordinator first) needs TRANSACTIONAL_ID WRITE
    e = txn_error(lambda: Producer(conf).init_transactions(20))
    assert e is not None and e.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, e

    # AddPartitionsToTxn needs TOPIC WRITE (DESCRIBE lets the producer see the topic)
    add_acls(root(b), acl("TRANSACTIONAL_ID", txid, "User:alice", "WRITE"), acl("TOPIC", t, "User:alice", "DESCRIBE"))
    p = Producer(conf)
    p.init_transactions(20)
    p.begin_transaction()
    p.produce(t, value=b"no-write", partition=0)
    e = txn_error(lambda: p.commit_transaction(20))
    assert e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED and e.txn_requires_abort(), e
    # (librdkafka 2.16's abort after this fails on Kafka 4.3 with a fatal INVALID_TXN_STATE: a new producer
    # takes the transactional id over instead)

    # AddOffsetsToTxn needs GROUP READ
    add_acls(root(b), acl("TOPIC", t, "User:alice", "WRITE"))
    p = Producer(conf)
    p.init_transactions(20)
    p.begin_transaction()
    p.produce(t, value=b"aborted-1", partition=0)
    e = txn_error(lambda: p.send_offsets_to_transaction([TopicPartition(t, 0, 1)], meta, 20))
    assert e is not None and e.code() == KafkaError.GROUP_AUTHORIZATION_FAILED and e.txn_requires_abort(), e
    p.abort_transaction(20)

    # TxnOffsetCommit needs TOPIC READ of the committed partitions (and GROUP READ)
    add_acls(root(b), acl("GROUP", g, "User:alice", "READ"))
    p.begin_transaction()
    p.produce(t, value=b"aborted-2", partition=0)
    e = txn_error(lambda: p.send_offsets_to_transaction([TopicPartition(t, 0, 1)], meta, 20))
    assert e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED and e.txn_requires_abort(), e
    p.abort_transaction(20)

    # everything granted: produce + offsets + EndTxn(commit)
    add_acls(root(b), acl("TOPIC", t, "User:alice", "READ"))
    p.begin_transaction()
    p.produce(t, value=b"committed", partition=0)
    p.send_offsets_to_transaction([TopicPartition(t, 0, 7)], meta, 20)
    p.commit_transaction(20)
    c = Consumer({"bootstrap.servers": root(b), "group.id": g, "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    try:
        assert c.committed([TopicPartition(t, 0)], timeout=15)[0].offset == 7
        c.assign([TopicPartition(t, 0, 0)])
        assert consumed_values(c, 1) == [b"committed"]
    finally:
        c.close()

    # EndTxn needs TRANSACTIONAL_ID WRITE: taken away mid-transaction
    p.begin_transaction()
    p.produce(t, value=b"never", partition=0)
    assert p.flush(20) == 0
    remove_acls(root(b), acl("TRANSACTIONAL_ID", txid, "User:alice", "WRITE"))
    e = txn_error(lambda: p.commit_transaction(20))
    assert e is not None and e.code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, e


# ---------------------------------------------------------------- admin requests

def test_create_topics_needs_create(acl_broker):
    b = acl_broker
    a = admin_as(b, "alice")
    t = unique_topic("acl-create")
    assert error_name(lambda: a.create_topics([NewTopic(t, 1, 1)], request_timeout=15)[t].result(15)) == \
        "TOPIC_AUTHORIZATION_FAILED"
    add_acls(root(b), acl("TOPIC", t, "User:alice", "CREATE"))
    a.create_topics([NewTopic(t, 2, 1)], request_timeout=15)[t].result(15)
    wait_topic_ready(root(b), t, 2)


def test_delete_topics_needs_delete(acl_broker):
    b = acl_broker
    t = topic_for(b, "delete")
    a = admin_as(b, "alice")
    assert error_name(lambda: a.delete_topics([t], request_timeout=15)[t].result(15)) == "TOPIC_AUTHORIZATION_FAILED"
    add_acls(root(b), acl("TOPIC", t, "User:alice", "DELETE"))
    a.delete_topics([t], request_timeout=15)[t].result(15)
    root_admin = AdminClient({"bootstrap.servers": root(b)})
    wait_until(lambda: t not in root_admin.list_topics(timeout=10).topics, 30, f"{t} deleted")


def test_describe_configs_needs_describe_configs(acl_broker):
    b = acl_broker
    t = topic_for(b, "dconf")
    a = admin_as(b, "alice")
    tr, br = ConfigResource(ResourceType.TOPIC, t), ConfigResource(ResourceType.BROKER, str(b.node_id))
    assert error_name(lambda: a.describe_configs([tr], request_timeout=15)[tr].result(15)) == \
        "TOPIC_AUTHORIZATION_FAILED"
    assert error_name(lambda: a.describe_configs([br], request_timeout=15)[br].result(15)) == \
        "CLUSTER_AUTHORIZATION_FAILED"
    add_acls(root(b), acl("TOPIC", t, "User:alice", "DESCRIBE_CONFIGS"),
             acl("CLUSTER", "kafka-cluster", "User:bob", "DESCRIBE_CONFIGS"))
    assert "retention.ms" in a.describe_configs([tr], request_timeout=15)[tr].result(15)
    # the broker's configs: CLUSTER DESCRIBE_CONFIGS (given to bob, not alice)
    assert error_name(lambda: a.describe_configs([br], request_timeout=15)[br].result(15)) == \
        "CLUSTER_AUTHORIZATION_FAILED"
    bob = admin_as(b, "bob")
    assert "num.partitions" in bob.describe_configs([br], request_timeout=15)[br].result(15)


def test_alter_configs_needs_alter_configs(acl_broker):
    b = acl_broker
    t = topic_for(b, "aconf")
    a = admin_as(b, "alice")
    inc = ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    legacy = ConfigResource(ResourceType.TOPIC, t, set_config={"retention.ms": "3600000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # alter_configs: the AlterConfigs API itself
        assert error_name(lambda: a.incremental_alter_configs([inc], request_timeout=15)[inc].result(15)) == \
            "TOPIC_AUTHORIZATION_FAILED"
        assert error_name(lambda: a.alter_configs([legacy], request_timeout=15)[legacy].result(15)) == \
            "TOPIC_AUTHORIZATION_FAILED"
        add_acls(root(b), acl("TOPIC", t, "User:alice", "ALTER_CONFIGS"))
        a.incremental_alter_configs([inc], request_timeout=15)[inc].result(15)
        root_admin = AdminClient({"bootstrap.servers": root(b)})
        tr = ConfigResource(ResourceType.TOPIC, t)
        wait_until(lambda: root_admin.describe_configs([tr])[tr].result(15)["retention.ms"].value == "7200000", 15,
                   "retention.ms 7200000")
        a.alter_configs([legacy], request_timeout=15)[legacy].result(15)
        wait_until(lambda: root_admin.describe_configs([tr])[tr].result(15)["retention.ms"].value == "3600000", 15,
                   "retention.ms 3600000")


def test_create_partitions_needs_alter(acl_broker):
    b = acl_broker
    t = topic_for(b, "parts")
    a = admin_as(b, "alice")
    assert error_name(lambda: a.create_partitions([NewPartitions(t, 3)], request_timeout=15)[t].result(15)) == \
        "TOPIC_AUTHORIZATION_FAILED"
    add_acls(root(b), acl("TOPIC", t, "User:alice", "ALTER"))
    a.create_partitions([NewPartitions(t, 3)], request_timeout=15)[t].result(15)
    wait_topic_ready(root(b), t, 3)


def test_delete_records_needs_delete(acl_broker):
    """librdkafka finds the partition's leader through Metadata first, so alice may DESCRIBE the topic."""
    b = acl_broker
    t = topic_for(b, "delrec", records=5)
    add_acls(root(b), acl("TOPIC", t, "User:alice", "DESCRIBE"))
    a = admin_as(b, "alice")
    tp = TopicPartition(t, 0, 3)
    assert error_name(lambda: a.delete_records([tp], request_timeout=15)[tp].result(15)) == \
        "TOPIC_AUTHORIZATION_FAILED"
    add_acls(root(b), acl("TOPIC", t, "User:alice", "DELETE"))
    res = a.delete_records([tp], request_timeout=15)[tp].result(15)
    assert res.low_watermark == 3


def _group_with_offsets(b, g, t):
    c = Consumer({"bootstrap.servers": root(b), "group.id": g, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=False)
    c.close()


def test_describe_and_delete_groups_need_group_acls(acl_broker):
    b = acl_broker
    t = topic_for(b, "dgroups", records=1)
    g = f"acl-dgroup-{uid()}"
    _group_with_offsets(b, g, t)
    a = admin_as(b, "bob")
    assert error_name(lambda: a.describe_consumer_groups([g], request_timeout=15)[g].result(15)) == \
        "GROUP_AUTHORIZATION_FAILED"
    add_acls(root(b), acl("GROUP", g, "User:bob", "DESCRIBE"))
    d = a.describe_consumer_groups([g], request_timeout=15)[g].result(15)
    assert d.group_id == g and d.state.name == "EMPTY", d
    assert error_name(lambda: a.delete_consumer_groups([g], request_timeout=15)[g].result(15)) == \
        "GROUP_AUTHORIZATION_FAILED"
    add_acls(root(b), acl("GROUP", g, "User:bob", "DELETE"))
    a.delete_consumer_groups([g], request_timeout=15)[g].result(15)
    root_admin = AdminClient({"bootstrap.servers": root(b)})
    wait_until(lambda: g not in {x.group_id for x in root_admin.list_consumer_groups(request_timeout=15)
                                 .result(15).valid}, 15, f"{g} deleted")


def test_list_groups_is_filtered(acl_broker):
    """ListGroups answers a user with the groups it may DESCRIBE only; the super user sees them all."""
    b = acl_broker
    t = topic_for(b, "lgroups", records=1)
    run = uid()
    groups = [f"acl-lg-{run}-{i}" for i in range(3)]
    for g in groups:
        _group_with_offsets(b, g, t)
    add_acls(root(b), acl("GROUP", groups[0], "User:bob", "DESCRIBE"), acl("GROUP", groups[1], "User:bob", "READ"))
    a = admin_as(b, "bob")
    root_admin = AdminClient({"bootstrap.servers": root(b)})

    def listed(adm):
        res = adm.list_consumer_groups(request_timeout=15).result(15)
        assert not res.errors, res.errors
        return sorted(x.group_id for x in res.valid if x.group_id.startswith(f"acl-lg-{run}-"))

    assert listed(root_admin) == groups
    assert listed(a) == groups[:2]
    assert listed(admin_as(b, "alice")) == []


def test_describe_cluster_authorized_operations(acl_broker):
    """DescribeCluster is answered for everyone; the cluster's authorized operations it reports follow the
    user's CLUSTER ACLs."""
    b = acl_broker

    def ops(user):
        a = admin_as(b, user)  # alive until the future is done
        r = a.describe_cluster(include_authorized_operations=True, request_timeout=15).result(15)
        assert sorted(n.id for n in r.nodes) == [n for n, _, _ in b.nodes], r.nodes
        return {o.name for o in (r.authorized_operations or [])}

    assert ops("alice") == set()
    add_acls(root(b), acl("CLUSTER", "kafka-cluster", "User:alice", "DESCRIBE"),
             acl("CLUSTER", "kafka-cluster", "User:alice", "IDEMPOTENT_WRITE"))
    assert ops("alice") == {"DESCRIBE", "IDEMPOTENT_WRITE"}
    super_ops = ops("admin")  # super user: everything
    assert {"DESCRIBE", "ALTER", "CREATE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS",
            "IDEMPOTENT_WRITE"} <= super_ops, super_ops


# ---------------------------------------------------------------- ACL semantics

def test_deny_beats_allow(acl_broker):
    """ALLOW WRITE for User:* on a topic, DENY WRITE for User:bob on it: alice may produce, bob may not; a
    PREFIXED ALLOW is beaten by a LITERAL DENY on one topic under the prefix."""
    b = acl_broker
    t = topic_for(b, "deny")
    add_acls(root(b), acl("TOPIC", t, "User:*", "WRITE"), acl("TOPIC", t, "User:bob", "WRITE", "DENY"))
    assert produce_as(sasl(b, "alice"), t) == (None, 0)
    assert produce_as(sasl(b, "bob"), t)[0] == "TOPIC_AUTHORIZATION_FAILED"

    prefix = f"acl-denypfx-{uid()}-"
    t1, t2 = prefix + "open", prefix + "closed"
    for x in (t1, t2):
        create_topic(root(b), x)
    add_acls(root(b), acl("TOPIC", prefix, "User:bob", "WRITE", pattern="PREFIXED"),
             acl("TOPIC", t2, "User:bob", "WRITE", "DENY"))
    assert produce_as(sasl(b, "bob"), t1) == (None, 0)
    assert produce_as(sasl(b, "bob"), t2)[0] == "TOPIC_AUTHORIZATION_FAILED"


def test_prefixed_acls(acl_broker):
    b = acl_broker
    prefix = f"acl-pfx-{uid()}"
    inside, shorter, outside = prefix + "-a", prefix[:-1], f"acl-other-{uid()}"
    for x in (inside, shorter, outside):
        create_topic(root(b), x)
    add_acls(root(b), acl("TOPIC", prefix, "User:alice", "WRITE", pattern="PREFIXED"))
    assert produce_as(sasl(b, "alice"), inside) == (None, 0)
    assert produce_as(sasl(b, "alice"), shorter)[0] == "TOPIC_AUTHORIZATION_FAILED"
    assert produce_as(sasl(b, "alice"), outside)[0] == "TOPIC_AUTHORIZATION_FAILED"
    # a prefixed CREATE lets alice make topics under the prefix only
    a = admin_as(b, "alice")
    add_acls(root(b), acl("TOPIC", prefix, "User:alice", "CREATE", pattern="PREFIXED"))
    mine, other = prefix + "-new", f"acl-other-{uid()}"
    a.create_topics([NewTopic(mine, 1, 1)], request_timeout=15)[mine].result(15)
    assert error_name(lambda: a.create_topics([NewTopic(other, 1, 1)], request_timeout=15)[other].result(15)) == \
        "TOPIC_AUTHORIZATION_FAILED"


def test_metadata_shows_only_described_topics(acl_broker):
    """Metadata for all topics lists the ones the user may DESCRIBE (READ implies it); asked for by name, a
    topic it may not describe, existing or not, is TOPIC_AUTHORIZATION_FAILED (its existence is not told)."""
    b = acl_broker
    run = uid()
    described, readable, hidden = (topic_for(b, f"md-{run}-{n}") for n in ("described", "readable", "hidden"))
    add_acls(root(b), acl("TOPIC", described, "User:bob", "DESCRIBE"), acl("TOPIC", readable, "User:bob", "READ"))
    a = admin_as(b, "bob")
    visible = {n for n in a.list_topics(timeout=15).topics if f"md-{run}-" in n}
    assert visible == {described, readable}
    assert a.list_topics(topic=hidden, timeout=15).topics[hidden].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    missing = f"acl-md-{run}-missing"
    assert a.list_topics(topic=missing, timeout=15).topics[missing].error.code() == \
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    md = a.list_topics(topic=readable, timeout=15).topics[readable]
    assert md.error is None and len(md.partitions) == 1
    # the super user sees every one of them
    assert {n for n in AdminClient({"bootstrap.servers": root(b)}).list_topics(timeout=15).topics
            if f"md-{run}-" in n} == {described, readable, hidden}


# ---------------------------------------------------------------- ACL administration
