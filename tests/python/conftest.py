"""Fixtures that run the broker under test as a real process.

By default that is the Runnel binary (env RUNNEL_BIN, else <repo>/target/release/runnel). With
RUNNEL_TEST_TARGET=kafka the same suite runs against real Apache Kafka started by scripts/kafka-ref, which is
how the expectations in these tests were checked. With RUNNEL_TEST_TARGET=cluster every broker a test starts
is node 1 of a three-broker Runnel cluster on PostgreSQL and SeaweedFS (cluster_helpers.ClusterModeBroker);
tests of what only a local log has are marked `standalone_only` and skipped there.

Fixtures:
  broker        one broker per test module (fresh data dir); tests share it and use unique topic names.
  start_broker  factory for a test's own broker: start_broker({"auto.create.topics.enable": "false"}).
  topic         a unique topic name for the test.
The broker's stderr goes to a log file whose tail is attached to the report of a failing test.

Brokers started with a `listeners` set (e.g. {"listeners": "ADMIN://127.0.0.1:0,SSL://127.0.0.1:0", ...}) get no
--listen (Runnel) / --port (kafka-ref); they print line 1 `<name> listening on HOST:PORT` (the first listener)
and, in the same write, `<name> listener NAME on HOST:PORT` per listener: Broker.listeners maps NAME to
(host, port) and Broker.address(NAME) gives "host:port".
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import TARGET, unique_topic

REPO = Path(__file__).resolve().parents[2]
RUNNEL_BIN = Path(os.environ.get("RUNNEL_BIN", REPO / "target" / "release" / "runnel"))
KAFKA_REF = REPO / "scripts" / "kafka-ref"
LISTEN_RE = re.compile(r"^\S+ listening on (\S+):(\d+)\s*$")
LISTENER_RE = re.compile(r"^\S+ listener (\S+) on (\S+):(\d+)\s*$")
# values of these --set keys are not copied into the broker log's command line (JAAS configs, passwords, keys)
SECRET_KEY_RE = re.compile(r"(sasl\.jaas\.config|password|ssl\.keystore\.key|secret_access_key)$")
START_TIMEOUT = 90.0 if TARGET == "kafka" else 20.0

_started: list["Broker"] = []  # every broker of the current test module, for failure reports


def _redacted(cmd: list[str]) -> list[str]:
    """The command line with the values of secret --set keys replaced, for the broker log (subclasses build
    their own command lines, so redaction works on the arguments)."""
    out = []
    for arg in cmd:
        key, sep, _ = arg.partition("=")
        out.append(f"{key}=[redacted]" if sep and SECRET_KEY_RE.search(key) else arg)
    return out


class BrokerStartError(Exception):
    pass


class Broker:
    """One broker process on a data dir that survives restarts."""

    def __init__(self, workdir: Path, sets: dict | None = None):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "broker.log"
        self.sets = {k: str(v) for k, v in (sets or {}).items()}
        self.proc: subprocess.Popen | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.starts = 0
        self.exit_codes: list[int] = []
        self.listeners: dict[str, tuple[str, int]] = {}

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def node_id(self) -> int:
        """The node id this broker answers as (a config resource name, a partition leader)."""
        return 0

    @property
    def nodes(self) -> list[tuple[int, str, int]]:
        """(id, host, port) of every broker of the cluster this broker belongs to, by id."""
        return [(self.node_id, self.host, self.port)]

    def address(self, name: str) -> str:
        """host:port of the listener NAME (as printed at startup)."""
        assert name in self.listeners, f"no listener {name!r}; the broker printed {sorted(self.listeners)}"
        host, port = self.listeners[name]
        return f"{host}:{port}"

    def _expected_listeners(self) -> list[str] | None:
        """The listener names the `listeners` set declares (None without one)."""
        spec = self.sets.get("listeners")
        if spec is None:
            return None
        return [e.strip().split("://", 1)[0] for e in spec.split(",") if e.strip()]

    def _command(self, port: int) -> list[str]:
        sets: list[str] = []
        for k, v in self.sets.items():
            sets += ["--set", f"{k}={v}"]
        with_listeners = "listeners" in self.sets
        if TARGET == "kafka":
            port_args = [] if with_listeners else ["--port", str(port)]
            return [str(KAFKA_REF), *port_args, "--data-dir", str(self.data_dir), *sets]
        if not RUNNEL_BIN.exists():
            raise BrokerStartError(f"runnel binary not found at {RUNNEL_BIN} (cargo build --release, or set RUNNEL_BIN)")
        listen = [] if with_listeners else ["--listen", f"127.0.0.1:{port}"]
        return [str(RUNNEL_BIN), "serve", *listen, "--data-dir", str(self.data_dir), *sets]

    def _parse_listeners(self, rest: str) -> dict[str, tuple[str, int]] | None:
        """The listener lines after line 1, or None while more are expected (all declared listeners, or a
        line still being written)."""
        lines = rest.split("\n")
        complete, partial = lines[:-1], lines[-1]
        found: dict[str, tuple[str, int]] = {}
        for line in complete:
            m = LISTENER_RE.match(line)
            if m:
                found[m.group(1)] = (m.group(2), int(m.group(3)))
        expected = self._expected_listeners()
        if expected is None:
            return None if partial else found
        return found if all(n in found for n in expected) else None

    def start(self, port: int = 0) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.starts += 1
        out_path = self.workdir / f"stdout.{self.starts}"
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(_redacted(self._command(port)))}\n".encode())
        stdout = open(out_path, "wb")
        stderr = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self._command(port), stdin=subprocess.DEVNULL, stdout=stdout,
                                         stderr=stderr, cwd=str(self.workdir), start_new_session=True)
        finally:
            stdout.close()
            stderr.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            text = out_path.read_text(errors="replace")
            first, rest = text.split("\n", 1) if "\n" in text else (None, "")
            if first is not None:
                m = LISTEN_RE.match(first)
                if not m:
                    self._abort()
                    raise BrokerStartError(f"unexpected first stdout line {first!r}\n{self.log_tail()}")
                listeners = self._parse_listeners(rest)
                if listeners is not None:
                    self.host, self.port = m.group(1), int(m.group(2))
                    self.listeners = listeners
                    return self
            rc = self.proc.poll()
            if rc is not None:
                raise BrokerStartError(f"broker exited with code {rc} before printing its address\n"
                                       f"stdout: {text!r}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self._abort()
                raise BrokerStartError(f"broker printed no address line (or not every listener line) within "
                                       f"{START_TIMEOUT}s\nstdout: {text!r}\n{self.log_tail()}")
            time.sleep(0.02)

    def _abort(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait; returns the exit code (SIGKILL after timeout, then fails loudly)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(f"broker did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    def kill9(self):
        """SIGKILL: no chance to flush or clean up."""
        assert self.alive(), "kill9 on a broker that is not running"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.exit_codes.append(self.proc.returncode)

    def restart(self, extra_sets: dict | None = None, same_port: bool = False, clean: bool = True) -> "Broker":
        """Stop (SIGTERM if clean and still running) and start again on the same data dir.
        The port changes unless same_port; read .bootstrap again afterwards."""
        port = self.port if same_port else 0
        if same_port and self.listeners and "listeners" in self.sets:
            self.sets["listeners"] = ",".join(f"{n}://{h}:{p}" for n, (h, p) in self.listeners.items())
        if self.alive():
            if clean:
                self.stop()
            else:
                self.kill9()
        if extra_sets:
            self.sets.update({k: str(v) for k, v in extra_sets.items()})
        return self.start(port)

    def log_tail(self, lines: int = 150) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no broker log)"
        return f"--- broker log {self.log_path} (last {lines} lines) ---\n" + "\n".join(text[-lines:])


@atexit.register
def _kill_leftovers():
    for b in list(_started):
        if b.alive():
            b.proc.kill()


def _new_broker(tmp_path_factory, sets, name="broker") -> Broker:
    if TARGET == "cluster":
        from cluster_helpers import ClusterModeBroker
        b = ClusterModeBroker(tmp_path_factory.mktemp(name), sets)
    else:
        b = Broker(tmp_path_factory.mktemp(name), sets)
    _started.append(b)
    b.start()
    return b


def _teardown(b: Broker):
    try:
        if hasattr(b, "teardown"):
            b.teardown()
        elif b.alive():
            b.stop()
    finally:
        if b in _started:
            _started.remove(b)
        if os.environ.get("RUNNEL_KEEP_DATA") is None:
            shutil.rmtree(b.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    b = _new_broker(tmp_path_factory, {})
    yield b
    _teardown(b)


@pytest.fixture
def start_broker(tmp_path_factory):
    """Factory: start_broker({"auto.create.topics.enable": "false"}) -> a fresh Broker for this test."""
    mine: list[Broker] = []

    def factory(sets: dict | None = None, **kw) -> Broker:
        merged = dict(sets or {})
        merged.update({k.replace("__", "."): v for k, v in kw.items()})
        b = _new_broker(tmp_path_factory, merged, "own-broker")
        mine.append(b)
        return b

    yield factory
    for b in mine:
        _teardown(b)


@pytest.fixture(autouse=True)
def _module_broker_survives(request):
    """A test that crashes the shared broker fails itself, not only the tests after it."""
    yield
    for name in request.fixturenames:  # `broker` and the modules' own shared brokers (tls_broker, ...)
        if name == "broker" or (name.endswith("_broker") and name != "start_broker"):
            b = request.getfixturevalue(name)
            if isinstance(b, Broker):
                assert b.alive(), f"the broker died during this test (exit code {b.proc.returncode})\n{b.log_tail()}"


@pytest.fixture(scope="session")
def cluster_engines():
    """PostgreSQL and SeaweedFS for the cluster tests, started once; each test module takes a database and
    bucket prefix of its own."""
    from cluster_helpers import shared_engines

    return shared_engines()


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """TLS material for the security tests, made with the openssl CLI (security_helpers.make_certs): a CA, a
    server keystore (SAN IP:127.0.0.1, DNS:localhost), a client CN=alice,O=runnel, an expired server
    certificate, and a server and a client certificate from a second CA nobody trusts."""
    from security_helpers import make_certs
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def topic(request):
    return unique_topic(request.node.name)


def pytest_configure(config):
    # A confluent-kafka client left to the cyclic garbage collector (one in a reference cycle, such as a
    # producer whose delivery callback is a method of the object holding it) may be collected while one of
    # librdkafka's own threads runs Python code (a delivery report, an admin future's callback), and
    # rd_kafka_destroy on librdkafka's own thread takes the whole process down (confluent-kafka-python
    # #1761, #2129). So the collector runs only on the main thread: after each test, and from wait_until.
    gc.disable()
    config.addinivalue_line("markers", "runnel_only: needs Runnel-specific behaviour; skipped against real Kafka")
    config.addinivalue_line("markers", "java: drives the Java client programs in tests/java/src")
    config.addinivalue_line("markers", "standalone_only: a local log's behaviour; skipped with RUNNEL_TEST_TARGET=cluster")


def pytest_collection_modifyitems(config, items):
    if TARGET == "kafka":
        skip, marker = pytest.mark.skip(reason="Runnel-specific (RUNNEL_TEST_TARGET=kafka)"), "runnel_only"
    elif TARGET == "cluster":
        skip, marker = pytest.mark.skip(reason="a local log's behaviour (RUNNEL_TEST_TARGET=cluster)"), \
            "standalone_only"
    else:
        return
    for item in items:
        if marker in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    where = {"kafka": "scripts/kafka-ref (Apache Kafka)",
             "cluster": f"{RUNNEL_BIN}, three brokers on PostgreSQL + SeaweedFS"}.get(TARGET, str(RUNNEL_BIN))
    return f"broker under test: {TARGET} ({where})"


def pytest_runtest_teardown(item, nextitem):
    gc.collect()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _started:
        for b in list(_started):
            state = "running" if b.alive() else f"exited {b.proc.returncode if b.proc else None}"
            rep.sections.append((f"broker {b.bootstrap} ({state})", b.log_tail()))
