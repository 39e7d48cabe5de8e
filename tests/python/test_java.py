"""The real Java client (kafka-clients 4.3.1) with its DEFAULT settings (idempotent producer, acks=all),
through the single-file programs in tests/java/src."""

from __future__ import annotations

import pytest

from helpers import consume_all, create_topic, run_java, watermarks

pytestmark = pytest.mark.java


def test_java_roundtrip_default_producer(broker, tmp_path):
    node_ids = ",".join(str(node_id) for node_id, _, _ in broker.nodes)
    rc, out, err = run_java(tmp_path, "RoundTrip", broker.bootstrap, f"--nodes={node_ids}")
    assert rc == 0 and out.rstrip().endswith("ROUNDTRIP OK"), \
        f"RoundTrip exited {rc}\nstdout:\n{out}\nstderr (tail):\n{err[-5000:]}"
    for step in ["roundtrip zstd", "describeConfigs", "incrementalAlterConfigs", "createPartitions",
                 "offsetsForTimes / listOffsets", "deleteRecords", "deleteTopics"]:
        assert f"OK {step}" in out


def test_java_crash_producer_acks_are_contiguous(broker, topic, tmp_path):
    """CrashProducer without a crash: every send acknowledged once, offsets 0..n-1 per partition, and what
    the consumer reads back matches the acknowledgements."""
    create_topic(broker.bootstrap, topic, 2)
    n = 600
    rc, out, err = run_java(tmp_path, "CrashProducer", broker.bootstrap, topic, str(n), "120", timeout=180)
    assert rc == 0 and out.rstrip().endswith("DONE"), f"exit {rc}\nstdout tail:\n{out[-2000:]}\nstderr:\n{err[-5000:]}"
    acks = [line.split() for line in out.splitlines() if line.startswith("ACK ")]
    assert len(acks) == n, f"{len(acks)} acknowledgements for {n} sends"
    assert sorted(v for *_, v in acks) == [f"rec-{i:08d}" for i in range(n)]
    by_part: dict[int, dict[int, str]] = {}
    for _, p, o, v in acks:
        by_part.setdefault(int(p), {})[int(o)] = v
    for p, recs in by_part.items():
        assert sorted(recs) == list(range(len(recs))), f"partition {p}: offsets not contiguous from 0"
        assert watermarks(broker.bootstrap, topic, p) == (0, len(recs))
        msgs = consume_all(broker.bootstrap, topic, p, len(recs))
        assert [(m.offset(), m.value().decode()) for m in msgs] == sorted(recs.items())
