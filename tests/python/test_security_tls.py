"""TLS end to end: produce+consume round trips over SSL listeners (server authentication only, client
certificates required, client certificates requested) with librdkafka (confluent-kafka), kafka-python, kcat
and the Java client; and the refusals each client reports: an expired server certificate, a server
certificate from a CA the client does not trust, no client certificate or one from an untrusted CA on the
mTLS listener, a plaintext client on a TLS port and a TLS client on a plaintext port.

One broker for the module, its listeners all configured with Kafka's keys:
  ADMIN      PLAINTEXT
  SSL        SSL, ssl.client.auth=none (the global default)
  MTLS       SSL, listener.name.mtls.ssl.client.auth=required
  REQUESTED  SSL, listener.name.requested.ssl.client.auth=requested
  EXPIRED    SSL, listener.name.expired.ssl.keystore.location = a certificate valid 2020-01-01..2021-01-01
  ROGUE      SSL, listener.name.rogue.ssl.keystore.location = a certificate from a CA nobody trusts
with ssl.keystore.type=PEM / ssl.keystore.location (key + chain) and ssl.truststore.type=PEM /
ssl.truststore.location (the CA) for all of them. Which principal a client certificate maps to (User:alice via
ssl.principal.mapping.rules) is shown in test_security_acls.py, which has an authorizer.

What each client reports on Apache Kafka 4.3.1 (RUNNEL_TEST_TARGET=kafka), which the assertions pin:
  expired server certificate
    librdkafka 2.16  error_cb _SSL "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed:
                     broker certificate could not be verified, ..."
    kafka-python     KafkaConnectionError "Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify
                     failed: certificate has expired"
    kcat (2.0.2)     "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed ..."
    Java             SslAuthenticationException <- SSLHandshakeException <- ValidatorException <-
                     CertPathValidatorException <- CertificateExpiredException "NotAfter: Fri Jan 01 00:00:00 UTC 2021"
  server certificate from an untrusted CA
    librdkafka       _SSL "... certificate verify failed: broker certificate could not be verified ..."
    kafka-python     KafkaConnectionError "... CERTIFICATE_VERIFY_FAILED ... self-signed certificate in certificate chain"
    kcat             "... certificate verify failed"
    Java             SslAuthenticationException <- SSLHandshakeException <- ValidatorException <-
                     SunCertPathBuilderException "unable to find valid certification path to requested target"
  no client certificate on the mTLS listener (TLS 1.3: the client sees the server's alert after its Finished)
    librdkafka       _TRANSPORT "Receive failed: ...ssl/tls alert bad certificate: SSL alert number 42 (... in state
                     APIVERSION_QUERY)"
    kafka-python     KafkaConnectionError "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate"
    kcat             "Receive failed: ...sslv3 alert bad certificate: SSL alert number 42"
    Java             SslAuthenticationException <- SSLHandshakeException "Received fatal alert: bad_certificate"
  client certificate from an untrusted CA on the mTLS listener
    librdkafka       _TRANSPORT "... SSL alert number 42" (librdkafka 2.16 does not send the certificate, see
                     PRESENTING_REFUSALS) / kcat "... alert certificate unknown: SSL alert number 46"; kafka-python
                     "[SSL: SSLV3_ALERT_CERTIFICATE_UNKNOWN]"; Java SslAuthenticationException <- SSLHandshakeException
                     "Received fatal alert: bad_certificate" (it does not send it either)
    (the alert number is the server's choice, so only "an alert" is asserted)
  client certificate from an untrusted CA on the `requested` listener: kafka-python and kcat as on the mTLS
    listener (alert 46, certificate unknown): a certificate that is presented is verified even when optional
  plaintext client on the TLS port (the broker closes the connection without a reply)
    librdkafka       log "Disconnected: connection closed by peer: receive 0 after POLLIN (after 3ms in state
                     APIVERSION_QUERY)", error_cb _ALL_BROKERS_DOWN "1/1 brokers are down"
    kafka-python     KafkaConnectionError "socket disconnected"
    kcat             "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol
                     configuration (connecting to a SSL listener?) or broker version is < 0.10 ..."
    Java             TimeoutException "Topic ... not present in metadata after 10000 ms." (it retries forever)
  TLS client on the plaintext port (the broker reads the ClientHello as an oversized frame and closes)
    librdkafka       _TRANSPORT "SSL handshake failed: Disconnected: SSL connection closed by peer: connecting to a
                     PLAINTEXT broker listener?"
    kafka-python     KafkaConnectionError "Handshake failed: [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in
                     violation of protocol"
    kcat             "SSL handshake failed: error:0A000126:SSL routines::unexpected eof while reading"
    Java             TimeoutException "Topic ... not present in metadata after 10000 ms."
"""

from __future__ import annotations

import re

import pytest

from helpers import create_topic, unique_topic
from security_helpers import (PRINCIPAL_RULES, Endpoint, java_cases, kafka_python_refusal, kcat_metadata_many,
                              kp_error, listener_sets, module_broker, rd_error, rdkafka_refusal, roundtrip_kafka_python,
                              roundtrip_kcat, roundtrip_rdkafka)

LISTENERS = {"ADMIN": "PLAINTEXT", "SSL": "SSL", "MTLS": "SSL", "REQUESTED": "SSL", "EXPIRED": "SSL", "ROGUE": "SSL"}
ROUNDTRIPS = ["ssl", "mtls", "requested-without-cert", "requested-with-cert"]
REFUSALS = ["expired-server-cert", "untrusted-server-ca", "mtls-without-cert", "mtls-untrusted-client-cert",
            "plaintext-to-tls-port", "tls-to-plaintext-port"]
# Only clients that present a certificate the server's CertificateRequest does not ask for (its
# certificate_authorities are the broker's truststore) can be refused for it on a `requested` listener:
# kafka-python and kcat do; librdkafka 2.16 logs "No matching issuer found in server trusted certificate
# authorities, not sending any client certificates" and, like the Java client's key manager, connects without
# one (on the `required` MTLS listener that is the no-certificate refusal).
PRESENTING_REFUSALS = REFUSALS + ["requested-untrusted-client-cert"]
ALERT = re.compile(r"SSL alert number \d+")
# the connection closed while the client waits for its ApiVersions answer (librdkafka 2.16: "Disconnected:
# connection closed by peer: receive 0 after POLLIN (after 3ms in state APIVERSION_QUERY)"; 2.0.2, kcat's:
# "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration")
APIVERSION_DISCONNECT = re.compile(r"Disconnected.*(while requesting ApiVersion|in state APIVERSION_QUERY)")


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory, certs):
    sets = listener_sets(LISTENERS, certs, extra={
        "listener.name.mtls.ssl.client.auth": "required",
        "listener.name.requested.ssl.client.auth": "requested",
        "listener.name.expired.ssl.keystore.location": str(certs.expired_server),
        "listener.name.rogue.ssl.keystore.location": str(certs.rogue_server),
        "ssl.principal.mapping.rules": PRINCIPAL_RULES,
    })
    yield from module_broker(tmp_path_factory, sets, "tls-broker")


def endpoint(b, certs, case: str) -> Endpoint:
    alice = dict(cert=certs.client_cert, key=certs.client_key, keystore=certs.client)
    rogue = dict(cert=certs.rogue_client_cert, key=certs.rogue_client_key, keystore=certs.rogue_client)
    return {
        "ssl": Endpoint(b.address("SSL"), "SSL", ca=certs.ca),
        "mtls": Endpoint(b.address("MTLS"), "SSL", ca=certs.ca, **alice),
        "requested-without-cert": Endpoint(b.address("REQUESTED"), "SSL", ca=certs.ca),
        "requested-with-cert": Endpoint(b.address("REQUESTED"), "SSL", ca=certs.ca, **alice),
        "expired-server-cert": Endpoint(b.address("EXPIRED"), "SSL", ca=certs.ca),
        "untrusted-server-ca": Endpoint(b.address("ROGUE"), "SSL", ca=certs.ca),
        "mtls-without-cert": Endpoint(b.address("MTLS"), "SSL", ca=certs.ca),
        "mtls-untrusted-client-cert": Endpoint(b.address("MTLS"), "SSL", ca=certs.ca, **rogue),
        "requested-untrusted-client-cert": Endpoint(b.address("REQUESTED"), "SSL", ca=certs.ca, **rogue),
        "plaintext-to-tls-port": Endpoint(b.address("SSL"), "PLAINTEXT"),
        "tls-to-plaintext-port": Endpoint(b.address("ADMIN"), "SSL", ca=certs.ca),
    }[case]


# ---------------------------------------------------------------- round trips

ROUNDTRIP = {"librdkafka": roundtrip_rdkafka, "kafka-python": roundtrip_kafka_python, "kcat": roundtrip_kcat}


@pytest.mark.parametrize("case", ROUNDTRIPS)
@pytest.mark.parametrize("client", list(ROUNDTRIP))
def test_tls_roundtrip(tls_broker, certs, client, case):
    t = unique_topic(f"tls-{client}-{case}")
    create_topic(tls_broker.bootstrap, t)
    ROUNDTRIP[client](endpoint(tls_broker, certs, case), t, 20)


@pytest.fixture(scope="module")
def java_outcomes(tls_broker, certs, tmp_path_factory):
    """Every Java case of this module in one JVM: {case: "OK" | "FAIL <exception chain>: <message>"}."""
    cases = {}
    for case in ROUNDTRIPS + REFUSALS:
        t = unique_topic(f"tls-java-{case}")
        create_topic(tls_broker.bootstrap, t)
        cases[case] = (endpoint(tls_broker, certs, case), t, 20,
                       {"max.block.ms": "10000"} if case in REFUSALS else {})
    return java_cases(tmp_path_factory.mktemp("tls-java"), cases)


@pytest.mark.java
@pytest.mark.parametrize("case", ROUNDTRIPS)
def test_tls_roundtrip_java(java_outcomes, case):
    assert java_outcomes[case] == "OK"


# ---------------------------------------------------------------- refusals

def _rd_alert(errors, _logs):
    return any(e.name() in ("_TRANSPORT", "_SSL") and ALERT.search(e.str()) for e in errors)


RD_WANT = {
    "expired-server-cert": rd_error("_SSL", "certificate verify failed"),
    "untrusted-server-ca": rd_error("_SSL", "certificate verify failed"),
    "mtls-without-cert": _rd_alert,
    "mtls-untrusted-client-cert": _rd_alert,
    "plaintext-to-tls-port": lambda errors, logs: any(APIVERSION_DISCONNECT.search(line) for line in logs)
                             and any(e.name() == "_ALL_BROKERS_DOWN" for e in errors),
    "tls-to-plaintext-port": rd_error("_TRANSPORT", "SSL handshake failed"),
}

KP_WANT = {
    "expired-server-cert": kp_error("KafkaConnectionError", "CERTIFICATE_VERIFY_FAILED", "certificate has expired"),
    "untrusted-server-ca": kp_error("KafkaConnectionError", "CERTIFICATE_VERIFY_FAILED"),
    "mtls-without-cert": lambda e: type(e).__name__ == "KafkaConnectionError" and "ALERT" in str(e),
    "mtls-untrusted-client-cert": lambda e: type(e).__name__ == "KafkaConnectionError" and "ALERT" in str(e),
    "requested-untrusted-client-cert": lambda e: type(e).__name__ == "KafkaConnectionError" and "ALERT" in str(e),
    "plaintext-to-tls-port": kp_error("KafkaConnectionError", "socket disconnected"),
    "tls-to-plaintext-port": kp_error("KafkaConnectionError", "Handshake failed"),
}

KCAT_WANT = {  # regular expressions over kcat's stderr
    "expired-server-cert": r"certificate verify failed",
    "untrusted-server-ca": r"certificate verify failed",
    "mtls-without-cert": ALERT.pattern,
    "mtls-untrusted-client-cert": ALERT.pattern,
    "requested-untrusted-client-cert": ALERT.pattern,
    "plaintext-to-tls-port": APIVERSION_DISCONNECT.pattern,
    "tls-to-plaintext-port": r"SSL handshake failed",
}

JAVA_WANT = {  # (the exception chain starts with, text the chain or message contains)
    "expired-server-cert": ("org.apache.kafka.common.errors.SslAuthenticationException",
                            "java.security.cert.CertificateExpiredException"),
    "untrusted-server-ca": ("org.apache.kafka.common.errors.SslAuthenticationException",
                            "unable to find valid certification path"),
    "mtls-without-cert": ("org.apache.kafka.common.errors.SslAuthenticationException", "Received fatal alert"),
    "mtls-untrusted-client-cert": ("org.apache.kafka.common.errors.SslAuthenticationException",
                                   "Received fatal alert"),
    "plaintext-to-tls-port": ("org.apache.kafka.common.errors.TimeoutException", "not present in metadata"),
    "tls-to-plaintext-port": ("org.apache.kafka.common.errors.TimeoutException", "not present in metadata"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_tls_refusal_librdkafka(tls_broker, certs, case):
    rdkafka_refusal(endpoint(tls_broker, certs, case), RD_WANT[case], what=case)


@pytest.mark.parametrize("case", PRESENTING_REFUSALS)
def test_tls_refusal_kafka_python(tls_broker, certs, case):
    kafka_python_refusal(endpoint(tls_broker, certs, case), KP_WANT[case], what=case)


@pytest.fixture(scope="module")
def kcat_outcomes(tls_broker, certs):
    return kcat_metadata_many({case: endpoint(tls_broker, certs, case) for case in PRESENTING_REFUSALS})


@pytest.mark.parametrize("case", PRESENTING_REFUSALS)
def test_tls_refusal_kcat(kcat_outcomes, case):
    rc, err = kcat_outcomes[case]
    assert rc != 0, f"kcat -L succeeded for {case}\n{err[-3000:]}"
    assert re.search(KCAT_WANT[case], err), f"kcat stderr for {case} lacks /{KCAT_WANT[case]}/:\n{err[-3000:]}"


@pytest.mark.java
@pytest.mark.parametrize("case", REFUSALS)
def test_tls_refusal_java(java_outcomes, case):
    head, text = JAVA_WANT[case]
    outcome = java_outcomes[case]
    assert outcome.startswith(f"FAIL {head}") and text in outcome, f"Java for {case}: {outcome}"
