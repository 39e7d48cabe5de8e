"""Dynamic broker configs (KIP-226): kafka-configs.sh --entity-type brokers and the AdminClient change broker
settings while the broker runs, for every broker (--entity-default, resource name "") or for one (its id),
with Kafka's precedence (per broker over the cluster default over the static config), Kafka's refusals, and
effects a client sees: a smaller message.max.bytes refuses a produce, a new keystore file is served, and the
values outlive a restart. Every test runs against Apache Kafka too, with the same settings and assertions.
Where Runnel differs on purpose: it refuses unknown keys (Kafka stores them for plugins) and inline key
material (it would land in the data directory); neither is exercised here."""

from __future__ import annotations

import socket
import ssl

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType

import tls_certs
from helpers import admin, create_topic, unique_topic, wait_until
from security_helpers import CONFIG_TOOL, kafka_tool

pytestmark = pytest.mark.java


def configs(bootstrap: str, *args: str) -> tuple[int, str]:
    """kafka-configs.sh --entity-type brokers ARGS; (exit code, stdout + stderr)."""
    rc, out, err = kafka_tool(CONFIG_TOOL, "--bootstrap-server", bootstrap, "--entity-type", "brokers", *args)
    return rc, out + err


def ok(bootstrap: str, *args: str) -> str:
    rc, out = configs(bootstrap, *args)
    assert rc == 0, f"kafka-configs {' '.join(args)} exited {rc}:\n{out[-3000:]}"
    return out


def topic_config(bootstrap: str, topic: str, key: str):
    r = ConfigResource(ResourceType.TOPIC, topic)
    a = admin(bootstrap)  # held until the result is in: a collected client cancels its requests
    return a.describe_configs([r])[r].result(15)[key]


def test_kafka_configs_sets_describes_and_deletes_broker_configs_at_both_scopes(start_broker):
    b = start_broker()
    bs, broker_id = b.bootstrap, str(b.node_id)
    ok(bs, "--entity-default", "--alter", "--add-config", "log.retention.ms=1234567")
    ok(bs, "--entity-name", broker_id, "--alter", "--add-config",
       "log.retention.ms=7654321,sasl.kerberos.min.time.before.relogin=58000")

    # Kafka applies both through its metadata log: wait for the describe to show them.
    default = wait_until(lambda: (o := ok(bs, "--entity-default", "--describe")) and "log.retention.ms=1234567" in o
                         and o, 20, "the cluster default described")
    assert "log.retention.ms=1234567 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=" \
           "1234567}" in default, default
    assert "kerberos" not in default, default
    one = wait_until(lambda: (o := ok(bs, "--entity-name", broker_id, "--describe")) and "58000" in o and o, 20,
                     f"broker {broker_id}'s configs described")
    assert "log.retention.ms=7654321 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=7654321, " \
           "DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=1234567" in one, one
    assert "sasl.kerberos.min.time.before.relogin=58000 sensitive=false" in one, one

    # A topic without its own retention.ms takes the broker's dynamic value, and says where it came from.
    t = unique_topic("dyn")
    create_topic(bs, t)
    e = topic_config(bs, t, "retention.ms")
    assert (e.value, e.source) == ("7654321", ConfigSource.DYNAMIC_BROKER_CONFIG.value), e

    ok(bs, "--entity-name", broker_id, "--alter", "--delete-config", "log.retention.ms")
    wait_until(lambda: topic_config(bs, t, "retention.ms").value == "1234567", 20,
               f"the cluster default once broker {broker_id}'s value is deleted")
    e = topic_config(bs, t, "retention.ms")
    assert e.source == ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value, e

    refusals = {
        ("--entity-default", "num.partitions=3"): "Cannot update these configs dynamically: [num.partitions]",
        ("--entity-default", "sasl.kerberos.min.time.before.relogin=1"):
            "Cannot update these configs at default cluster level, broker id must be specified",
        ("--entity-name", "log.retention.ms=soon"): "Invalid value soon for configuration log.retention.ms",
        ("--entity-name", "ssl.keystore.location=/nowhere.pem"):
            "can be dynamically updated only per-listener using the listener prefix",
    }
    for (scope, setting), message in refusals.items():
        target = [scope] if scope == "--entity-default" else [scope, broker_id]
        rc, out = configs(bs, *target, "--alter", "--add-config", setting)
        assert rc != 0 and message in out, f"{setting} at {scope}: exit {rc}\n{out[-2000:]}"


def _produce_result(bootstrap: str, topic: str, size: int) -> str | None:
    """None when a record of `size` bytes is acknowledged, else the delivery error's name."""
    outcome = []
    p = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4_000_000, "retries": 0,
                  "delivery.timeout.ms": 10000, "compression.type": "none"})
    p.produce(topic, b"x" * size, on_delivery=lambda err, _m: outcome.append(err))
    p.flush(15)
    assert outcome, "no delivery report"
    return None if outcome[0] is None else outcome[0].name()


def _refused_when_set(start_broker) -> tuple:
    b = start_broker()
    t = unique_topic("dyn-size")
    create_topic(b.bootstrap, t)
    assert _produce_result(b.bootstrap, t, 300_000) is None
    ok(b.bootstrap, "--entity-default", "--alter", "--add-config", "message.max.bytes=100000")
    wait_until(lambda: _produce_result(b.bootstrap, t, 300_000) == "MSG_SIZE_TOO_LARGE", 30,
               "a 300 kB record refused once message.max.bytes is 100000")
    assert _produce_result(b.bootstrap, t, 50_000) is None
    return b, t


def test_a_dynamic_message_max_bytes_applies_to_existing_topics(start_broker):
    b, t = _refused_when_set(start_broker)
    ok(b.bootstrap, "--entity-default", "--alter", "--delete-config", "message.max.bytes")
    wait_until(lambda: _produce_result(b.bootstrap, t, 300_000) is None, 30,
               "a 300 kB record accepted again once the dynamic value is deleted")


def test_dynamic_broker_configs_survive_a_restart(start_broker):
    b, t = _refused_when_set(start_broker)
    b.restart()
    assert _produce_result(b.bootstrap, t, 300_000) == "MSG_SIZE_TOO_LARGE"
    assert "message.max.bytes=100000" in ok(b.bootstrap, "--entity-default", "--describe")


def _served_certificate(address: str, ca) -> bytes:
    host, port = address.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


def test_a_listener_keystore_is_replaced_with_kafka_configs(start_broker, tmp_path):
    certs = tls_certs.make_certs(tmp_path / "certs")
    renewed, renewed_chain = tls_certs.renewed_server(certs)
    b = start_broker({"listeners": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
                      "ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs.server),
                      "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs.ca)})
    plain, tls, broker_id = b.address("PLAINTEXT"), b.address("SSL"), str(b.node_id)
    first = _served_certificate(tls, certs.ca)
    renewed_der = ssl.PEM_cert_to_DER_cert(renewed_chain.read_text().split("-----END CERTIFICATE-----")[0]
                                           + "-----END CERTIFICATE-----\n")
    assert first != renewed_der

    rc, out = configs(plain, "--entity-name", broker_id, "--alter", "--add-config",
                      f"listener.name.ssl.ssl.keystore.location={tmp_path / 'missing.pem'}")
    assert rc != 0, f"a missing keystore file was accepted:\n{out[-2000:]}"
    assert _served_certificate(tls, certs.ca) == first

    ok(plain, "--entity-name", broker_id, "--alter", "--add-config",
       f"listener.name.ssl.ssl.keystore.location={renewed}")
    wait_until(lambda: _served_certificate(tls, certs.ca) == renewed_der, 30, "the renewed certificate served")
    try:
        AdminClient({"bootstrap.servers": tls, "security.protocol": "SSL",
                     "ssl.ca.location": str(certs.ca)}).list_topics(timeout=10)
    except KafkaException as e:
        pytest.fail(f"a client cannot connect with the renewed certificate: {e}")
