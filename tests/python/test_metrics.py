"""Prometheus metrics of `runnel serve --metrics-listen`: the broker's (requests, bytes and time per API,
connections, each partition's offsets and size) and its hosted jobs', in one valid text exposition."""

from __future__ import annotations

import pytest

from helpers import create_topic, unique_topic, wait_until
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
