"""Helpers for the transaction / exactly-once tests (test_txn_*.py): the Java TxnTool program (compiled once per
pytest process), Java processes in the background, and confluent-kafka reads under an isolation level."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
JAVA_LIB = REPO / "tests" / "java" / "target" / "lib"
STREAMS_LIB = REPO / "tests" / "streams" / "target" / "lib"
JVM_OPTS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]

_compiled: dict[str, Path] = {}
_compile_lock = threading.Lock()


def _java() -> str:
    java = shutil.which("java")
    assert java, "java is not on PATH (Java 17 needed for tests/java/src)"
    return java


def _classes(lib: Path, src: Path) -> Path:
    """Compile one single-file program once per pytest process (the source launcher would recompile it on every
    run, a few seconds each on this machine); returns the class directory."""
    key = str(src)
    with _compile_lock:
        if key in _compiled:
            return _compiled[key]
        javac = shutil.which("javac")
        assert javac, "javac is not on PATH (a JDK 17 is needed)"
        assert glob.glob(str(lib / "*.jar")), \
            f"no jars in {lib}: run scripts/test or (cd {lib.parent.parent} && mvn -q -B " \
            f"dependency:copy-dependencies -DoutputDirectory=target/lib)"
        out = Path(tempfile.mkdtemp(prefix=f"runnel-{src.stem}-"))
        r = subprocess.run([javac, "-nowarn", "-d", str(out), "-cp", f"{lib}/*", str(src)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        assert r.returncode == 0, f"javac {src} failed:\n{r.stdout.decode(errors='replace')}"
        _compiled[key] = out
        return out


def txn_tool_command(*args: str) -> list[str]:
    """The command line for tests/java/src/TxnTool.java MODE ARGS... (kafka-clients 4.3.1)."""
    classes = _classes(JAVA_LIB, REPO / "tests" / "java" / "src" / "TxnTool.java")
    return [_java(), *JVM_OPTS, "-cp", f"{classes}:{JAVA_LIB}/*", "TxnTool", *args]


def streams_command(*args: str) -> list[str]:
    """tests/streams/src/WordCount.java with the Java 17 single-file launcher and the Kafka Streams jars."""
    assert glob.glob(str(STREAMS_LIB / "kafka-streams-*.jar")), \
        f"no kafka-streams jar in {STREAMS_LIB}: run scripts/test or (cd tests/streams && mvn -q -B " \
        f"dependency:copy-dependencies -DoutputDirectory=target/lib)"
    level = os.environ.get("STREAMS_LOG_LEVEL")  # e.g. info or debug, to look into a failure
    log = [f"-Dorg.slf4j.simpleLogger.defaultLogLevel={level}"] if level else []
    return [_java(), "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", *log, "-cp", f"{STREAMS_LIB}/*",
            str(REPO / "tests" / "streams" / "src" / "WordCount.java"), *args]


def run_tool(tmp_path, *args: str, timeout: float = 120) -> tuple[int, list[str], str]:
    """Run TxnTool to completion: (exit code, stdout lines, stderr text)."""
    log = Path(tmp_path) / f"TxnTool-{args[0]}-{time.monotonic_ns()}.stderr"
    with open(log, "wb") as err:
        try:
            proc = subprocess.run(txn_tool_command(*args), stdout=subprocess.PIPE, stderr=err,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            raise AssertionError(f"TxnTool {' '.join(args)} ran over {timeout}s\nstdout:\n{out[-3000:]}\n"
                                 f"stderr:\n{log.read_text(errors='replace')[-5000:]}")
    return proc.returncode, proc.stdout.decode(errors="replace").splitlines(), log.read_text(errors="replace")


def run_ok(tmp_path, *args: str, timeout: float = 120) -> list[str]:
    rc, lines, err = run_tool(tmp_path, *args, timeout=timeout)
    assert rc == 0, f"TxnTool {' '.join(args)} exited {rc}\nstdout (tail):\n" + "\n".join(lines[-30:]) + \
                    f"\nstderr (tail):\n{err[-5000:]}"
    return lines


class Background:
    """A program in the background (own session, so kill9 reaches only it); .lines collects its stdout lines."""

    def __init__(self, cmd: list[str], log_path):
        self.lines: list[str] = []
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.PIPE,
                                     start_new_session=True)
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            with self._cv:
                self.lines.append(line)
                self._cv.notify_all()

    def snapshot(self) -> list[str]:
        with self._cv:
            return list(self.lines)

    def wait_line(self, pred, timeout: float, what: str):
        """The first line satisfying pred; fails if the process exits first or after timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines:
                    if pred(line):
                        return line
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"process exited ({self.proc.returncode}) before {what}\n{self.describe()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.describe()}")
                self._cv.wait(min(left, 0.2))

    def describe(self) -> str:
        tail = "\n".join(self.lines[-20:])
        try:
            err = self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            err = ""
        return f"stdout (tail):\n{tail}\nstderr (tail):\n{err}"

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"process did not exit within {timeout}s\n{self.describe()}")

    def kill9(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(30)  # EOF once the process is gone: every printed line is in .lines
        self._log.close()


# ---------------------------------------------------------------- confluent-kafka reads

def list_offsets(bootstrap, topic, partitions, committed: bool, timeout=15.0) -> dict[int, int]:
    """ListOffsets latest per partition: the last stable offset (read_committed) or the high watermark."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec
    a = AdminClient({"bootstrap.servers": bootstrap})
    level = IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
    fs = a.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                        isolation_level=level, request_timeout=timeout)
    return {tp.partition: f.result(timeout).offset for tp, f in fs.items()}


def lso(bootstrap, topic, partitions=1):
    return list_offsets(bootstrap, topic, partitions, committed=True)


def hw(bootstrap, topic, partitions=1):
    return list_offsets(bootstrap, topic, partitions, committed=False)


def read_all(bootstrap, topic, partitions, isolation, timeout=30.0) -> dict[int, list[tuple[int, str]]]:
    """Every record of every partition up to the end for that isolation level (LSO for read_committed, high
    watermark otherwise), with librdkafka's consumer through assign(): {partition: [(offset, value)]}.
    Fails on a consumer error or if a partition's end is not reached in time."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    ends = list_offsets(bootstrap, topic, partitions, committed=(isolation == "read_committed"))
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "runnel-txn-reader", "enable.auto.commit": False,
                  "enable.auto.offset.store": False, "auto.offset.reset": "error", "isolation.level": isolation,
                  "enable.partition.eof": True})
    out: dict[int, list[tuple[int, str]]] = {p: [] for p in range(partitions)}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        pending = {p for p in range(partitions) if ends[p] > 0}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                pos = {tp.partition: tp.offset for tp in c.position([TopicPartition(topic, p) for p in pending])}
                raise AssertionError(f"{isolation} read of {topic}: partitions {sorted(pending)} did not reach "
                                     f"{ends} in {timeout}s (positions {pos})")
            m = c.poll(0.2)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    if m.offset() >= ends[m.partition()]:
                        pending.discard(m.partition())
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            v = m.value().decode() if m.value() is not None else None
            out[m.partition()].append((m.offset(), v))
            if m.offset() + 1 >= ends[m.partition()]:
                pending.discard(m.partition())
    finally:
        c.close()
    return out


def values(recs: dict[int, list[tuple[int, str]]]) -> list[str]:
    return [v for p in sorted(recs) for _, v in recs[p]]


def wait_lso_caught_up(bootstrap, topic, partitions, timeout, what=None):
    """Until ListOffsets read_committed latest == read_uncommitted latest on every partition; returns the ends."""
    def caught_up():
        h = hw(bootstrap, topic, partitions)
        s = lso(bootstrap, topic, partitions)
        return h if h == s else None
    return wait_until(caught_up, timeout, what or f"LSO == high watermark on {topic}", interval=0.2)
