"""Prometheus metrics of `runnel serve --metrics-listen`: the broker's (requests, bytes and time per API,
connections, each partition's offsets and size) and its hosted jobs', in one valid text exposition."""

from __future__ import annotations

import pytest

from helpers import create_topic, unique_topic, wait_until
from conftest import Broker
from job_helpers import HostingBroker, free_port, own_broker, scrape


class MetricsBroker(HostingBroker):
    def __init__(self, workdir, port):
        super().__init__(workdir, {}, [])
        self.metrics_port = port

    def _command(self, port):
        return super()._command(port) + ["--metrics-listen", f"127.0.0.1:{self.metrics_port}"]


@pytest.mark.runnel_only
@pytest.mark.timeout(120)
def test_broker_and_hosted_job_metrics_can_be_scraped(tmp_path_factory):
    from confluent_kafka import Consumer, Producer, TopicPartition
    port = free_port()
    with own_broker(MetricsBroker(tmp_path_factory.mktemp("metrics"), port)) as b:
        topic, out, job = unique_topic("m-in"), unique_topic("m-out"), unique_topic("m-job")
        create_topic(b.bootstrap, topic, 2)
        b.jobs = [f"grep:input={topic},output={out},pattern=hit,interval.ms=100,name={job}"]
        b.restart(same_port=True)
        p = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(100):
            p.produce(topic, f"hit {i}".encode(), partition=i % 2)
        assert p.flush(10) == 0
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "m", "enable.auto.commit": False})
        c.assign([TopicPartition(topic, 0, 0)])
        got = 0
        for _ in range(50):
            m = c.poll(0.2)
            if m is not None and not m.error():
                got += 1
            if got == 50:
                break
        c.close()
        assert got == 50

        m = scrape(port)
        assert m['runnel_requests_total{api="Produce"}'] >= 1
        assert m['runnel_requests_total{api="Fetch"}'] >= 1
        assert m['runnel_request_bytes_total{api="Produce"}'] > 100 * 5
        assert m['runnel_response_bytes_total{api="Fetch"}'] > 50 * 5
        assert m['runnel_request_seconds_total{api="Produce"}'] >= 0
        assert m["runnel_connections_total"] >= 2
        assert m["runnel_connections"] >= 0
        for part in (0, 1):
            assert m[f'runnel_log_end_offset{{topic="{topic}",partition="{part}"}}'] == 50
            assert m[f'runnel_log_start_offset{{topic="{topic}",partition="{part}"}}'] == 0
            assert m[f'runnel_log_size_bytes{{topic="{topic}",partition="{part}"}}'] > 0
        # The hosted job's metrics come in the same scrape.
        wait_until(lambda: scrape(port).get(f'runnel_job_records_total{{job="{job}"}}') == 100, 30,
                   "the hosted job to report its 100 records")
        m = scrape(port)
        assert m[f'runnel_job_batches_total{{job="{job}"}}'] >= 1
        assert m[f'runnel_job_dead_letters_total{{job="{job}"}}'] == 0


class SecuredMetricsBroker(Broker):
    """A broker with listeners of its own and --metrics-listen."""

    def __init__(self, workdir, sets, port):
        super().__init__(workdir, sets)
        self.metrics_port = port

    def _command(self, port):
        return super()._command(port) + ["--metrics-listen", f"127.0.0.1:{self.metrics_port}"]


@pytest.mark.runnel_only
@pytest.mark.timeout(120)
def test_authentication_and_quota_throttle_metrics(tmp_path_factory):
    import subprocess

    from confluent_kafka import Producer

    import security_helpers as sh
    from conftest import RUNNEL_BIN
    port = free_port()
    b = SecuredMetricsBroker(tmp_path_factory.mktemp("sec-metrics"), sh.listener_sets(
        {"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT"}, sasl=True), port)
    r = subprocess.run([str(RUNNEL_BIN), "users", "set", "alice", "--mechanism", "SCRAM-SHA-256", "--password-stdin",
                        "--data-dir", str(b.data_dir)], input=sh.USERS["alice"].encode(), capture_output=True)
    assert r.returncode == 0, r.stderr
    with own_broker(b):
        rc, out, err = sh.kafka_tool(sh.CONFIG_TOOL, "--bootstrap-server", b.address("ADMIN"), "--alter",
                                     "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
                                     "--entity-name", "metrics-q", "--add-config", "producer_byte_rate=2048")
        assert rc == 0, out + err[-2000:]
        sasl = b.address("SASL_PLAINTEXT")
        assert not sh.rd_can_login(sasl, "SCRAM-SHA-256", "alice", sh.WRONG_PASSWORD, {})
        p = Producer({"bootstrap.servers": sasl, "security.protocol": "SASL_PLAINTEXT",
                      "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
                      "sasl.password": sh.USERS["alice"], "client.id": "metrics-q", "linger.ms": 0})
        topic = unique_topic("m-quota")
        create_topic(b.address("ADMIN"), topic, 1)
        for _ in range(10):
            p.produce(topic, b"x" * 4096)
        assert p.flush(60) == 0
        m = scrape(port)
        labels = '{listener="SASL_PLAINTEXT",mechanism="SCRAM-SHA-256"}'
        assert m[f"runnel_authentication_success_total{labels}"] >= 1
        assert m[f"runnel_authentication_failure_total{labels}"] >= 1
        assert m['runnel_quota_throttle_seconds_total{user="alice",client_id="metrics-q"}'] > 0
