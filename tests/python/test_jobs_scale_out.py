"""Scale-out: instances of one job in one group split the partitions, and keyed state moves with its partitions.

WordCount runs as instance a alone, then b joins (the tasks split: b restores the moved tasks' state from the
changelog), then a is killed and b takes every task back after a's session times out. Input flows all along.
Together they must write what a single instance writes: every word's last total equals its count over the whole
input, and each word's totals only grow (a task processed twice, or state left behind, would show)."""

from __future__ import annotations

import json
import time

import pytest

from helpers import create_topic, unique_topic, wait_until
from job_helpers import Feeder, JobProcess, assert_word_counts_exact, end_offsets, wait_caught_up

PARTS = 4


def instances_with_records(bootstrap, status_topic):
    """Instance id → records it processed, from the job's status topic (up to its current end)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    end = end_offsets(bootstrap, [status_topic], 1)[(status_topic, 0)]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "runnel-status-reader", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    seen: dict[str, int] = {}
    try:
        c.assign([TopicPartition(status_topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if c.position([TopicPartition(status_topic, 0)])[0].offset >= end:
                break
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            st = json.loads(m.value())
            seen[st["instance"]] = seen.get(st["instance"], 0) + st["records"]
    finally:
        c.close()
    return seen


@pytest.mark.timeout(600)
def test_two_instances_split_the_partitions_and_state_moves_with_them(broker, tmp_path):
    bootstrap = broker.bootstrap
    inp, out, name = unique_topic("so-in"), unique_topic("so-out"), unique_topic("so-job")
    create_topic(bootstrap, inp, PARTS)
    feeder = Feeder(bootstrap, inp, 24_000, PARTS, 2_000)
    feeder.produce(2_000)
    flags = ["--name", name, "--interval-ms", "200", "--max-rate-per-partition", "1000"]
    a = JobProcess(tmp_path, bootstrap, "wordcount", inp, out, *flags, "--instance-id", "a").start()
    feeder.start()
    b = None
    try:
        wait_until(lambda: instances_with_records(bootstrap, f"{name}-status").get("a", 0) > 0, 60,
                   "instance a to process records")
        b = JobProcess(tmp_path, bootstrap, "wordcount", inp, out, *flags, "--instance-id", "b").start()
        # Both process records at once: the partitions were split between them.
        before = instances_with_records(bootstrap, f"{name}-status")

        def both_progress():
            now = instances_with_records(bootstrap, f"{name}-status")
            return all(now.get(i, 0) > before.get(i, 0) for i in ("a", "b"))

        wait_until(both_progress, 60, "instances a and b both to process records")
        time.sleep(2)
        a.kill9()
        feeder.join(120)
        wait_caught_up(bootstrap, name, [inp, f"{name}-words-repartition"], PARTS, 180,
                       lambda: b.check_running("instance b"))
    finally:
        a.stop()
        if b:
            b.stop()
    assert_word_counts_exact(bootstrap, out, PARTS, feeder.values)
    seen = instances_with_records(bootstrap, f"{name}-status")
    assert seen.get("a", 0) > 0 and seen.get("b", 0) > 0, seen


@pytest.mark.timeout(300)
def test_a_second_process_with_the_same_instance_id_fences_the_first(broker, tmp_path):
    """Two processes under one instance id share a transactional id: the newer one's producer fences the
    older one, which stops with a message rather than failing every batch, and the newer one's output is
    still exact."""
    bootstrap = broker.bootstrap
    inp, out, name = unique_topic("fe-in"), unique_topic("fe-out"), unique_topic("fe-job")
    create_topic(bootstrap, inp, PARTS)
    feeder = Feeder(bootstrap, inp, 6_000, PARTS, 1_000)
    feeder.produce(1_000)
    flags = ["--name", name, "--interval-ms", "200", "--instance-id", "a"]
    old = JobProcess(tmp_path, bootstrap, "wordcount", inp, out, *flags).start()
    new = None
    try:
        wait_until(lambda: instances_with_records(bootstrap, f"{name}-status").get("a", 0) > 0, 60,
                   "the first process to process records")
        new = JobProcess(tmp_path, bootstrap, "wordcount", inp, out, *flags).start()
        feeder.start()
        code = old.wait(120)
        assert code != 0, f"the fenced process exited with {code}:\n{old.tail()}"
        assert "fenced" in old.tail(), old.tail()
        feeder.join(120)
        wait_caught_up(bootstrap, name, [inp, f"{name}-words-repartition"], PARTS, 180,
                       lambda: new.check_running("the newer process"))
    finally:
        old.stop()
        if new:
            new.stop()
    assert_word_counts_exact(bootstrap, out, PARTS, feeder.values)
