"""Cluster mode: SCRAM users, ACLs, client quotas and dynamic broker configs belong to the cluster, not to the
broker a client happened to reach. Made through one broker they hold on every broker, each asked on its own
listener, and on a broker added afterwards with an empty data directory; ACLs created through two brokers
at the same moment both land (each document changes under a row lock in PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

from cluster_helpers import Cluster
from helpers import TARGET, create_topic, unique_topic, wait_until
from security_helpers import (CONFIG_TOOL, USERS, _binding_key, acl, add_acls, authorizer_sets,
                              create_scram_users, describe_acls, kafka_tool, listener_sets, rd_can_login)

pytestmark = pytest.mark.skipif(TARGET == "kafka", reason="Runnel's cluster mode (Kafka has its own controller)")

LISTENERS = {"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT"}
MECHANISM = "SCRAM-SHA-256"


def produced_as_alice(b, topic: str) -> str | None:
    """None when alice's record to `topic` is acknowledged (bootstrapping from broker `b` alone), else the
    delivery error's name."""
    outcome = []
    p = Producer({"bootstrap.servers": b.address("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": MECHANISM, "sasl.username": "alice", "sasl.password": USERS["alice"],
                  "retries": 0, "delivery.timeout.ms": 10000})
    p.produce(topic, b"from alice", on_delivery=lambda err, _m: outcome.append(err))
    p.flush(15)
    assert outcome, "no delivery report"
    return None if outcome[0] is None else outcome[0].name()


def broker_config(b, key: str) -> tuple[str, int]:
    """(value, source) of a key in the broker's own DescribeConfigs."""
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": b.address("ADMIN")})  # held until the result is in
    r = ConfigResource(ResourceType.BROKER, str(b.node_id))
    e = a.describe_configs([r], request_timeout=15)[r].result(15)[key]
    return e.value, e.source


def quotas_described(b) -> str:
    rc, out, err = kafka_tool(CONFIG_TOOL, "--bootstrap-server", b.address("ADMIN"), "--describe",
                              "--entity-type", "users", "--entity-name", "alice")
    assert rc == 0, err[-2000:]
    return out


@pytest.mark.timeout(300)
def test_users_acls_quotas_and_broker_configs_hold_on_every_broker(cluster_engines, tmp_path_factory):
    pg, s3 = cluster_engines
    pg.psql("CREATE DATABASE security")
    sets = listener_sets(LISTENERS, sasl=True, extra=authorizer_sets())
    cluster = Cluster(tmp_path_factory.mktemp("security"), pg, s3, n=3, prefix="security", database="security",
                      sets=sets)
    try:
        cluster.wait_listed({1, 2, 3})
        b1, b2, b3 = (cluster.brokers[n] for n in (1, 2, 3))

        # A user made through broker 1 logs in on each broker.
        create_scram_users(b1.address("ADMIN"), {"alice": USERS["alice"]}, [MECHANISM])
        for b in (b1, b2, b3):
            wait_until(lambda: rd_can_login(b.address("SASL_PLAINTEXT"), MECHANISM, "alice", USERS["alice"], {}),
                       15, f"alice's login on broker {b.node_id}", interval=0.2)

        # ACLs created through brokers 1 and 2 at once: both land, and every broker lists both.
        topics = [unique_topic("sec-a"), unique_topic("sec-b"), unique_topic("sec-none")]
        for t in topics:
            create_topic(b1.address("ADMIN"), t, 3)
        grants = [acl("TOPIC", t, "User:alice", op) for t in topics[:2] for op in ("WRITE", "DESCRIBE")]
        errors = []

        def grant(b, bindings):
            try:
                add_acls(b.address("ADMIN"), *bindings)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=grant, args=(b1, grants[:2])),
                   threading.Thread(target=grant, args=(b2, grants[2:]))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert not errors, errors
        want = {_binding_key(g) for g in grants}
        for b in (b1, b2, b3):
            wait_until(lambda: want <= {_binding_key(x) for x in describe_acls(b.address("ADMIN"))}, 15,
                       f"both brokers' ACLs listed by broker {b.node_id}")
        # The leaders of a topic's partitions are spread over the brokers: each authorizes alice alike.
        for b in (b1, b2, b3):
            assert produced_as_alice(b, topics[0]) is None
            assert produced_as_alice(b, topics[1]) is None
            assert produced_as_alice(b, topics[2]) == "TOPIC_AUTHORIZATION_FAILED"

        # A quota set through broker 2 is described by broker 3.
        rc, out, err = kafka_tool(CONFIG_TOOL, "--bootstrap-server", b2.address("ADMIN"), "--alter",
                                  "--entity-type", "users", "--entity-name", "alice",
                                  "--add-config", "producer_byte_rate=1048576")
        assert rc == 0, err[-2000:]
        wait_until(lambda: "producer_byte_rate=1048576" in quotas_described(b3), 20, "the quota on broker 3")

        # A cluster-wide broker default set through broker 3 is every broker's; a per-broker value only its own.
        for scope, value in ((["--entity-default"], "7654321"), (["--entity-name", "3"], "1234567")):
            rc, out, err = kafka_tool(CONFIG_TOOL, "--bootstrap-server", b3.address("ADMIN"), "--entity-type",
                                      "brokers", *scope, "--alter", "--add-config", f"log.retention.ms={value}")
            assert rc == 0, err[-2000:]
        dynamic_default = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
        dynamic_broker = ConfigSource.DYNAMIC_BROKER_CONFIG.value
        for b in (b1, b2):
            wait_until(lambda: broker_config(b, "log.retention.ms") == ("7654321", dynamic_default), 15,
                       f"the cluster default on broker {b.node_id}")
        assert broker_config(b3, "log.retention.ms") == ("1234567", dynamic_broker)

        # A broker that joins later, on an empty data directory, has it all from the database.
        b4 = cluster.add(4)
        cluster.wait_listed({1, 2, 3, 4})
        assert rd_can_login(b4.address("SASL_PLAINTEXT"), MECHANISM, "alice", USERS["alice"], {})
        assert want <= {_binding_key(x) for x in describe_acls(b4.address("ADMIN"))}
        assert "producer_byte_rate=1048576" in quotas_described(b4)
        assert broker_config(b4, "log.retention.ms") == ("7654321", dynamic_default)
        assert produced_as_alice(b4, topics[2]) == "TOPIC_AUTHORIZATION_FAILED"
    finally:
        cluster.close()
