"""Helpers for the consumer-group tests (test_groups_*.py): a broker with fast group settings, producing with
known offsets, the Java members program (tests/java/src/GroupMember.java), Kafka's own group tool, and raw
group-protocol requests (non-flexible versions only) for the error-code tests."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import wire
from helpers import wait_until

REPO = Path(__file__).resolve().parents[2]
JAVA_LIB = REPO / "tests" / "java" / "target" / "lib"
KAFKA_LIB = REPO / "tests" / "kafka" / "target" / "lib"

# Fast groups: no initial rebalance delay, short sessions allowed. Both are Kafka broker keys, so the same
# settings go to scripts/kafka-ref.
GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}


def wait_checked(cond, check, timeout=30.0, what="condition", interval=0.05):
    """Like helpers.wait_until, but check() runs first on every round and its AssertionError fails at once
    (a member reporting an error, a process that exited) instead of being retried until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        check()
        try:
            v = cond()
            if v:
                return v
        except AssertionError:
            raise
        except Exception:  # noqa: BLE001 - transient (a client call that failed); retried until the deadline
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- a broker for a whole test module

def module_broker(tmp_path_factory, sets=None):
    """Generator for a module-scoped fixture: a broker (Runnel or, with RUNNEL_TEST_TARGET=kafka, Kafka) started
    with GROUP_SETTINGS plus `sets`, stopped and removed afterwards. Uses conftest's Broker class, so failure
    reports carry its log."""
    import conftest
    merged = dict(GROUP_SETTINGS)
    merged.update({k: str(v) for k, v in (sets or {}).items()})
    b = conftest._new_broker(tmp_path_factory, merged, "group-broker")
    try:
        yield b
    finally:
        conftest._teardown(b)


# ---------------------------------------------------------------- producing

def produce(bootstrap, topic, partitions, per_partition, prefix="v", timestamp_ms=None, timeout=60.0):
    """Produce per_partition records to each of `partitions` (an int count or a list of partition numbers);
    value '<prefix>-<partition>-<i>'. Returns {(partition, offset): value} from the delivery reports."""
    from confluent_kafka import Producer
    parts = range(partitions) if isinstance(partitions, int) else partitions
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    got: dict = {}
    errors: list = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            got[(msg.partition(), msg.offset())] = msg.value().decode()

    for part in parts:
        for i in range(per_partition):
            kw = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
            p.produce(topic, value=f"{prefix}-{part}-{i}".encode(), partition=part, on_delivery=report, **kw)
    deadline = time.monotonic() + timeout
    while p.flush(1.0) > 0:
        assert time.monotonic() < deadline, f"produce to {topic}: flush did not finish in {timeout}s"
    assert not errors, f"delivery errors: {errors[:5]}"
    expected = len(parts) * per_partition
    assert len(got) == expected, f"{len(got)} delivered of {expected}"
    return got


def committed(bootstrap, group, topic, partitions, timeout=15.0):
    """{partition: committed offset} through OffsetFetch (confluent-kafka); -1001 (OFFSET_INVALID) when none."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=timeout)
        for tp in res:
            assert tp.error is None, f"OffsetFetch {group} {topic}[{tp.partition}]: {tp.error}"
        return {tp.partition: tp.offset for tp in res}
    finally:
        c.close()


def end_offsets(bootstrap, topic, partitions, timeout=15.0):
    """{partition: high watermark} through ListOffsets."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "group-tests-watermarks", "enable.auto.commit": False})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in range(partitions)}
    finally:
        c.close()


# ---------------------------------------------------------------- Java programs

_compiled: dict[str, Path] = {}


def java_classes(program: str) -> Path:
    """Compiles tests/java/src/<program>.java once per test session (javac is much cheaper once than the
    source launcher's compile per JVM) and returns the class directory."""
    if program in _compiled:
        return _compiled[program]
    javac = shutil.which("javac")
    assert javac, "javac is not on PATH (a JDK 17 is needed for tests/java/src)"
    assert glob.glob(str(JAVA_LIB / "kafka-clients-*.jar")), \
        f"no kafka-clients jar in {JAVA_LIB}: run (cd tests/java && mvn -q -B dependency:copy-dependencies " \
        f"-DoutputDirectory=target/lib)"
    out = Path(tempfile.mkdtemp(prefix=f"runnel-{program}-"))
    src = REPO / "tests" / "java" / "src" / f"{program}.java"
    r = subprocess.run([javac, "-nowarn", "-cp", f"{JAVA_LIB}/*", "-d", str(out), str(src)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, f"javac {src} failed:\n{r.stdout.decode(errors='replace')}"
    _compiled[program] = out
    return out


def java_run_command(program: str, *args: str) -> list[str]:
    classes = java_classes(program)
    return ["java", "-Xmx192m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp", f"{classes}{os.pathsep}{JAVA_LIB}/*", program, *args]


class Event:
    """One stdout line of GroupMember, parsed; .t is when Python read it (time.monotonic())."""

    __slots__ = ("kind", "name", "gen", "fields", "t", "line")

    def __init__(self, line: str, t: float):
        w = line.split(" ")
        self.line, self.t, self.kind = line, t, w[0]
        self.name = w[1] if len(w) > 1 else None
        self.gen = int(w[2]) if len(w) > 2 and w[0] in ("ASSIGNED", "REVOKED", "LOST", "REC", "COMMITTED",
                                                         "COMMITFAIL") else None
        self.fields = w[3:] if self.gen is not None else w[2:]

    def parts(self, idx: int) -> frozenset:
        v = self.fields[idx]
        return frozenset() if v == "-" else frozenset(int(x) for x in v.split(","))

    @property
    def member_id(self):
        return self.fields[0]

    @property
    def all(self) -> frozenset:  # ASSIGNED: the whole assignment after the callback
        return self.parts(2)

    @property
    def added(self) -> frozenset:
        return self.parts(1)

    @property
    def record(self):  # REC: (partition, offset, value)
        return int(self.fields[0]), int(self.fields[1]), self.fields[2]

    def __repr__(self):
        return self.line


class JavaMembers:
    """One JVM running GroupMember: consumers of `topic` in `group`, added and closed by name."""

    def __init__(self, bootstrap, topic, group, log_dir: Path, label="jvm"):
        self.label = label
        self.log_path = Path(log_dir) / f"{label}.stderr"
        self.out_path = Path(log_dir) / f"{label}.stdout"
        self.events: list[Event] = []
        self.lock = threading.Lock()
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen(java_run_command("GroupMember", bootstrap, topic, group),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.out_path, "w") as copy:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                copy.write(line + "\n")
                copy.flush()
                ev = Event(line, time.monotonic())
                with self.lock:
                    self.events.append(ev)

    def send(self, line: str):
        assert self.proc.poll() is None, f"{self.label} exited with {self.proc.returncode}\n{self.diagnostics()}"
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def add(self, name: str, **conf):
        self.send(" ".join(["add", name] + [f"{k.replace('__', '.')}={v}" for k, v in conf.items()]))

    def close_member(self, name: str):
        self.send(f"close {name}")

    def snapshot(self, kind=None, name=None) -> list[Event]:
        with self.lock:
            evs = list(self.events)
        return [e for e in evs if (kind is None or e.kind == kind) and (name is None or e.name == name)]

    def last_assigned(self, name) -> Event | None:
        evs = self.snapshot("ASSIGNED", name)
        return evs[-1] if evs else None

    def errors(self):
        return self.snapshot("ERROR")

    def check(self):
        """Fails if a member reported ERROR or the JVM is gone."""
        errs = self.errors()
        assert not errs, f"{self.label}: {errs}\n{self.diagnostics()}"
        assert self.proc.poll() is None, f"{self.label} exited with {self.proc.returncode}\n{self.diagnostics()}"

    def wait_event(self, pred, timeout=60.0, what="event"):
        try:
            return wait_checked(lambda: next((e for e in self.snapshot() if pred(e)), None), self.check,
                                timeout, what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.diagnostics()}") from None

    def kill9(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout=40.0):
        """quit: closes every member, then the JVM exits."""
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.stdin.close()
            except (BrokenPipeError, OSError, AssertionError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.reader.join(10)

    def diagnostics(self, lines=60) -> str:
        out = [f"--- {self.label} stdout (last {lines} lines) ---"] + [e.line for e in self.snapshot()[-lines:]]
        try:
            err = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            err = []
        return "\n".join(out + [f"--- {self.label} stderr (last {lines} lines) ---"] + err)


def records_by_member(events):
    """{(partition, offset): [(member name, generation), ...]} from REC events."""
    seen = defaultdict(list)
    for e in events:
        if e.kind == "REC":
            p, o, _ = e.record
            seen[(p, o)].append((e.name, e.gen))
    return seen


# ---------------------------------------------------------------- Kafka's consumer group tool

GROUP_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def group_tool(bootstrap, *args, timeout=90.0):
    """Runs kafka-tools' ConsumerGroupCommand (kafka-consumer-groups.sh); returns (exit code, stdout, stderr)."""
    assert glob.glob(str(KAFKA_LIB / "kafka-tools-*.jar")), \
        f"no kafka-tools jar in {KAFKA_LIB}: (cd tests/kafka && mvn -q -B dependency:copy-dependencies " \
        f"-DoutputDirectory=target/lib)"
    cmd = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
           "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dlog4j2.level=warn",
           "-cp", f"{KAFKA_LIB}/*", GROUP_TOOL, "--bootstrap-server", bootstrap, *args]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def parse_table(text: str) -> list[dict]:
    """The whitespace-separated tables the group tool prints (a header line of upper-case column names, then
    rows); several tables are concatenated."""
    rows, header = [], None
    for line in text.splitlines():
        w = line.split()
        if not w:
            header = None
            continue
        if w[0] == "GROUP" and all(x.isupper() or "-" in x for x in w):
            header = w
            continue
        if header and len(w) == len(header):
            rows.append(dict(zip(header, w)))
    return rows


# ---------------------------------------------------------------- raw group protocol (non-flexible versions)

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
API_FIND_COORDINATOR = 10
API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_LEAVE_GROUP = 13
API_SYNC_GROUP = 14
API_DESCRIBE_GROUPS = 15
API_OFFSET_DELETE = 47

ERR_NONE = 0
ERR_ILLEGAL_GENERATION = 22
ERR_INCONSISTENT_GROUP_PROTOCOL = 23
ERR_UNKNOWN_MEMBER_ID = 25
ERR_REBALANCE_IN_PROGRESS = 27
ERR_GROUP_ID_NOT_FOUND = 69
ERR_MEMBER_ID_REQUIRED = 79

ERROR_NAMES = {0: "NONE", 15: "COORDINATOR_NOT_AVAILABLE", 16: "NOT_COORDINATOR", 22: "ILLEGAL_GENERATION",
               23: "INCONSISTENT_GROUP_PROTOCOL", 24: "INVALID_GROUP_ID", 25: "UNKNOWN_MEMBER_ID",
               26: "INVALID_SESSION_TIMEOUT", 27: "REBALANCE_IN_PROGRESS", 42: "INVALID_REQUEST",
               69: "GROUP_ID_NOT_FOUND", 79: "MEMBER_ID_REQUIRED", 82: "FENCED_INSTANCE_ID"}


def err_name(code):
    return f"{code} ({ERROR_NAMES.get(code, '?')})"


def subscription(topics, user_data=None) -> bytes:
    """ConsumerProtocolSubscription v0."""
    b = wire.i16(0) + wire.i32(len(topics)) + b"".join(wire.string(t) for t in topics)
    return b + wire.nbytes(user_data)


def assignment(parts: dict) -> bytes:
    """ConsumerProtocolAssignment v0 from {topic: [partitions]}."""
    b = wire.i16(0) + wire.i32(len(parts))
    for t, ps in parts.items():
        b += wire.string(t) + wire.i32(len(ps)) + b"".join(wire.i32(p) for p in ps)
    return b + wire.nbytes(None)


class GroupConn:
    """Connections speaking JoinGroup v5, SyncGroup v3, Heartbeat v3, LeaveGroup v3, OffsetCommit v7,
    OffsetFetch v5, DescribeGroups v4 (all non-flexible); every call returns the decoded response. As a client
    does, a group's requests go to the coordinator FindCoordinator names (in a cluster, not always the bootstrap
    broker); raw `call`s go to the bootstrap broker unless they name their group."""

    def __init__(self, bootstrap, client_id="runnel-group-wire"):
        self.bootstrap = bootstrap
        self.sock = wire.connect(bootstrap, timeout=30)
        self.client_id = client_id
        self.corr = 0
        self._socks = {bootstrap: self.sock}
        self._coordinator_of: dict[str, str] = {}

    def close(self):
        for sock in self._socks.values():
            sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def coordinator(self, group) -> str:
        """host:port of the group's coordinator, remembered once named; the bootstrap broker while none is
        (so its error reaches the caller)."""
        addr = self._coordinator_of.get(group)
        if addr is None:
            r = self.call(API_FIND_COORDINATOR, 1, wire.string(group) + wire.i8(0))
            r.i32()
            err = r.i16()
            r.string()  # error message
            r.i32()  # node id
            host, port = r.string(), r.i32()
            if err != 0:
                return self.bootstrap
            addr = self._coordinator_of[group] = f"{host}:{port}"
        return addr

    def call(self, api, version, body, timeout=30.0, group=None) -> wire.Reader:
        addr = self.bootstrap if group is None else self.coordinator(group)
        sock = self._socks.get(addr)
        if sock is None:
            sock = self._socks[addr] = wire.connect(addr, timeout=30)
        self.corr += 1
        sock.sendall(wire.request(api, version, self.corr, body, client_id=self.client_id))
        data = wire.recv_frame(sock, timeout)
        assert data is not None, f"broker {addr} closed the connection instead of answering api {api} v{version}"
        r = wire.Reader(data)
        corr = r.i32()
        assert corr == self.corr, f"correlation id {corr} != {self.corr}"
        return r

    def join(self, group, member_id="", protocols=(("range", b""),), protocol_type="consumer", session_ms=10000,
             rebalance_ms=10000, instance_id=None, timeout=30.0):
        body = (wire.string(group) + wire.i32(session_ms) + wire.i32(rebalance_ms) + wire.string(member_id)
                + wire.string(instance_id) + wire.string(protocol_type) + wire.i32(len(protocols)))
        for name, meta in protocols:
            body += wire.string(name) + wire.nbytes(meta)
        r = self.call(API_JOIN_GROUP, 5, body, timeout, group=group)
        r.i32()  # throttle
        out = {"error": r.i16(), "generation": r.i32(), "protocol": r.string(), "leader": r.string(),
               "member_id": r.string(), "members": []}
        for _ in range(r.i32()):
            out["members"].append((r.string(), r.string(), r.nbytes()))
        return out

    def join_new(self, group, **kw):
        """The v4+ two-step join: MEMBER_ID_REQUIRED with an id, then the real join with it."""
        first = self.join(group, **kw)
        if first["error"] == ERR_MEMBER_ID_REQUIRED and not kw.get("instance_id"):
            assert first["member_id"], f"MEMBER_ID_REQUIRED without a member id: {first}"
            return self.join(group, member_id=first["member_id"], **kw)
        return first

    def sync(self, group, generation, member_id, assignments=(), instance_id=None, timeout=30.0):
        body = (wire.string(group) + wire.i32(generation) + wire.string(member_id) + wire.string(instance_id)
                + wire.i32(len(assignments)))
        for mid, a in assignments:
            body += wire.string(mid) + wire.nbytes(a)
        r = self.call(API_SYNC_GROUP, 3, body, timeout, group=group)
        r.i32()
        return {"error": r.i16(), "assignment": r.nbytes()}

    def heartbeat(self, group, generation, member_id, instance_id=None):
        body = wire.string(group) + wire.i32(generation) + wire.string(member_id) + wire.string(instance_id)
        r = self.call(API_HEARTBEAT, 3, body, group=group)
        r.i32()
        return r.i16()

    def leave(self, group, members):
        """members: [(member_id, instance_id)]; returns (top-level error, [(member_id, instance_id, error)])."""
        body = wire.string(group) + wire.i32(len(members))
        for mid, inst in members:
            body += wire.string(mid) + wire.string(inst)
        r = self.call(API_LEAVE_GROUP, 3, body, group=group)
        r.i32()
        err = r.i16()
        return err, [(r.string(), r.string(), r.i16()) for _ in range(r.i32())]

    def commit(self, group, generation, member_id, offsets: dict, instance_id=None, metadata=None):
        """offsets: {(topic, partition): offset}; returns {(topic, partition): error}."""
        by_topic = defaultdict(list)
        for (t, p), o in offsets.items():
            by_topic[t].append((p, o))
        body = (wire.string(group) + wire.i32(generation) + wire.string(member_id) + wire.string(instance_id)
                + wire.i32(len(by_topic)))
        for t, ps in by_topic.items():
            body += wire.string(t) + wire.i32(len(ps))
            for p, o in ps:
                body += wire.i32(p) + wire.i64(o) + wire.i32(-1) + wire.string(metadata)
        r = self.call(API_OFFSET_COMMIT, 7, body, group=group)
        r.i32()
        out = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                out[(t, p)] = r.i16()
        return out

    def fetch_offsets(self, group, topics: dict | None):
        """topics: {topic: [partitions]} or None for all; returns (top-level error,
        {(topic, partition): (offset, metadata, error)})."""
        if topics is None:
            body = wire.string(group) + wire.i32(-1)
        else:
            body = wire.string(group) + wire.i32(len(topics))
            for t, ps in topics.items():
                body += wire.string(t) + wire.i32(len(ps)) + b"".join(wire.i32(p) for p in ps)
        r = self.call(API_OFFSET_FETCH, 5, body, group=group)
        r.i32()
        out = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                off = r.i64()
                r.i32()  # leader epoch
                meta = r.string()
                out[(t, p)] = (off, meta, r.i16())
        return r.i16(), out

    def offset_delete(self, group, topics: dict):
        """OffsetDelete v0, topics {topic: [partitions]}: (top-level error, {(topic, partition): error})."""
        body = wire.string(group) + wire.i32(len(topics))
        for t, ps in topics.items():
            body += wire.string(t) + wire.i32(len(ps)) + b"".join(wire.i32(p) for p in ps)
        r = self.call(API_OFFSET_DELETE, 0, body, group=group)
        err = r.i16()
        r.i32()  # throttle
        out = {}
        for _ in range(r.i32()):
            t = r.string()
            for _ in range(r.i32()):
                p = r.i32()
                out[(t, p)] = r.i16()
        return err, out

    def describe(self, group):
        """DescribeGroups v4 for one group: {error, state, protocol_type, protocol, members: [(member_id,
        instance_id, client_id, client_host, metadata, assignment)]}."""
        body = wire.i32(1) + wire.string(group) + wire.i8(0)
        r = self.call(API_DESCRIBE_GROUPS, 4, body, group=group)
        r.i32()
        n = r.i32()
        assert n == 1, f"DescribeGroups answered {n} groups for 1"
        out = {"error": r.i16(), "group": r.string(), "state": r.string(), "protocol_type": r.string(),
               "protocol": r.string(), "members": []}
        for _ in range(r.i32()):
            out["members"].append((r.string(), r.string(), r.string(), r.string(), r.nbytes(), r.nbytes()))
        r.i32()  # authorized operations
        return out


def find_coordinator(bootstrap, group):
    """FindCoordinator v1 (key type 0): (error, host, port)."""
    with GroupConn(bootstrap) as c:
        r = c.call(API_FIND_COORDINATOR, 1, wire.string(group) + wire.i8(0))
        r.i32()
        err = r.i16()
        r.string()  # error message
        r.i32()  # node id
        return err, r.string(), r.i32()


def wait_coordinator(bootstrap, group, timeout=60.0):
    """Kafka answers COORDINATOR_NOT_AVAILABLE until __consumer_offsets exists and COORDINATOR_LOAD_IN_PROGRESS
    while it loads it: wait until FindCoordinator names one and an OffsetFetch of the group is answered."""
    def ready():
        if find_coordinator(bootstrap, group)[0] != 0:
            return False
        with GroupConn(bootstrap) as c:
            return c.fetch_offsets(group, None)[0] == 0
    wait_until(ready, timeout, f"a loaded coordinator for {group}")
