"""Security beyond the client matrix: quotas, re-authentication, certificate reload, the offline user store and
the `runnel` CLI against a secured broker (OAUTHBEARER is in test_security_oauth.py).

The quota and re-authentication tests run against Apache Kafka too (same settings, same assertions); the others
exercise what only Runnel has (`runnel users`, watched certificate files, its CLI).
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import time

import pytest

import security_helpers as sh
import wire
from conftest import RUNNEL_BIN
from helpers import create_topic, unique_topic, wait_until, watermarks

# ---------------------------------------------------------------- quotas


def test_producer_byte_rate_quota_holds_a_producer_to_1_mb_per_second(start_broker, tmp_path):
    # Kafka's sampled rate lets a producer burst a whole window's worth (11 s × the quota by default) and
    # then wait, so over any 20 s the rate swings by half; a 2 × 1 s window makes 20 s a fair measure.
    b = start_broker({"quota.window.num": "2", "quota.window.size.seconds": "1"})
    topic = unique_topic("quota")
    create_topic(b.bootstrap, topic, 1)
    rc, out, err = sh.kafka_tool(sh.CONFIG_TOOL, "--bootstrap-server", b.bootstrap, "--alter",
                                 "--entity-type", "clients", "--entity-name", "quota-producer",
                                 "--add-config", "producer_byte_rate=1048576")
    assert rc == 0, f"kafka-configs --alter failed\n{out}\n{err[-3000:]}"
    rc, out, err = sh.kafka_tool(sh.CONFIG_TOOL, "--bootstrap-server", b.bootstrap, "--describe",
                                 "--entity-type", "clients", "--entity-name", "quota-producer")
    assert rc == 0 and "producer_byte_rate=1048576" in out, out + err[-2000:]
    # 1 KiB records as fast as the tool can send them: only the quota holds it back. The rate is measured on
    # the broker's log over 20 s, after a first second's burst has left the window.
    n = 30 * 1024
    proc = subprocess.Popen(sh.kafka_tool_command("org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                                                  "--num-records", str(n), "--record-size", "1024",
                                                  "--throughput", "-1", "--print-metrics", "--producer-props",
                                                  f"bootstrap.servers={b.bootstrap}", "client.id=quota-producer"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: watermarks(b.bootstrap, topic)[1] >= 1024, timeout=60,
                   what="the first megabyte", interval=0.2)
        burst = time.monotonic()
        wait_until(lambda: time.monotonic() - burst >= 3, timeout=20, what="the burst to leave the window",
                   interval=0.5)
        start, hw0 = time.monotonic(), watermarks(b.bootstrap, topic)[1]
        trace = []
        wait_until(lambda: trace.append((round(time.monotonic() - start, 1), watermarks(b.bootstrap, topic)[1]))
                   or time.monotonic() - start >= 20, timeout=30, what="20 s of throttled producing",
                   interval=0.5)
        elapsed, hw1 = time.monotonic() - start, watermarks(b.bootstrap, topic)[1]
        out = proc.communicate(timeout=120)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    rate = (hw1 - hw0) * 1024 / elapsed / 1048576
    assert 0.9 <= rate <= 1.1, f"throttled rate {rate:.3f} MB/s over {elapsed:.1f} s ({hw1 - hw0} records) {trace}"
    throttle = re.search(r"producer-metrics:produce-throttle-time-max:\{client-id=quota-producer\}\s*:\s*([\d.]+)",
                         out)
    assert throttle and float(throttle.group(1)) > 0, "the producer saw no throttle_time_ms"


# ---------------------------------------------------------------- re-authentication (KIP-368)


def _sasl_plain_connect(address: str, user: str, password: str):
    """A raw connection logged in with SaslHandshake v1 + SaslAuthenticate v1 (PLAIN); returns the socket and
    the session lifetime the broker gave."""
    s = wire.connect(address)
    mech = b"PLAIN"
    s.sendall(wire.request(17, 1, 1, wire.i16(len(mech)) + mech))
    resp = wire.recv_frame(s)
    assert resp is not None and struct.unpack(">h", resp[4:6])[0] == 0, resp
    token = b"\0" + user.encode() + b"\0" + password.encode()
    s.sendall(wire.request(36, 1, 2, wire.nbytes(token)))
    resp = wire.recv_frame(s)
    assert resp is not None
    r = wire.Reader(resp[4:])
    code = r.i16()
    assert code == 0, f"login refused with {code}"
    r.string()
    r.nbytes()
    return s, r.i64()


def _metadata_ok(s: socket.socket, corr: int) -> bool:
    s.sendall(wire.request(3, 1, corr, wire.i32(0)))
    return wire.recv_frame(s, timeout=10) is not None


def test_sessions_expire_without_reauthentication(start_broker, tmp_path):
    listeners = {"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT"}
    b = start_broker(sh.listener_sets(listeners, sasl=True, extra={
        "listener.name.sasl_plaintext.connections.max.reauth.ms": "3000"}))
    sh.create_scram_users(b.address("ADMIN"), login_check=b.address("SASL_PLAINTEXT"))
    s, lifetime = _sasl_plain_connect(b.address("SASL_PLAINTEXT"), "alice", sh.USERS["alice"])
    assert 0 < lifetime <= 3000, f"session_lifetime_ms {lifetime}"
    assert _metadata_ok(s, 3)
    deadline = time.monotonic() + lifetime / 1000 + 0.5
    wait_until(lambda: time.monotonic() > deadline, timeout=10, what="the session to pass its lifetime")
    # The broker ends an expired session at its next request instead of answering it.
    assert not _metadata_ok(s, 4), "a request after the session expired was answered"
    s.close()
    # librdkafka re-authenticates on its own (KIP-368): a producer keeps working across several lifetimes.
    from confluent_kafka import Producer
    ep = sh.Endpoint(b.address("SASL_PLAINTEXT"), "SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", sh.USERS["alice"])
    errors = []
    p = Producer({**sh.rdkafka_conf(ep), "error_cb": errors.append, "linger.ms": 0})
    topic = unique_topic("reauth")
    create_topic(b.address("ADMIN"), topic, 1)
    delivered = []
    until = time.monotonic() + 8
    while time.monotonic() < until:
        p.produce(topic, b"x", on_delivery=lambda e, m: delivered.append(e))
        p.flush(10)
    assert delivered and all(e is None for e in delivered), [e for e in delivered if e][:3]
    auth_errors = [e for e in errors if "authentication" in str(e).lower()]
    assert not auth_errors, auth_errors[:3]


# ---------------------------------------------------------------- certificate reload


@pytest.mark.runnel_only  # Kafka reloads keystores through AlterConfigs, not by watching files
def test_a_changed_certificate_file_is_used_without_a_restart(start_broker, tmp_path):
    from confluent_kafka.admin import AdminClient
    certs = sh.make_certs(tmp_path / "certs")
    keystore = tmp_path / "keystore.pem"
    keystore.write_bytes(certs.rogue_server.read_bytes())
    b = start_broker({"listeners": "SSL://127.0.0.1:0", "ssl.keystore.location": str(keystore),
                      "ssl.truststore.location": str(certs.ca)})

    def connects() -> bool:
        a = AdminClient({"bootstrap.servers": b.bootstrap, "security.protocol": "SSL",
                         "ssl.ca.location": str(certs.ca), "error_cb": lambda e: None})
        try:
            a.list_topics(timeout=3)
            return True
        except Exception:
            return False

    assert not connects(), "a certificate from an untrusted CA was accepted"
    keystore.write_bytes(certs.server.read_bytes())
    wait_until(connects, timeout=20, what="the new certificate to be served", interval=0.5)
    assert "TLS certificate reloaded" in b.log_path.read_text()


# ---------------------------------------------------------------- offline users, CLI, metrics


def _runnel(*args: str, stdin: bytes | None = None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUNNEL_BIN), *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


@pytest.mark.runnel_only
def test_offline_users_log_in_and_the_cli_speaks_to_a_secured_broker(start_broker, tmp_path):
    certs = sh.make_certs(tmp_path / "certs")
    data = tmp_path / "pre-data"
    secret = "offline-Pw-7d1c9a"
    for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        r = _runnel("users", "set", "carol", "--mechanism", mech, "--password-stdin", "--data-dir", str(data),
                    stdin=f"{secret}\n".encode())
        assert r.returncode == 0, r.stderr.decode()
    r = _runnel("users", "set", "dave", "--password-stdin", "--data-dir", str(data), stdin=b"dave-Pw-1\n")
    assert r.returncode == 0, r.stderr.decode()
    listed = _runnel("users", "list", "--data-dir", str(data)).stdout.decode()
    assert "carol\tSCRAM-SHA-256(iterations=4096),SCRAM-SHA-512(iterations=4096)" in listed, listed
    assert _runnel("users", "delete", "dave", "--data-dir", str(data)).returncode == 0
    assert "dave" not in _runnel("users", "list", "--data-dir", str(data)).stdout.decode()
    assert _runnel("users", "delete", "dave", "--data-dir", str(data)).returncode == 1
    # A password on the command line is refused by design: only stdin.
    assert _runnel("users", "set", "eve", "--data-dir", str(data)).returncode != 0

    import conftest
    b = conftest.Broker(tmp_path / "broker", {**sh.listener_sets({"SASL_SSL": "SASL_SSL", "ADMIN": "PLAINTEXT"},
                                                              certs, sasl=True), **sh.authorizer_sets()})
    conftest._started.append(b)
    try:
        import shutil
        shutil.copytree(data, b.data_dir, dirs_exist_ok=True)
        b.start()
        _secured_cli_checks(b, certs, tmp_path, secret)
    finally:
        conftest._teardown(b)


def _secured_cli_checks(b, certs, tmp_path, secret):
    ssl_ep = b.address("SASL_SSL")
    assert sh.rd_can_login(ssl_ep, "SCRAM-SHA-512", "carol", secret,
                           {"security.protocol": "SASL_SSL", "ssl.ca.location": str(certs.ca)})
    assert sh.rd_can_login(ssl_ep, "PLAIN", "carol", secret,
                           {"security.protocol": "SASL_SSL", "ssl.ca.location": str(certs.ca)})
    assert not sh.rd_can_login(ssl_ep, "PLAIN", "carol", "wrong",
                               {"security.protocol": "SASL_SSL", "ssl.ca.location": str(certs.ca)})
    assert not sh.files_containing(b.data_dir, [secret, "dave-Pw-1"]), "a password reached the data directory"
    assert secret not in b.log_path.read_text()

    # The CLI with --command-config, as Kafka's tools take it.
    props = tmp_path / "carol.properties"
    carol = {
        "security.protocol": "SASL_SSL", "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs.ca),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.jaas.config": f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                            f'username="carol" password="{secret}";'}
    sh.write_properties(props, carol)
    topic = unique_topic("cli")
    r = _runnel("topics", "create", topic, "--bootstrap", ssl_ep, "--command-config", str(props))
    assert r.returncode == 1 and "authoriz" in r.stderr.decode().lower(), r.stderr.decode()
    admin_props = tmp_path / "admin.properties"
    sh.write_properties(admin_props, {"security.protocol": "PLAINTEXT"})
    r = _runnel("acls", "add", "--principal", "User:carol", "--operation", "CREATE", "--operation", "DESCRIBE",
                "--topic", "cli", "--resource-pattern-type", "prefixed", "--bootstrap", b.address("ADMIN"),
                "--command-config", str(admin_props))
    assert r.returncode == 0, r.stderr.decode()
    listed = _runnel("acls", "list", "--principal", "User:carol", "--bootstrap", b.address("ADMIN")).stdout.decode()
    assert "User:carol\tTOPIC:cli\tPREFIXED\tALLOW\tCREATE" in listed, listed
    r = _runnel("topics", "create", topic, "--bootstrap", ssl_ep, "--command-config", str(props))
    assert r.returncode == 0, r.stderr.decode()
    r = _runnel("topics", "list", "--bootstrap", ssl_ep, "--command-config", str(props))
    assert topic in r.stdout.decode(), r.stderr.decode()
    removed = _runnel("acls", "remove", "--principal", "User:carol", "--bootstrap", b.address("ADMIN")).stdout
    assert removed.decode().count("removed") == 2, removed
    # A wrong password fails at once with the broker's message, not after the request timeout.
    bad = tmp_path / "bad.properties"
    sh.write_properties(bad, {**carol, "sasl.jaas.config":
                              'org.apache.kafka.common.security.scram.ScramLoginModule required '
                              'username="carol" password="nope";'})
    started = time.monotonic()
    r = _runnel("topics", "list", "--bootstrap", ssl_ep, "--command-config", str(bad))
    assert r.returncode == 1 and "authentication failed" in r.stderr.decode(), r.stderr.decode()
    assert time.monotonic() - started < 10
