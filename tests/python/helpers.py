"""Small shared helpers for the end-to-end suite: deadlines, topic names, clients."""

from __future__ import annotations

import gc
import os
import re
import threading
import time
import uuid

TARGET = os.environ.get("RUNNEL_TEST_TARGET", "runnel")
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


_last_collect = 0.0


def collect_garbage_here():
    """Runs the cyclic garbage collector (disabled by conftest) at most once a second, on the main thread
    only: the one place a confluent-kafka client may be destroyed safely."""
    global _last_collect
    if threading.current_thread() is threading.main_thread() and time.monotonic() - _last_collect > 1.0:
        _last_collect = time.monotonic()
        gc.collect()


def wait_until(cond, timeout=20.0, what="condition", interval=0.05):
    """Poll cond() until it returns a truthy value; return that value, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        collect_garbage_here()
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - remembered for the failure message
            # Only its text: the exception's traceback would keep the failed call's clients alive in a
            # reference cycle, for the collector to destroy later.
            last_error = repr(e)
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def unique_topic(prefix="t"):
    """A legal, unique topic name."""
    prefix = re.sub(r"[^a-zA-Z0-9._-]", "-", prefix)[:100]
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def payload(i: int, size: int = 0) -> bytes:
    """A deterministic value for record i, padded (compressibly) to size bytes."""
    v = f"value-{i:08d}".encode()
    if size > len(v):
        v += b"." * (size - len(v))
    return v


# ---------------------------------------------------------------- confluent-kafka conveniences

def admin(bootstrap, **conf):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, **conf})


def topic_partitions(bootstrap, topic, timeout=10.0):
    """{partition: leader} from Metadata (never auto-creates), or None if the topic does not exist."""
    md = admin(bootstrap).list_topics(timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return {p.id: p.leader for p in t.partitions.values()}


def wait_topic_ready(bootstrap, topic, partitions=1, timeout=30.0):
    """Until Metadata shows the topic with `partitions` partitions, each with a leader."""
    def ready():
        parts = topic_partitions(bootstrap, topic)
        return parts is not None and len(parts) == partitions and all(l >= 0 for l in parts.values())
    wait_until(ready, timeout, f"topic {topic} with {partitions} led partitions in Metadata")


def create_topic(bootstrap, topic, partitions=1, config=None, timeout=30.0):
    from confluent_kafka.admin import NewTopic
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
                         request_timeout=timeout)
    fs[topic].result(timeout)
    wait_topic_ready(bootstrap, topic, partitions, timeout)


def watermarks(bootstrap, topic, partition=0, timeout=10.0):
    """(low, high) watermarks through ListOffsets."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "runnel-watermarks",
                  "enable.auto.commit": False})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
    finally:
        c.close()


def consume_all(bootstrap, topic, partition, count, timeout=30.0, start=None, **conf):
    """Read `count` records of one partition from `start` (default: beginning) with confluent-kafka's
    Consumer through assign() (no group coordinator needed); fails on an error or on a timeout."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "runnel-e2e-unused", "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "auto.offset.reset": "error", **conf})
    out = []
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING if start is None else start)])
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"consumed {len(out)} of {count} records of {topic}[{partition}] "
                                     f"in {timeout}s")
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise AssertionError(f"consumer error: {m.error()}")
            out.append(m)
    finally:
        c.close()
    return out


# ---------------------------------------------------------------- Java programs (tests/java/src)

def java_command(program: str, *args: str, jvm: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The command line for a single-file Java program of tests/java/src, with extra JVM options jvm (e.g.
    "-Dname=value" system properties); fails clearly when the JDK or the kafka-clients jars (scripts/test
    fetches them) are missing."""
    import glob
    import shutil
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    java = shutil.which("java")
    assert java, "java is not on PATH (Java 17 needed for tests/java/src)"
    lib = repo / "tests" / "java" / "target" / "lib"
    assert glob.glob(str(lib / "kafka-clients-*.jar")), \
        f"no kafka-clients jar in {lib}: run scripts/test or (cd tests/java && mvn -q -B " \
        f"dependency:copy-dependencies -DoutputDirectory=target/lib)"
    return [java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", *jvm, "-cp", f"{lib}/*",
            str(repo / "tests" / "java" / "src" / f"{program}.java"), *args]


def run_java(tmp_path, program: str, *args: str, timeout=240, jvm=()) -> tuple[int, str, str]:
    """Runs a tests/java/src program (extra JVM options jvm); (exit code, stdout, stderr), its stderr kept in a
    file of tmp_path."""
    import subprocess
    log = tmp_path / f"{program}.{time.monotonic_ns()}.stderr"
    with open(log, "wb") as err:
        try:
            proc = subprocess.run(java_command(program, *args, jvm=jvm), stdout=subprocess.PIPE, stderr=err,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            raise AssertionError(f"{program} ran over {timeout}s\nstdout:\n{out}\nstderr:\n{log.read_text()[-5000:]}")
    return proc.returncode, proc.stdout.decode(errors="replace"), log.read_text(errors="replace")
