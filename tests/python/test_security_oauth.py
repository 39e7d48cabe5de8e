"""OAUTHBEARER (KIP-768): the broker validates signed JWTs against a JWKS (sasl.oauthbearer.jwks.endpoint.url,
.expected.audience, .expected.issuer), on Runnel and on Apache Kafka with the same settings.

- The validation rules, through librdkafka's oauth_cb handing it tokens made in the test (JWKS in a file):
  expired, wrong audience, wrong issuer, another key's signature, an unknown kid and a missing sub are refused.
- Clients fetching their tokens as deployments do, from an OpenID Connect provider (oauth_helpers.TokenEndpoint,
  on 127.0.0.1, which serves the broker's JWKS as well) by the client_credentials grant, over SASL_PLAINTEXT and
  SASL_SSL: the Java client's own OIDC login (OAuthBearerLoginCallbackHandler), librdkafka's
  (sasl.oauthbearer.method=oidc, through confluent-kafka), kcat's (the same librdkafka code: skipped when kcat's
  librdkafka was built without libcurl, as Debian 12's 2.0.2 is) and kafka-python with a token provider. Each
  produces and consumes with a good token; a client whose tokens are for another audience is refused, and each
  client reports an authentication failure. kcat's unsigned development token (sasl.oauthbearer.config) is
  refused too.

Kafka tells a refused client only RFC 7628's {"status":"invalid_token"} and logs the reason itself, so on Kafka
the reason is looked for in its log; Runnel tells the client.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid

import pytest

import oauth_helpers as oh
import security_helpers as sh
from helpers import TARGET, create_topic, unique_topic, wait_until

APPS = ("java", "rdkafka", "kcat", "python")
OTHER_AUDIENCE = "another-service"
# what a client whose token is for OTHER_AUDIENCE is told, and (Kafka) what the broker logs
RUNNEL_AUDIENCE_REASON = "the token's audience is not one of sasl.oauthbearer.expected.audience"
KAFKA_CLIENT_TEXT = '{"status":"invalid_token"}'
KAFKA_AUDIENCE_LOG = f"Audience (aud) claim [{OTHER_AUDIENCE}] doesn't contain an acceptable identifier"
REFUSAL_TEXT = KAFKA_CLIENT_TEXT if TARGET == "kafka" else RUNNEL_AUDIENCE_REASON
PROTOCOLS = ["SASL_PLAINTEXT", "SASL_SSL"]


# ---------------------------------------------------------------- validation rules (tokens made in the test)


def test_oauthbearer_tokens_are_validated_against_the_jwks(start_broker, tmp_path):
    from confluent_kafka import KafkaError, Producer
    key, rogue = oh.make_rsa_key(tmp_path / "jwt.key"), oh.make_rsa_key(tmp_path / "rogue.key")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(oh.jwks(key, "k1")))
    # ADMIN first: Kafka's inter-broker listener and readiness probe need a listener without SASL.
    b = start_broker(sh.listener_sets({"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT"}, extra={
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
        "sasl.oauthbearer.expected.audience": "runnel",
        "sasl.oauthbearer.expected.issuer": "https://issuer.test"}))
    now = int(time.time())
    good = {"sub": "alice", "iat": now, "exp": now + 600, "aud": "runnel", "iss": "https://issuer.test"}

    def attempt(token: str) -> list:
        """[] once the record is delivered without errors, else the errors up to the first authentication
        failure (the broker refuses at once: no waiting out a timeout)."""
        errors, delivered = [], []
        p = Producer({"bootstrap.servers": b.address("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                      "sasl.mechanism": "OAUTHBEARER", "oauth_cb": lambda _cfg: (token, time.time() + 600),
                      "error_cb": errors.append})
        p.produce("oauth-topic", b"x", on_delivery=lambda err, _msg: delivered.append(err))

        def settled():
            p.poll(0.1)
            return delivered or any(e.code() == KafkaError._AUTHENTICATION for e in errors)

        wait_until(settled, timeout=20, what="a delivery or an authentication failure", interval=0)
        return [] if delivered == [None] and not errors else errors or delivered

    assert attempt(oh.jwt(key, "k1", good)) == []
    # Every bad token is refused as an authentication failure on both brokers. Runnel tells the client why;
    # Kafka answers each one with RFC 7628's {"status":"invalid_token"} and writes the reason (jose4j's
    # words) into its own log, so that is where its reason is looked for.
    cases = {
        "expired": (oh.jwt(key, "k1", {**good, "exp": now - 600}), "expired", "The JWT is no longer valid"),
        "wrong audience": (oh.jwt(key, "k1", {**good, "aud": "other"}), "audience",
                           "Audience (aud) claim [other] doesn't contain an acceptable identifier"),
        "wrong issuer": (oh.jwt(key, "k1", {**good, "iss": "https://evil.test"}), "issuer",
                         "Issuer (iss) claim value (https://evil.test) doesn't match"),
        "signed by another key": (oh.jwt(rogue, "k1", good), "signature", "JWT rejected due to invalid signature"),
        "unknown kid": (oh.jwt(rogue, "k2", good), "not in the JWKS",
                        'Unable to find a suitable verification key for JWS w/ header {"alg": "RS256", '
                        '"typ": "JWT", "kid": "k2"}'),
        "no subject": (oh.jwt(key, "k1", {k: v for k, v in good.items() if k != "sub"}), "sub",
                       "sub value must be non-null"),
    }
    for what, (token, reason, kafka_logs) in cases.items():
        logged = b.log_path.stat().st_size
        errors = attempt(token)
        assert errors, f"{what}: token accepted"
        refusals = [str(e) for e in errors if "_AUTHENTICATION" in str(e)]
        assert refusals, f"{what}: not refused as an authentication failure: {errors[:2]}"
        if TARGET == "kafka":
            assert any(KAFKA_CLIENT_TEXT in r for r in refusals), f"{what}: {refusals[:2]}"
            wait_until(lambda: kafka_logs in _log_since(b, logged), timeout=10,
                       what=f"{what}: Kafka's log since the attempt to say {kafka_logs!r}")
        else:
            assert any(reason in r for r in refusals), f"{what}: {refusals[:2]}"


# ---------------------------------------------------------------- clients with tokens from an OIDC provider


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """The token endpoint: per client library an app whose tokens are for the broker (APP-app) and one whose
    tokens are for another service (APP-elsewhere)."""
    key = oh.make_rsa_key(tmp_path_factory.mktemp("idp") / "idp.key")
    clients = {}
    for app in APPS:
        clients[f"{app}-app"] = oh.Registration(f"{app}-Secret-{uuid.uuid4().hex[:12]}")
        clients[f"{app}-elsewhere"] = oh.Registration(f"{app}-Other-{uuid.uuid4().hex[:12]}",
                                                      {"aud": OTHER_AUDIENCE})
    endpoint = oh.TokenEndpoint(key, clients).start()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def oauth_broker(tmp_path_factory, idp, certs):
    listeners = {"ADMIN": "PLAINTEXT", "SASL_PLAINTEXT": "SASL_PLAINTEXT", "SASL_SSL": "SASL_SSL"}
    yield from sh.module_broker(tmp_path_factory, oh.oauth_broker_sets(idp, listeners, certs), "oauth-broker")


def _endpoint(b, certs, protocol: str, client) -> sh.Endpoint:
    return sh.Endpoint(b.address(protocol), protocol, "OAUTHBEARER", ca=certs.ca if protocol == "SASL_SSL" else None,
                       oauth=client)


def _new_topic(b, prefix: str) -> str:
    topic = unique_topic(prefix)
    create_topic(b.address("ADMIN"), topic, 1)
    return topic


def _log_since(b, offset: int) -> str:
    with open(b.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _kafka_logged_the_audience(b, offset: int):
    """On Kafka, the reason of the refusal is in its log (the client is told only invalid_token)."""
    if TARGET == "kafka":
        wait_until(lambda: KAFKA_AUDIENCE_LOG in _log_since(b, offset), timeout=10,
                   what=f"Kafka's log to say {KAFKA_AUDIENCE_LOG!r}")


def _claims(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_the_token_endpoint_issues_tokens_only_to_registered_clients(idp):
    token, expires_in = idp.client("python-app").fetch()
    claims = _claims(token)
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("python-app", oh.AUDIENCE, idp.issuer), claims
    assert expires_in == 600 and claims["exp"] - claims["iat"] == 600
    assert _claims(idp.client("python-elsewhere").fetch()[0])["aud"] == OTHER_AUDIENCE
    assert oh.token_request_refused(idp.client("python-app", secret="wrong"))[0] == 401
    assert oh.token_request_refused(oh.OAuthClient(idp.token_url, "nobody", "x"))[0] == 401
    # credentials in the form instead of HTTP Basic (RFC 6749 §2.3.1 allows both)
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "python-app",
                                   "client_secret": idp.clients["python-app"].secret}).encode()
    with urllib.request.urlopen(urllib.request.Request(idp.token_url, data=form, method="POST"), timeout=10) as r:
        assert _claims(json.load(r)["access_token"])["sub"] == "python-app"
    assert idp.grants[-1].how == "form"


@pytest.mark.java
def test_java_client_logs_in_with_its_oidc_token(oauth_broker, idp, certs, tmp_path):
    cases = {p: (_endpoint(oauth_broker, certs, p, idp.client("java-app")), _new_topic(oauth_broker, f"java-{p}"), 5)
             for p in PROTOCOLS}
    cases["wrong-audience"] = (_endpoint(oauth_broker, certs, "SASL_PLAINTEXT", idp.client("java-elsewhere")),
                               _new_topic(oauth_broker, "java-aud"), 5, {"max.block.ms": "10000"})
    logged = oauth_broker.log_path.stat().st_size
    # the JVM property Kafka 4 clients need before they call any OAuth URL, as a deployment sets it
    out = sh.java_cases(tmp_path, cases, jvm=idp.java_jvm_options())
    assert {p: out[p] for p in PROTOCOLS} == {p: "OK" for p in PROTOCOLS}, out
    refusal = out["wrong-audience"]
    assert refusal.startswith("FAIL") and "SaslAuthenticationException" in refusal and REFUSAL_TEXT in refusal, \
        refusal
    assert idp.issued_to("java-app") and idp.issued_to("java-elsewhere"), idp.grants
    _kafka_logged_the_audience(oauth_broker, logged)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_librdkafka_oidc_round_trip(oauth_broker, idp, certs, protocol):
    sh.roundtrip_rdkafka(_endpoint(oauth_broker, certs, protocol, idp.client("rdkafka-app")),
                         _new_topic(oauth_broker, f"rd-{protocol}"))
    assert idp.issued_to("rdkafka-app"), idp.grants


def test_librdkafka_oidc_token_for_another_audience_is_refused(oauth_broker, idp, certs):
    logged = oauth_broker.log_path.stat().st_size
    ep = _endpoint(oauth_broker, certs, "SASL_PLAINTEXT", idp.client("rdkafka-elsewhere"))
    sh.rdkafka_refusal(ep, sh.rd_error("_AUTHENTICATION", "SASL authentication error", REFUSAL_TEXT),
                       what=f"_AUTHENTICATION with {REFUSAL_TEXT!r}")
    assert idp.issued_to("rdkafka-elsewhere"), idp.grants
    _kafka_logged_the_audience(oauth_broker, logged)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_kafka_python_round_trip(oauth_broker, idp, certs, protocol):
    sh.roundtrip_kafka_python(_endpoint(oauth_broker, certs, protocol, idp.client("python-app")),
                              _new_topic(oauth_broker, f"kp-{protocol}"))
    assert idp.issued_to("python-app"), idp.grants


def test_kafka_python_token_for_another_audience_is_refused(oauth_broker, idp, certs):
    logged = oauth_broker.log_path.stat().st_size
    ep = _endpoint(oauth_broker, certs, "SASL_PLAINTEXT", idp.client("python-elsewhere"))

    def refused(resp) -> bool:
        """RFC 7628's error challenge (SaslAuthenticate, error 0, while the connection stays open), or the
        final answer: error 58 and the broker's message."""
        if not type(resp).__name__.startswith("SaslAuthenticateResponse"):
            return False
        return (resp.error_code == 0 and resp.auth_bytes == KAFKA_CLIENT_TEXT.encode()) or \
            (sh.sasl_failed_response(resp) and REFUSAL_TEXT in (resp.error_message or ""))

    # kafka-python reports SaslAuthenticationFailedError with the broker's message only when it reads the
    # final answer before the broker's close: its transport (kafka/net/transport.py _read_from_sock) drops
    # bytes that arrive with the EOF and reports KafkaConnectionError('socket disconnected') instead, which
    # on loopback is most attempts on both brokers. The error challenge before it is the deterministic part.
    sh.kafka_python_refusal(ep, sh.kp_error("SaslAuthenticationFailedError", REFUSAL_TEXT),
                            what="the error challenge or SaslAuthenticationFailedError", want_response=refused)
    assert idp.issued_to("python-elsewhere"), idp.grants
    if TARGET == "kafka":
        _kafka_logged_the_audience(oauth_broker, logged)
    else:
        logs = f"reason=Authentication failed: {RUNNEL_AUDIENCE_REASON}"
        wait_until(lambda: logs in _log_since(oauth_broker, logged), timeout=10, what=f"Runnel's log to say {logs!r}")


def _kcat_features() -> list[str]:
    exe = shutil.which("kcat")
    assert exe, "kcat is not on PATH (scripts/test installs the Debian package kcat)"
    out = subprocess.run([exe, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10).stdout.decode()
    return out.split("builtin.features=", 1)[1].split(")", 1)[0].split(",") if "builtin.features=" in out else []


def _skip_without_kcat_oidc():
    if "oidc" not in _kcat_features():
        pytest.skip(f"kcat's librdkafka {'.'.join(map(str, sh.kcat_librdkafka_version()))} was built without "
                    f"libcurl (builtin.features {','.join(_kcat_features())}: no oidc), so it refuses "
                    f"sasl.oauthbearer.method=oidc (\"not supported in this build\"); and kcat has no token "
                    f"callback (short of a plugin.library.paths library): it cannot present a signed token "
                    f"(librdkafka's OIDC client is tested through confluent-kafka)")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_kcat_oidc_round_trip(oauth_broker, idp, certs, protocol):
    _skip_without_kcat_oidc()
    sh.roundtrip_kcat(_endpoint(oauth_broker, certs, protocol, idp.client("kcat-app")),
                      _new_topic(oauth_broker, f"kcat-{protocol}"))
    assert idp.issued_to("kcat-app"), idp.grants


def test_kcat_oidc_token_for_another_audience_is_refused(oauth_broker, idp, certs):
    _skip_without_kcat_oidc()
    ep = _endpoint(oauth_broker, certs, "SASL_PLAINTEXT", idp.client("kcat-elsewhere"))
    rc, err = sh.kcat_metadata_many({"elsewhere": ep})["elsewhere"]
    assert rc != 0 and "SASL authentication error" in err and REFUSAL_TEXT in err, f"kcat exit {rc}\n{err[-3000:]}"


def test_kcat_unsigned_development_token_is_refused(oauth_broker):
    # What this kcat can send: librdkafka's unsecured JWT (alg "none", no signature) from
    # sasl.oauthbearer.config, for development brokers only; a validating broker must not take it.
    ep = sh.Endpoint(oauth_broker.address("SASL_PLAINTEXT"), "SASL_PLAINTEXT", "OAUTHBEARER",
                     oauth=oh.UnsecuredJwt("kcat-app"))
    logged = oauth_broker.log_path.stat().st_size
    rc, err = sh.kcat_metadata_many({"unsigned": ep})["unsigned"]
    assert rc != 0 and "SASL authentication error" in err, f"kcat exit {rc}\n{err[-3000:]}"
    if TARGET == "kafka":  # librdkafka's unsecured token ends in "." (no signature): jose4j sees two parts
        assert KAFKA_CLIENT_TEXT in err, err[-3000:]
        wait_until(lambda: "Malformed JWT provided; expected three sections" in _log_since(oauth_broker, logged),
                   timeout=10, what="Kafka's log to call the token malformed")
    else:
        assert "the token's key (kid '') is not in the JWKS" in err, err[-3000:]
