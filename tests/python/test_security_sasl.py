"""SASL end to end: produce+consume round trips over SASL_PLAINTEXT and SASL_SSL with PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512 through librdkafka (confluent-kafka), kafka-python, kcat and the Java client; wrong passwords and
unknown users refused with the error each client reports; DescribeConfigs of the broker never returning a
secret; no password in the data dir or the broker's log; and (Runnel only) users made offline with
`runnel users` before the broker's first start.

One broker for the module:
  ADMIN           PLAINTEXT (User:ANONYMOUS; users are created through it)
  SASL_PLAINTEXT  SASL_PLAINTEXT
  SASL_SSL        SASL_SSL (ssl.keystore.type=PEM, ssl.keystore.location, ssl.truststore.type=PEM,
                  ssl.truststore.location)
  sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
Users alice, bob and admin get SCRAM-SHA-256 and SCRAM-SHA-512 credentials online (AlterUserScramCredentials
through ADMIN). Kafka only: listener.name.{sasl_plaintext,sasl_ssl}.plain.sasl.jaas.config lists the same
users and passwords (Kafka's PLAIN does not use the SCRAM store; Runnel's checks PLAIN against it), and
listener.name.*.scram-sha-{256,512}.sasl.jaas.config=ScramLoginModule required;

What each client reports on Apache Kafka 4.3.1 for a refused login (wrong password or unknown user; the
broker answers SaslAuthenticate with SASL_AUTHENTICATION_FAILED, Kafka after a 100 ms delay, then closes):
  librdkafka 2.16  error_cb _AUTHENTICATION "sasl_plaintext://127.0.0.1:PORT/bootstrap: SASL authentication error:
                   Authentication failed: Invalid username or password (after 301ms in state AUTH_REQ)" (PLAIN),
                   "... SASL authentication error: Authentication failed during authentication due to invalid
                   credentials with SASL mechanism SCRAM-SHA-256 ..." (SCRAM); then _ALL_BROKERS_DOWN
  kafka-python     SaslAuthenticationFailedError "[Error 58] ... Authentication failed: Invalid username or password"
                   (the cause logged by its bootstrap; some attempts see only KafkaConnectionError "socket
                   disconnected" because the close overtakes the answer)
  kcat (2.0.2)     "SASL authentication error: Authentication failed: Invalid username or password" and
                   "% ERROR: Failed to acquire metadata: Local: Broker transport failure", exit 1
  Java             SaslAuthenticationException "Authentication failed: Invalid username or password" (PLAIN),
                   "Authentication failed during authentication due to invalid credentials with SASL mechanism
                   SCRAM-SHA-512" (SCRAM)
The broker's own wording after "SASL authentication error: " is not asserted.
"""

from __future__ import annotations

import subprocess

import pytest

from helpers import TARGET, create_topic, unique_topic
from security_helpers import (KCAT_SCRAM_FIXED, MECHANISMS, SCRAM_MECHANISMS, USERS, WRONG_PASSWORD, Endpoint,
                              create_scram_users, files_containing, java_cases, kafka_python_refusal, kcat,
                              kcat_librdkafka_version, kcat_metadata_many, kp_error, listener_sets, module_broker,
                              rd_can_login, rd_error, rdkafka_refusal, roundtrip_kafka_python, roundtrip_kcat,
                              roundtrip_rdkafka, sasl_failed_response)

LISTENERS = {"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"}
SASL_LISTENERS = ["SASL_PLAINTEXT", "SASL_SSL"]
MATRIX = [(listener, mech) for listener in SASL_LISTENERS for mech in MECHANISMS]
MATRIX_IDS = [f"{listener}-{mech}" for listener, mech in MATRIX]
# (name, listener, mechanism, user, password)
REFUSALS = [
    ("wrong-password-PLAIN", "SASL_SSL", "PLAIN", "alice", WRONG_PASSWORD),
    ("wrong-password-SCRAM-SHA-256", "SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", WRONG_PASSWORD),
    ("wrong-password-SCRAM-SHA-512", "SASL_SSL", "SCRAM-SHA-512", "bob", WRONG_PASSWORD),
    ("unknown-user-PLAIN", "SASL_PLAINTEXT", "PLAIN", "mallory", WRONG_PASSWORD),
    ("unknown-user-SCRAM-SHA-512", "SASL_PLAINTEXT", "SCRAM-SHA-512", "mallory", WRONG_PASSWORD),
]
REFUSAL_IDS = [r[0] for r in REFUSALS]


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory, certs):
    def users(b):
        create_scram_users(b.address("ADMIN"), login_check=b.address("SASL_PLAINTEXT"))
    yield from module_broker(tmp_path_factory, listener_sets(LISTENERS, certs, sasl=True), "sasl-broker", users)


def endpoint(b, certs, listener, mechanism, user="alice", password=None) -> Endpoint:
    return Endpoint(b.address(listener), listener, mechanism, user, USERS.get(user) if password is None else password,
                    ca=certs.ca if listener == "SASL_SSL" else None)


def refusal_endpoint(b, certs, case) -> Endpoint:
    _, listener, mech, user, password = next(r for r in REFUSALS if r[0] == case)
    return endpoint(b, certs, listener, mech, user, password)


def new_topic(b, what):
    t = unique_topic(f"sasl-{what}")
    create_topic(b.bootstrap, t)
    return t


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("listener,mechanism", MATRIX, ids=MATRIX_IDS)
def test_sasl_roundtrip_librdkafka(sasl_broker, certs, listener, mechanism):
    user = "bob" if mechanism == "SCRAM-SHA-512" else "alice"
    roundtrip_rdkafka(endpoint(sasl_broker, certs, listener, mechanism, user),
                      new_topic(sasl_broker, f"rd-{listener}-{mechanism}"), 20)


@pytest.mark.parametrize("listener,mechanism", MATRIX, ids=MATRIX_IDS)
def test_sasl_roundtrip_kafka_python(sasl_broker, certs, listener, mechanism):
    roundtrip_kafka_python(endpoint(sasl_broker, certs, listener, mechanism, "admin"),
                           new_topic(sasl_broker, f"kp-{listener}-{mechanism}"), 20)


@pytest.mark.parametrize("listener,mechanism", MATRIX, ids=MATRIX_IDS)
def test_sasl_roundtrip_kcat(sasl_broker, certs, listener, mechanism):
    ep = endpoint(sasl_broker, certs, listener, mechanism)
    if mechanism in SCRAM_MECHANISMS and kcat_librdkafka_version() < KCAT_SCRAM_FIXED:
        # kcat's librdkafka sends the client nonce twice in its client-final-message; the broker must refuse
        # that proof (RFC 5802 section 5.1: the nonce must be the one of server-first-message), as Kafka 4 does
        r = kcat(ep, "-L", "-m", "4")
        err = r.stderr.decode(errors="replace")
        assert r.returncode != 0 and "SASL authentication error" in err, \
            f"kcat (librdkafka {kcat_librdkafka_version()}) with {mechanism}: exit {r.returncode}\n{err[-3000:]}"
        return
    roundtrip_kcat(ep, new_topic(sasl_broker, f"kcat-{listener}-{mechanism}"), 20)


@pytest.fixture(scope="module")
def java_outcomes(sasl_broker, certs, tmp_path_factory):
    cases = {}
    for (listener, mech), name in zip(MATRIX, MATRIX_IDS):
        cases[name] = (endpoint(sasl_broker, certs, listener, mech), new_topic(sasl_broker, f"java-{name}"), 20)
    for case in REFUSAL_IDS:
        cases[case] = (refusal_endpoint(sasl_broker, certs, case), new_topic(sasl_broker, f"java-{case}"), 5,
                       {"max.block.ms": "10000"})
    return java_cases(tmp_path_factory.mktemp("sasl-java"), cases)


@pytest.mark.java
@pytest.mark.parametrize("case", MATRIX_IDS)
def test_sasl_roundtrip_java(java_outcomes, case):
    assert java_outcomes[case] == "OK"


# ---------------------------------------------------------------- refused logins

@pytest.mark.parametrize("case", REFUSAL_IDS)
def test_sasl_refusal_librdkafka(sasl_broker, certs, case):
    rdkafka_refusal(refusal_endpoint(sasl_broker, certs, case), rd_error("_AUTHENTICATION", "SASL authentication error"),
                    what=f"{case}: _AUTHENTICATION")


@pytest.mark.parametrize("case", REFUSAL_IDS)
def test_sasl_refusal_kafka_python(sasl_broker, certs, case):
    # kafka-python races the broker's close against its own handling of the answer: a bootstrap attempt fails
    # with SaslAuthenticationFailedError or, when the close wins, KafkaConnectionError "socket disconnected";
    # the SaslAuthenticate answer with error 58 that it received is the deterministic part
    kafka_python_refusal(refusal_endpoint(sasl_broker, certs, case), kp_error("SaslAuthenticationFailedError"),
                         what=f"{case}: SaslAuthenticationFailedError", want_response=sasl_failed_response)


@pytest.fixture(scope="module")
def kcat_outcomes(sasl_broker, certs):
    return kcat_metadata_many({case: refusal_endpoint(sasl_broker, certs, case) for case in REFUSAL_IDS})


@pytest.mark.parametrize("case", REFUSAL_IDS)
def test_sasl_refusal_kcat(kcat_outcomes, case):
    if "SCRAM" in case and kcat_librdkafka_version() < KCAT_SCRAM_FIXED:
        pytest.skip(f"kcat's librdkafka {kcat_librdkafka_version()} cannot log in with SCRAM at all "
                    f"(test_sasl_roundtrip_kcat): a refused wrong password would prove nothing")
    rc, err = kcat_outcomes[case]
    assert rc != 0 and "SASL authentication error" in err, f"kcat for {case}: exit {rc}\n{err[-3000:]}"


@pytest.mark.java
@pytest.mark.parametrize("case", REFUSAL_IDS)
def test_sasl_refusal_java(java_outcomes, case):
    assert java_outcomes[case].startswith("FAIL org.apache.kafka.common.errors.SaslAuthenticationException"), \
        java_outcomes[case]


def test_scram_credential_is_per_mechanism(sasl_broker, certs):
    """A user with only a SCRAM-SHA-512 credential cannot log in with SCRAM-SHA-256 (nor with a wrong password
    with SCRAM-SHA-512) but can with SCRAM-SHA-512."""
    user, password = f"sha512only-{unique_topic('u')[-6:]}", "sha512only-Pw-0d93ac1e"
    create_scram_users(sasl_broker.address("ADMIN"), {user: password}, mechanisms=["SCRAM-SHA-512"],
                       login_check=sasl_broker.address("SASL_PLAINTEXT"))
    assert not rd_can_login(sasl_broker.address("SASL_PLAINTEXT"), "SCRAM-SHA-256", user, password, {})
    assert not rd_can_login(sasl_broker.address("SASL_PLAINTEXT"), "SCRAM-SHA-512", user, WRONG_PASSWORD, {})
    assert rd_can_login(sasl_broker.address("SASL_PLAINTEXT"), "SCRAM-SHA-512", user, password, {})


# ---------------------------------------------------------------- secrets stay secret

SENSITIVE_KEYS = ["ssl.keystore.key", "ssl.key.password", "ssl.keystore.password", "ssl.truststore.password"]


def is_secret_key(name: str) -> bool:
    return (name.endswith(".password") or name.endswith("sasl.jaas.config") or name.endswith("ssl.keystore.key")
            or name in SENSITIVE_KEYS)


def test_describe_configs_broker_hides_secrets(sasl_broker, certs):
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
    a = AdminClient({"bootstrap.servers": sasl_broker.bootstrap})
    res = ConfigResource(ResourceType.BROKER, str(sasl_broker.node_id))
    cfg = a.describe_configs([res], request_timeout=15)[res].result(15)
    # the answer is the real configuration: the keystore path is there, not sensitive
    loc = cfg.get("ssl.keystore.location")
    assert loc is not None and loc.value == str(certs.server) and not loc.is_sensitive, loc
    mechs = cfg.get("sasl.enabled.mechanisms")
    assert mechs is not None and set(mechs.value.split(",")) == set(MECHANISMS), mechs
    for key in SENSITIVE_KEYS:
        assert key in cfg, f"DescribeConfigs(BROKER 0) does not list {key}"
    secret_entries = {k: e for k, e in cfg.items() if is_secret_key(k)}
    for k, e in secret_entries.items():
        assert e.is_sensitive, f"{k} is not reported as sensitive"
        assert e.value is None, f"{k} is reported with a value"
        for s in (e.synonyms or {}).values():
            assert s.value is None, f"synonym {s.name} of {k} is reported with a value"
    if TARGET == "kafka":  # the JAAS configs with the PLAIN passwords are set on Kafka only
        assert "listener.name.sasl_ssl.plain.sasl.jaas.config" in secret_entries
    # and no password anywhere: names, values, synonyms
    text = repr([(k, e.value, e.is_sensitive, [(s.name, s.value) for s in (e.synonyms or {}).values()])
                 for k, e in cfg.items()])
    for pw in list(USERS.values()):
        assert pw not in text, "a password appears in DescribeConfigs(BROKER 0)"


def test_no_password_in_data_dir(sasl_broker):
    """The credential store keeps salted hashes only. On Kafka, kafka-ref's server.properties (the JAAS config
    this test module passes, with the PLAIN passwords) lives in the data dir and is left out."""
    exclude = ("server.properties",) if TARGET == "kafka" else ()
    files = [p for p in sasl_broker.data_dir.rglob("*") if p.is_file() and p.name not in exclude]
    assert files, f"nothing in {sasl_broker.data_dir}"
    hits = files_containing(sasl_broker.data_dir, list(USERS.values()) + [WRONG_PASSWORD], exclude=exclude)
    assert not hits, f"passwords in the data dir: {hits}"


def test_no_password_in_broker_log(sasl_broker):
    """Runs after every login above, good and bad: no password (nor the wrong one tried) in the broker's log.
    (conftest writes the command line into the same file with secret --set values redacted.)"""
    text = sasl_broker.log_path.read_text(errors="replace")
    assert "SASL_SSL" in text  # the log is the one of this broker
    for pw in list(USERS.values()) + [WRONG_PASSWORD]:
        assert pw not in text, f"a password appears in {sasl_broker.log_path}"


# ---------------------------------------------------------------- Runnel only: users before the first start

def runnel_users(data_dir, *args, password: str | None = None) -> subprocess.CompletedProcess:
    import conftest
    return subprocess.run([str(conftest.RUNNEL_BIN), "users", *args, "--data-dir", str(data_dir)],
                          input=(password + "\n").encode() if password is not None else None,
                          stdin=None if password is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def users_listed(data_dir) -> dict[str, str]:
    r = runnel_users(data_dir, "list")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    out = {}
    for line in r.stdout.decode().splitlines():
        name, _, mechs = line.partition("\t")
        out[name] = mechs
    return out


@pytest.mark.runnel_only
def test_offline_users_then_login(tmp_path_factory, certs):
    """`runnel users set/list/delete` on the data dir before the broker's first start; then the user logs in
    (SCRAM-SHA-512, and PLAIN checked against the SCRAM store), a deleted one cannot, and no password is in
    the data dir."""
    import conftest
    carol, dave = "carol-Pw-1f6e0b72aa", "dave-Pw-9a3c55e01d"
    b = conftest.Broker(tmp_path_factory.mktemp("offline-users"),
                        listener_sets({"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT"}, sasl=True))
    r = runnel_users(b.data_dir, "set", "carol", "--mechanism", "SCRAM-SHA-512", "--password-stdin", password=carol)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    r = runnel_users(b.data_dir, "set", "dave", "--mechanism", "SCRAM-SHA-256", "--password-stdin", password=dave)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    listed = users_listed(b.data_dir)
    assert set(listed) == {"carol", "dave"}, listed
    assert "SCRAM-SHA-512" in listed["carol"] and "SCRAM-SHA-256" not in listed["carol"], listed
    assert "SCRAM-SHA-256" in listed["dave"], listed
    r = runnel_users(b.data_dir, "delete", "dave")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert set(users_listed(b.data_dir)) == {"carol"}
    assert runnel_users(b.data_dir, "delete", "nobody").returncode != 0
    # the password is read from stdin only
    assert runnel_users(b.data_dir, "set", "erin", "--mechanism", "SCRAM-SHA-512").returncode != 0

    conftest._started.append(b)
    try:
        b.start()
        sasl = b.address("SASL_PLAINTEXT")
        assert rd_can_login(sasl, "SCRAM-SHA-512", "carol", carol, {})
        assert rd_can_login(sasl, "PLAIN", "carol", carol, {})
        assert not rd_can_login(sasl, "SCRAM-SHA-256", "carol", carol, {})
        assert not rd_can_login(sasl, "PLAIN", "carol", WRONG_PASSWORD, {})
        assert not rd_can_login(sasl, "SCRAM-SHA-256", "dave", dave, {})
        assert not rd_can_login(sasl, "PLAIN", "dave", dave, {})
        roundtrip_rdkafka(Endpoint(sasl, "SASL_PLAINTEXT", "SCRAM-SHA-512", "carol", carol),
                          new_topic(b, "offline-carol"), 5)
        b.stop()
        hits = files_containing(b.data_dir, [carol, dave])
        assert not hits, f"passwords in the data dir: {hits}"
    finally:
        conftest._teardown(b)
