"""Exactly-once under failure: a stateful job (WordCount: running totals kept with map_with_state behind a
repartition) and a windowed one (hashtag counts over a sliding window, incremental) are killed with SIGKILL at
random moments, 20 times each, while input flows; then left to finish. Their output topics, read with
read_committed, must hold exactly what a failure-free run of the same jobs over the same input writes.

The rate limit keeps the jobs behind the input, so every batch is full and the batch plan (the offset ranges)
is the same in the killed and the failure-free run: the outputs can be compared record for record. WordCount's
totals are also checked against a count in Python, and each word's totals must only grow (a batch applied
twice or lost would show).

Three ways: remote jobs (`runnel jobs run`) against Runnel, co-located jobs (`serve --job`) with the broker
itself killed, and remote jobs against Apache Kafka.
"""

from __future__ import annotations

import random
import time

import pytest

from helpers import create_topic, unique_topic
from job_helpers import (Feeder, HostingBroker, JobProcess, KafkaBroker, assert_totals_only_grow,
                         expected_word_counts, last_values, own_broker, read_output, wait_caught_up)

PARTS = 3
RECORDS = 36_000
FEED_RATE = 6_000  # records/s: faster than the jobs may go, so they stay behind
INTERVAL_MS = 100
RATE = 1_500  # per partition per second: 150 records per partition per batch
KILLS = 20
WINDOW = ["window.ms=1000", "slide.ms=300"]


def job_flags(name: str) -> list[str]:
    return ["--name", name, "--interval-ms", str(INTERVAL_MS), "--max-rate-per-partition", str(RATE)]


def window_flags() -> list[str]:
    return [a for o in WINDOW for a in ("-o", o)]


def reference_outputs(bootstrap, tmp_path, input_topic, suffix):
    """The same jobs over the same input, without failures, to the end of the input."""
    outs = {}
    for job, extra in (("wordcount", []), ("hashtags-window", window_flags())):
        name = f"{job}-ref-{suffix}"
        out = unique_topic(f"{job}-ref")
        p = JobProcess(tmp_path, bootstrap, job, input_topic, out, *job_flags(name), *extra,
                       "--stop-when-idle", "30").start()
        rc = p.wait(240)
        assert rc == 0, f"reference run of {job} failed:\n{p.tail()}"
        outs[job] = read_output(bootstrap, out, PARTS)
    return outs


def check(bootstrap, tmp_path, input_topic, outputs, feeder, suffix):
    expected = expected_word_counts(feeder.values)
    got = {job: read_output(bootstrap, topic, PARTS) for job, topic in outputs.items()}
    assert_totals_only_grow(got["wordcount"])
    totals = {k: int(v) for k, v in last_values(got["wordcount"]).items()}
    assert totals == expected, "WordCount's last totals differ from a count of the input"
    ref = reference_outputs(bootstrap, tmp_path, input_topic, suffix)
    for job in outputs:
        n = sum(len(v) for v in got[job].values())
        assert n > 0, f"{job} wrote nothing"
        for p in range(PARTS):
            assert got[job][p] == ref[job][p], \
                f"{job}: output partition {p} differs from the failure-free run " \
                f"({len(got[job][p])} vs {len(ref[job][p])} records)"


def kill_jobs_while_input_flows(bootstrap, tmp_path, input_topic, outputs, suffix):
    feeder = Feeder(bootstrap, input_topic, RECORDS, PARTS, FEED_RATE)
    feeder.produce(3_000)
    jobs = [
        JobProcess(tmp_path, bootstrap, "wordcount", input_topic, outputs["wordcount"],
                   *job_flags(f"wordcount-{suffix}")).start(),
        JobProcess(tmp_path, bootstrap, "hashtags-window", input_topic, outputs["hashtags-window"],
                   *job_flags(f"hashtags-window-{suffix}"), *window_flags()).start(),
    ]
    feeder.start()
    rnd = random.Random(7)
    try:
        for _ in range(KILLS):
            for j in jobs:
                time.sleep(rnd.uniform(0.1, 0.7))
                j.kill9()
                j.start()
        feeder.join()

        def alive():
            for j in jobs:
                assert j.proc.poll() is None, f"job {j.job} exited:\n{j.tail()}"

        for j, name in zip(jobs, ("wordcount", "hashtags-window")):
            wait_caught_up(bootstrap, f"{name}-{suffix}",
                           [input_topic, f"{name}-{suffix}-{'words' if name == 'wordcount' else 'tags'}-repartition"],
                           PARTS, 240, alive)
    finally:
        for j in jobs:
            j.stop()
    assert all(j.starts == KILLS + 1 for j in jobs)
    return feeder


@pytest.mark.runnel_only
@pytest.mark.timeout(900)
def test_remote_jobs_killed_20_times_write_exactly_the_failure_free_output(start_broker, tmp_path):
    b = start_broker()
    inp = unique_topic("eo-in")
    create_topic(b.bootstrap, inp, PARTS)
    outputs = {"wordcount": unique_topic("eo-wc"), "hashtags-window": unique_topic("eo-hw")}
    feeder = kill_jobs_while_input_flows(b.bootstrap, tmp_path, inp, outputs, "remote")
    check(b.bootstrap, tmp_path, inp, outputs, feeder, "remote")


@pytest.mark.runnel_only
@pytest.mark.timeout(900)
def test_colocated_jobs_with_the_broker_killed_20_times_write_exactly_the_failure_free_output(tmp_path_factory,
                                                                                              tmp_path):
    with own_broker(HostingBroker(tmp_path_factory.mktemp("hosting"), {}, [])) as b:
        inp = unique_topic("eo-in")
        create_topic(b.bootstrap, inp, PARTS)
        outputs = {"wordcount": unique_topic("eo-wc"), "hashtags-window": unique_topic("eo-hw")}
        common = f"input={inp},interval.ms={INTERVAL_MS},max.rate.per.partition={RATE}"
        b.jobs = [f"wordcount:{common},output={outputs['wordcount']},name=wordcount-co",
                  f"hashtags-window:{common},output={outputs['hashtags-window']},name=hashtags-window-co,"
                  + ",".join(WINDOW)]
        feeder = Feeder(b.bootstrap, inp, RECORDS, PARTS, FEED_RATE)
        feeder.produce(3_000)
        b.restart(same_port=True)
        feeder.start()
        rnd = random.Random(11)
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.3, 1.2))
            b.restart(same_port=True, clean=False)
        feeder.join(240)
        for name, rep in (("wordcount-co", "words"), ("hashtags-window-co", "tags")):
            wait_caught_up(b.bootstrap, name, [inp, f"{name}-{rep}-repartition"], PARTS, 240)
        assert b.starts == KILLS + 2
        check(b.bootstrap, tmp_path, inp, outputs, feeder, "co")


@pytest.mark.timeout(900)
def test_remote_jobs_against_apache_kafka_killed_20_times_write_exactly_the_failure_free_output(
        tmp_path_factory, tmp_path):
    with own_broker(KafkaBroker(tmp_path_factory.mktemp("kafka"), {})) as b:
        inp = unique_topic("eo-in")
        create_topic(b.bootstrap, inp, PARTS)
        outputs = {"wordcount": unique_topic("eo-wc"), "hashtags-window": unique_topic("eo-hw")}
        feeder = kill_jobs_while_input_flows(b.bootstrap, tmp_path, inp, outputs, "kafka")
        check(b.bootstrap, tmp_path, inp, outputs, feeder, "kafka")
