"""Cluster mode, jobs: WordCount hosted (`serve --job`) on every broker of a three-broker cluster. The job's
instances share its consumer group, so its tasks spread over the brokers; brokers are then killed with kill -9
one at a time (and started again) while input flows, and the final counts must be exact: each word's total
equal to a count of the input, and every total only growing (a batch applied twice or lost would show).
"""

from __future__ import annotations

import time

import pytest

from cluster_helpers import Cluster
from helpers import TARGET, admin, create_topic, unique_topic, wait_until
from job_helpers import Feeder, assert_word_counts_exact, wait_caught_up

pytestmark = pytest.mark.skipif(TARGET == "kafka", reason="Runnel's cluster mode (Kafka has its own replication)")

PARTS = 6
RECORDS = 12_000


def members(bootstrap: str, group: str) -> list[str]:
    """The hosts of the group's members, as DescribeGroups reports them."""
    a = admin(bootstrap)  # kept referenced: a collected client never completes its futures
    described = a.describe_consumer_groups([group])[group].result(10)
    return [m.host for m in described.members]


@pytest.mark.timeout(600)
def test_wordcount_hosted_on_every_broker_survives_brokers_killed_one_at_a_time(cluster_engines,
                                                                               tmp_path_factory):
    pg, s3 = cluster_engines
    pg.psql("CREATE DATABASE jobs")
    inp, out, name = unique_topic("wc-in"), unique_topic("wc-out"), unique_topic("wc")
    spec = f"wordcount:input={inp},output={out},name={name},interval.ms=200,max.rate.per.partition=400"
    cluster = Cluster(tmp_path_factory.mktemp("jobs"), pg, s3, n=3, prefix="jobs", database="jobs", jobs=[spec])
    try:
        cluster.wait_listed({1, 2, 3})
        create_topic(cluster.bootstrap, inp, PARTS)
        feeder = Feeder(cluster.bootstrap, inp, RECORDS, PARTS, 1500)
        feeder.produce(1_500)
        feeder.start()
        # One instance per broker, all in the job's group (the instance id is the node id).
        wait_until(lambda: len(members(cluster.bootstrap, name)) == 3, 120, "three instances in the job's group")
        for node in (1, 2, 3):
            time.sleep(3)
            cluster.brokers[node].kill9()
            time.sleep(4)
            cluster.brokers[node].start(cluster.brokers[node].port)
            cluster.wait_listed({1, 2, 3})
        feeder.join(240)
        wait_caught_up(cluster.bootstrap, name, [inp, f"{name}-words-repartition"], PARTS, 300)
        assert_word_counts_exact(cluster.bootstrap, out, PARTS, feeder.values)
    finally:
        cluster.close()
