"""Shared pieces of the security tests (test_security_tls.py, test_security_sasl.py, test_security_acls.py,
test_security_oauth.py): certificates made with the openssl CLI, the users and their passwords, broker settings
per listener (the Kafka-only JAAS and OAUTHBEARER keys added when TARGET == "kafka"), client configurations for
librdkafka (confluent-kafka and kcat), kafka-python and the Java client (OAUTHBEARER ones from the endpoint's
oauth_helpers.OAuthClient), produce+consume round trips through each, SCRAM user creation, ACL creation through
the ADMIN listener, and Kafka's own tools (kafka-acls.sh, kafka-configs.sh).

The broker contract (same keys on Runnel and Kafka): listeners / listener.security.protocol.map / ssl.* /
sasl.enabled.mechanisms / authorizer.class.name / super.users / allow.everyone.if.no.acl.found /
ssl.principal.mapping.rules, per-listener overrides as listener.name.<lower-case name>.<key>. Users exist only
as SCRAM credentials created online through the ADMIN listener (its principal User:ANONYMOUS is a super user);
Runnel checks PLAIN passwords against them, Kafka's PLAIN needs them in the JAAS config as well.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from helpers import TARGET, run_java, wait_until  # noqa: F401  (run_java re-exported)

REPO = Path(__file__).resolve().parents[2]
KAFKA_LIB = REPO / "tests" / "kafka" / "target" / "lib"
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SCRAM_MECHANISMS = ["SCRAM-SHA-256", "SCRAM-SHA-512"]

# Distinctive passwords, so a grep for them (data dir, broker log, DescribeConfigs) means something.
USERS = {
    "alice": "alice-Pw-4b9e1f27c3",
    "bob": "bob-Pw-81d0a6e5f9",
    "admin": "admin-Pw-5c2f7e90ab",
}
WRONG_PASSWORD = "not-the-Password-3e8d"

# kafka-acls.sh in Kafka 4.3.1: `exec $(dirname $0)/kafka-run-class.sh org.apache.kafka.tools.AclCommand "$@"`
ACL_TOOL = "org.apache.kafka.tools.AclCommand"
# kafka-configs.sh in Kafka 4.3.1: `exec $(dirname $0)/kafka-run-class.sh kafka.admin.ConfigCommand "$@"`
CONFIG_TOOL = "kafka.admin.ConfigCommand"

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
PRINCIPAL_RULES = "RULE:^CN=([^,]+).*$/$1/,DEFAULT"


from tls_certs import Certs, make_certs  # noqa: E402,F401  (re-exported: tests use sh.make_certs)


# ---------------------------------------------------------------- broker settings

def listener_sets(listeners: dict[str, str], certs: Certs | None = None, sasl: bool = False,
                  extra: dict | None = None) -> dict:
    """--set options for a broker with the given listeners {NAME: security protocol}, in that order (the first
    is the one on line 1 of the startup output, and Kafka's inter-broker listener: make it ADMIN). TLS
    listeners get the server keystore and the CA truststore; with sasl, PLAIN and both SCRAM mechanisms are
    enabled and, on Kafka only, each SASL listener gets its JAAS config (PLAIN: the users of USERS). An extra
    sasl.enabled.mechanisms naming OAUTHBEARER gets, on Kafka only, its validating server setup too."""
    sets = {
        "listeners": ",".join(f"{name}://127.0.0.1:0" for name in listeners),
        "listener.security.protocol.map": ",".join(f"{n}:{p}" for n, p in listeners.items()),
    }
    if certs is not None:
        sets.update({
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(certs.server),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certs.ca),
        })
    if sasl:
        sets["sasl.enabled.mechanisms"] = ",".join(MECHANISMS)
    sets.update(extra or {})
    sasl_listeners = [n for n, p in listeners.items() if p.startswith("SASL_")]
    if TARGET == "kafka" and sasl:
        sets.update(kafka_jaas_sets(sasl_listeners))
    if TARGET == "kafka" and "OAUTHBEARER" in sets.get("sasl.enabled.mechanisms", "").split(","):
        sets.update(kafka_oauthbearer_sets(sasl_listeners))
    return sets


def kafka_jaas_sets(listener_names) -> dict:
    """Keys only Kafka needs: a JAAS config per SASL listener and mechanism. Kafka's PLAIN checks the
    user_NAME="password" options of its login module (not the SCRAM store); SCRAM's module takes no options."""
    users = " ".join(f'user_{u}="{p}"' for u, p in USERS.items())
    sets = {}
    for name in listener_names:
        ln = name.lower()
        sets[f"listener.name.{ln}.plain.sasl.jaas.config"] = \
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
        for m in SCRAM_MECHANISMS:
            sets[f"listener.name.{ln}.{m.lower()}.sasl.jaas.config"] = \
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return sets


def kafka_oauthbearer_sets(listener_names) -> dict:
    """Keys only Kafka needs to accept OAUTHBEARER: its default server callback is the one for unsecured
    (unsigned, development) tokens; the validator checks signed ones against sasl.oauthbearer.jwks.endpoint.url,
    .expected.audience and .expected.issuer (the keys Runnel reads too). The server's login module takes no
    options."""
    sets = {}
    for name in listener_names:
        prefix = f"listener.name.{name.lower()}.oauthbearer"
        sets[f"{prefix}.sasl.server.callback.handler.class"] = \
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
        sets[f"{prefix}.sasl.jaas.config"] = \
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"
    return sets


def authorizer_sets() -> dict:
    return {
        "authorizer.class.name": AUTHORIZER,
        "super.users": "User:ANONYMOUS;User:admin",
        "allow.everyone.if.no.acl.found": "false",
    }


def module_broker(tmp_path_factory, sets: dict, name: str, setup=None):
    """Generator for a module-scoped fixture: a broker with `sets` (conftest's Broker, so failure reports
    carry its log), on which setup(broker) runs first (e.g. creating users), stopped and removed afterwards."""
    import conftest
    b = conftest._new_broker(tmp_path_factory, sets, name)
    try:
        if setup is not None:
            setup(b)
        yield b
    finally:
        conftest._teardown(b)


# ---------------------------------------------------------------- users

def create_scram_users(admin_bootstrap: str, users: dict[str, str] | None = None, mechanisms=SCRAM_MECHANISMS,
                       login_check: str | None = None, login_conf: dict | None = None, timeout=30.0):
    """AlterUserScramCredentials through the ADMIN listener (librdkafka admin), one credential per mechanism
    and user; then, if login_check (a SASL listener's host:port) is given, waits until each user can log in
    with each mechanism there (Kafka applies credentials when its metadata log replays them)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
    users = USERS if users is None else users
    a = _rd_admin(admin_bootstrap)
    # one request per mechanism: Kafka refuses two alterations of one user in a request (DUPLICATE_RESOURCE)
    for m in mechanisms:
        info = ScramCredentialInfo(getattr(ScramMechanism, m.replace("-", "_")), 4096)
        ups = [UserScramCredentialUpsertion(u, info, p.encode()) for u, p in users.items()]
        for f in a.alter_user_scram_credentials(ups, request_timeout=timeout).values():
            f.result(timeout)
    if login_check:
        for u, p in users.items():
            for m in mechanisms:
                wait_until(lambda: rd_can_login(login_check, m, u, p, login_conf or {}), timeout,
                           f"SCRAM login of {u} with {m} on {login_check}", interval=0.2)


def _rd_admin(bootstrap, **conf):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap, **conf})


def rd_can_login(bootstrap, mechanism, user, password, conf: dict) -> bool:
    """True when a librdkafka admin client authenticates over SASL_PLAINTEXT (Metadata answered); False only
    when librdkafka reports an authentication error (_AUTHENTICATION); anything else fails."""
    from confluent_kafka import KafkaError, KafkaException
    errors = []
    a = _rd_admin(bootstrap, **{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                                "sasl.username": user, "sasl.password": password, **conf,
                                "error_cb": errors.append})
    last = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            a.list_topics(timeout=0.5)
            return True
        except KafkaException as e:
            last = e
        a.poll(0)  # serves error_cb
        if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            return False
    raise AssertionError(f"login of {user} with {mechanism} neither succeeded nor was refused in 10 s: {last!r}, "
                         f"errors {[(e.name(), e.str()) for e in errors]}")


# ---------------------------------------------------------------- client configurations

@dataclass
class Endpoint:
    """Where and how a client connects: address, security protocol, optional SASL login and TLS material."""
    address: str
    protocol: str                       # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    mechanism: str | None = None
    user: str | None = None
    password: str | None = None
    ca: Path | None = None              # CA the client trusts (TLS)
    cert: Path | None = None            # client certificate chain (mTLS)
    key: Path | None = None             # client key (mTLS)
    keystore: Path | None = None        # key + chain in one PEM (mTLS, Java)
    oauth: object | None = None         # OAUTHBEARER: an oauth_helpers.OAuthClient (instead of user/password)

    @property
    def tls(self):
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self):
        return self.protocol.startswith("SASL_")


def rdkafka_conf(ep: Endpoint) -> dict:
    conf = {"bootstrap.servers": ep.address, "security.protocol": ep.protocol}
    if ep.sasl:
        conf.update(ep.oauth.rdkafka_conf() if ep.oauth else
                    {"sasl.mechanism": ep.mechanism, "sasl.username": ep.user, "sasl.password": ep.password})
    if ep.tls:
        if ep.ca:
            conf["ssl.ca.location"] = str(ep.ca)
        conf["ssl.endpoint.identification.algorithm"] = "https"
        if ep.cert:
            conf["ssl.certificate.location"] = str(ep.cert)
            conf["ssl.key.location"] = str(ep.key)
    return conf


def kafka_python_conf(ep: Endpoint) -> dict:
    conf = {"bootstrap_servers": ep.address, "security_protocol": ep.protocol}
    if ep.sasl:
        conf.update(ep.oauth.kafka_python_conf() if ep.oauth else
                    {"sasl_mechanism": ep.mechanism, "sasl_plain_username": ep.user,
                     "sasl_plain_password": ep.password})
    if ep.tls:
        conf["ssl_check_hostname"] = True
        if ep.ca:
            conf["ssl_cafile"] = str(ep.ca)
        if ep.cert:
            conf["ssl_certfile"] = str(ep.cert)
            conf["ssl_keyfile"] = str(ep.key)
    return conf


def java_props(ep: Endpoint) -> dict:
    props = {"bootstrap.servers": ep.address, "security.protocol": ep.protocol}
    if ep.sasl and ep.oauth:
        props.update(ep.oauth.java_props())
    elif ep.sasl:
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if ep.mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")
        props["sasl.mechanism"] = ep.mechanism
        props["sasl.jaas.config"] = f'{module} required username="{ep.user}" password="{ep.password}";'
    if ep.tls:
        if ep.ca:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = str(ep.ca)
        if ep.keystore:
            props["ssl.keystore.type"] = "PEM"
            props["ssl.keystore.location"] = str(ep.keystore)
    return props


def kcat_args(ep: Endpoint) -> list[str]:
    args = ["-b", ep.address]
    for k, v in rdkafka_conf(ep).items():
        if k != "bootstrap.servers":
            args += ["-X", f"{k}={v}"]
    return args


def write_properties(path: Path, props: dict) -> Path:
    def esc(v: str) -> str:
        return str(v).replace("\\", "\\\\").replace("\n", "\\n")
    path.write_text("".join(f"{k}={esc(v)}\n" for k, v in props.items()))
    return path


# ---------------------------------------------------------------- round trips

def values_for(topic: str, n: int) -> list[bytes]:
    return [f"{topic}-rec-{i:04d}".encode() for i in range(n)]


def roundtrip_rdkafka(ep: Endpoint, topic: str, n: int = 10, timeout=30.0):
    """Produce n records to partition 0 with librdkafka, acks=all, then read them back through assign()."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    conf = rdkafka_conf(ep)
    errors, acked = [], []
    p = Producer({**conf, "acks": "all", "linger.ms": 5, "message.timeout.ms": int(timeout * 1000),
                  "error_cb": errors.append})
    want = values_for(topic, n)
    for v in want:
        p.produce(topic, value=v, partition=0,
                  on_delivery=lambda err, msg: acked.append(err or msg.offset()))
    deadline = time.monotonic() + timeout + 5
    while p.flush(1.0) > 0:
        assert time.monotonic() < deadline, f"librdkafka flush over {ep.protocol} did not finish; errors {errors}"
    assert acked == list(range(n)), f"librdkafka delivery over {ep.protocol}: {acked}; errors {errors}"
    c = Consumer({**conf, "group.id": "security-unused", "enable.auto.commit": False, "auto.offset.reset": "error",
                  "error_cb": errors.append})
    got = []
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + timeout
        while len(got) < n:
            assert time.monotonic() < deadline, f"librdkafka consumed {len(got)} of {n}; errors {errors}"
            m = c.poll(0.5)
            if m is None:
                continue
            assert not m.error(), f"librdkafka consumer error {m.error()}"
            got.append(m.value())
    finally:
        c.close()
    assert got == want


def roundtrip_kafka_python(ep: Endpoint, topic: str, n: int = 10, timeout=30.0):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    conf = kafka_python_conf(ep)
    p = KafkaProducer(acks="all", linger_ms=5, request_timeout_ms=15000, max_block_ms=int(timeout * 1000), **conf)
    want = values_for(topic, n)
    try:
        futures = [p.send(topic, value=v, partition=0) for v in want]
        p.flush(timeout)
        offsets = [f.get(timeout=timeout).offset for f in futures]
    finally:
        p.close(timeout=10)
    assert offsets == list(range(n))
    c = KafkaConsumer(group_id=None, enable_auto_commit=False, request_timeout_ms=15000, **conf)
    got = []
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout
        while len(got) < n:
            assert time.monotonic() < deadline, f"kafka-python consumed {len(got)} of {n}"
            for recs in c.poll(timeout_ms=500).values():
                got.extend(r.value for r in recs)
    finally:
        c.close()
    assert got == want


def kcat(ep: Endpoint, *args: str, stdin: bytes | None = None, timeout=60.0) -> subprocess.CompletedProcess:
    exe = shutil.which("kcat")
    assert exe, "kcat is not on PATH (scripts/test installs the Debian package kcat)"
    return subprocess.run([exe, *kcat_args(ep), *args], input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def roundtrip_kcat(ep: Endpoint, topic: str, n: int = 10):
    want = values_for(topic, n)
    r = kcat(ep, "-P", "-t", topic, "-p", "0", "-X", "acks=all", stdin=b"\n".join(want) + b"\n")
    assert r.returncode == 0, f"kcat -P exited {r.returncode}\n{r.stderr.decode(errors='replace')}"
    r = kcat(ep, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(n), "-e", "-q", "-f", "%o %s\\n")
    assert r.returncode == 0, f"kcat -C exited {r.returncode}\n{r.stderr.decode(errors='replace')}"
    lines = r.stdout.decode().splitlines()
    assert lines == [f"{i} {v.decode()}" for i, v in enumerate(want)], r.stdout.decode()[-2000:]


# ---------------------------------------------------------------- Java programs and Kafka tools

def java_cases(tmp_path: Path, cases: dict[str, tuple], timeout=300, jvm=()) -> dict[str, str]:
    """Runs tests/java/src/SecureRoundTrip.java once for many cases {name: (endpoint, topic, records[, extra
    client properties])}, in parallel inside one JVM (extra JVM options jvm); returns {name: "OK"} or
    {name: "FAIL <exception class chain>: <message>"}."""
    files = []
    for name, (ep, topic, n, *extra) in cases.items():
        props = java_props(ep)
        for e in extra:
            props.update(e)
        props.update({"test.name": name, "test.topic": topic, "test.records": str(n)})
        files.append(str(write_properties(tmp_path / f"case-{name}.properties", props)))
    rc, out, err = run_java(tmp_path, "SecureRoundTrip", *files, timeout=timeout, jvm=jvm)
    assert rc == 0, f"SecureRoundTrip exited {rc}\nstdout:\n{out}\nstderr:\n{err[-5000:]}"
    results = {}
    for line in out.splitlines():
        if line.startswith("CASE "):
            _, name, _millis, outcome = line.split(" ", 3)
            results[name] = outcome
    assert set(results) == set(cases), f"SecureRoundTrip reported {sorted(results)}\nstdout:\n{out}"
    return results


def kafka_tool_command(cls: str, *args: str) -> list[str]:
    """The java command line running a Kafka command-line tool's main class from tests/kafka/target/lib."""
    assert glob.glob(str(KAFKA_LIB / "kafka-tools-*.jar")), \
        f"no kafka-tools jar in {KAFKA_LIB}: (cd tests/kafka && mvn -q -B dependency:copy-dependencies " \
        f"-DoutputDirectory=target/lib)"
    return ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dlog4j2.level=warn",
            "-cp", f"{KAFKA_LIB}/*", cls, *args]


def kafka_tool(cls: str, *args: str, timeout=90.0) -> tuple[int, str, str]:
    """A Kafka command-line tool's main class; returns (exit code, stdout, stderr)."""
    cmd = kafka_tool_command(cls, *args)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env={**os.environ, "KAFKA_HEAP_OPTS": "-Xmx256m"})
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


# ---------------------------------------------------------------- files that must not hold passwords

def files_containing(root: Path, secrets, exclude=()) -> list[tuple[str, str]]:
    """[(file, secret)] for every file under root whose bytes contain one of the secrets."""
    hits = []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file() or path.name in exclude:
            continue
        data = path.read_bytes()
        for s in secrets:
            if s.encode() in data:
                hits.append((str(path), s))
    return hits


# ---------------------------------------------------------------- ACLs (librdkafka admin, through the ADMIN listener)

def acl(resource: str, name: str, principal: str, operation: str, permission: str = "ALLOW",
        pattern: str = "LITERAL", host: str = "*"):
    """An AclBinding from names: acl("TOPIC", "t1", "User:alice", "READ"); resource CLUSTER (name
    "kafka-cluster") is librdkafka's BROKER resource type (both are 4 on the wire)."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType
    return AclBinding(getattr(ResourceType, _restype(resource)), name, getattr(ResourcePatternType, pattern), principal, host,
                      getattr(AclOperation, operation), getattr(AclPermissionType, permission))


def acl_filter(resource="ANY", name=None, principal=None, operation="ANY", permission="ANY", pattern="ANY",
               host=None):
    from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, ResourcePatternType,
                                       ResourceType)
    return AclBindingFilter(getattr(ResourceType, _restype(resource)), name, getattr(ResourcePatternType, pattern), principal,
                            host, getattr(AclOperation, operation), getattr(AclPermissionType, permission))


def _restype(resource: str) -> str:
    return "BROKER" if resource == "CLUSTER" else resource


def _binding_key(b):
    return (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)


def describe_acls(admin_bootstrap: str, flt=None, timeout=15.0) -> list:
    a = _rd_admin(admin_bootstrap)
    return a.describe_acls(flt or acl_filter(), request_timeout=timeout).result(timeout)


def add_acls(admin_bootstrap: str, *bindings, timeout=20.0):
    """CreateAcls through the ADMIN listener, then waits until DescribeAcls lists every binding (Kafka's
    brokers apply ACLs when they replay the controller's metadata; the broker's DescribeAcls answers from the
    same authorizer that authorizes requests)."""
    a = _rd_admin(admin_bootstrap)
    for f in a.create_acls(list(bindings), request_timeout=timeout).values():
        f.result(timeout)
    want = {_binding_key(b) for b in bindings}
    wait_until(lambda: want <= {_binding_key(b) for b in describe_acls(admin_bootstrap)}, timeout,
               f"ACLs {sorted(map(str, bindings))} listed by DescribeAcls", interval=0.1)


def remove_acls(admin_bootstrap: str, *bindings, timeout=20.0):
    """DeleteAcls with each binding as an exact filter, then waits until DescribeAcls no longer lists them."""
    from confluent_kafka.admin import AclBindingFilter
    a = _rd_admin(admin_bootstrap)
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in bindings]
    for f in a.delete_acls(filters, request_timeout=timeout).values():
        f.result(timeout)
    gone = {_binding_key(b) for b in bindings}
    wait_until(lambda: not gone & {_binding_key(b) for b in describe_acls(admin_bootstrap)}, timeout,
               f"ACLs {sorted(map(str, bindings))} gone from DescribeAcls", interval=0.1)


# ---------------------------------------------------------------- what clients report when they are refused

class _RdLog:
    """A logger for librdkafka's `logger` setting: keeps every line (FAIL lines carry the connection errors)."""

    def __init__(self):
        self.lines: list[str] = []

    def log(self, level, fmt, *args):
        self.lines.append(fmt % args if args else str(fmt))


def rdkafka_refusal(ep: Endpoint, want, timeout=20.0, what="the expected error"):
    """Starts a librdkafka producer (it connects to its bootstrap server at once), polls until
    want(errors, logs) is true (errors: the KafkaErrors of error_cb, logs: librdkafka's log lines) and returns
    (errors, logs); fails with what it saw after timeout seconds."""
    from confluent_kafka import Producer
    errors, log = [], _RdLog()
    p = Producer({**rdkafka_conf(ep), "error_cb": errors.append, "logger": log, "reconnect.backoff.ms": 200})
    deadline = time.monotonic() + timeout
    while not want(errors, log.lines):
        assert time.monotonic() < deadline, \
            f"librdkafka did not report {what} within {timeout}s\nerrors: {[(e.name(), e.str()) for e in errors]}\n" \
            f"log: {log.lines[-10:]}"
        p.poll(0.1)
    return errors, log.lines


def rd_error(code_name: str, *texts: str):
    """A want() for rdkafka_refusal: an error_cb error with that code whose text contains every one of texts."""
    def want(errors, _logs):
        return any(e.name() == code_name and all(t in e.str() for t in texts) for e in errors)
    return want


def kafka_python_refusal(ep: Endpoint, want, timeout=40.0, what="the expected error", want_response=None):
    """kafka-python 3 hides why bootstrapping failed behind KafkaTimeoutError; the cause is in its log record
    'Bootstrap connection to %s failed: %s'. Bootstraps admin clients (2 s each) until one of the causes
    satisfies want(exception), or, with want_response, one of the responses kafka-python received (its DEBUG
    record 'Response %d (%s ms): %s', logged before the response is handed on) satisfies
    want_response(response); returns the causes seen. Every bootstrap must fail."""
    import logging
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaTimeoutError
    causes: list[Exception] = []
    responses: list = []

    class Catch(logging.Handler):
        def emit(self, record):
            msg = str(record.msg)
            if msg.startswith("Bootstrap connection to") and len(record.args) >= 2:
                causes.append(record.args[1])
            elif want_response is not None and ": Response %d" in msg and len(record.args) >= 4:
                responses.append(record.args[3])

    logger = logging.getLogger("kafka")
    h, old_level = Catch(), logger.level
    logger.addHandler(h)
    level = logging.DEBUG if want_response is not None else logging.WARNING
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)

    def seen():
        return any(want(c) for c in causes) or (want_response is not None and any(map(want_response, responses)))

    deadline = time.monotonic() + timeout
    try:
        while not seen():
            assert time.monotonic() < deadline, \
                f"kafka-python did not report {what} within {timeout}s; causes seen: {[repr(c) for c in causes[-6:]]}"
            try:
                a = KafkaAdminClient(request_timeout_ms=5000, bootstrap_timeout_ms=2000, reconnect_backoff_ms=20,
                                     reconnect_backoff_max_ms=100, **kafka_python_conf(ep))
            except KafkaTimeoutError:
                continue
            a.close()
            raise AssertionError(f"kafka-python bootstrapped over {ep.protocol} to {ep.address}, which must refuse it")
    finally:
        logger.removeHandler(h)
        logger.setLevel(old_level)
    return causes


def sasl_failed_response(resp) -> bool:
    """A want_response for kafka_python_refusal: a SaslAuthenticate answer with SASL_AUTHENTICATION_FAILED (58)."""
    return type(resp).__name__.startswith("SaslAuthenticateResponse") and getattr(resp, "error_code", None) == 58


def kp_error(cls_name: str, *texts: str):
    """A want() for kafka_python_refusal: an exception of that class whose text contains every one of texts."""
    def want(exc):
        return type(exc).__name__ == cls_name and all(t in str(exc) for t in texts)
    return want


def kcat_metadata_many(cases: dict[str, Endpoint], wait_s: int = 4) -> dict[str, tuple[int, str]]:
    """`kcat -L -m wait_s` for every endpoint at once (kcat waits out -m before it gives up); returns
    {name: (exit code, stderr)}."""
    exe = shutil.which("kcat")
    assert exe, "kcat is not on PATH (scripts/test installs the Debian package kcat)"
    procs = {name: subprocess.Popen([exe, *kcat_args(ep), "-L", "-m", str(wait_s)], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for name, ep in cases.items()}
    out = {}
    for name, p in procs.items():
        _, err = p.communicate(timeout=wait_s + 60)
        out[name] = (p.returncode, err.decode(errors="replace"))
    return out


def kcat_librdkafka_version() -> tuple[int, ...]:
    """The librdkafka version kcat is linked with (kcat -V: '... librdkafka 2.0.2 builtin.features=...')."""
    import re
    exe = shutil.which("kcat")
    assert exe, "kcat is not on PATH (scripts/test installs the Debian package kcat)"
    out = subprocess.run([exe, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10).stdout.decode()
    m = re.search(r"librdkafka (\d+)\.(\d+)\.(\d+)", out)
    assert m, f"no librdkafka version in kcat -V: {out!r}"
    return tuple(int(x) for x in m.groups())


# librdkafka before 2.6.1 puts the client nonce into the SCRAM client-final-message twice
# (confluentinc/librdkafka#4895, edenhill/kcat#462); a broker that checks the nonce as RFC 5802 requires
# (Kafka 4.x does) refuses every SCRAM login of such a client. Debian 12's kcat links librdkafka 2.0.2.
KCAT_SCRAM_FIXED = (2, 6, 1)
