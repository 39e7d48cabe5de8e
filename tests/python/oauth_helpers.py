"""OAUTHBEARER pieces of the security tests (test_security_oauth.py): RSA signing keys, their JWKS, signed JWTs
(the openssl CLI signs), and TokenEndpoint, a tiny OpenID Connect provider on 127.0.0.1 as deployments have one:
it answers the OAuth 2 client_credentials grant (RFC 6749 §4.4) at POST /token with a JWT signed by its key,
checking the client's id and secret (HTTP Basic, or client_id / client_secret in the form), and serves its
JWKS at GET /jwks for the broker. TokenEndpoint.client(id) gives an OAuthClient, the client side of one
registration: the settings of librdkafka's own OIDC client (confluent-kafka, kcat), of the Java client's
(OAuthBearerLoginCallbackHandler) and a kafka-python token provider, which security_helpers' rdkafka_conf,
java_props and kafka_python_conf use for an Endpoint whose oauth is set.

Broker settings (oauth_broker_sets) are KIP-768's, the same on Runnel and Kafka: sasl.enabled.mechanisms
OAUTHBEARER, sasl.oauthbearer.jwks.endpoint.url, .expected.audience, .expected.issuer; security_helpers adds
Kafka's validator callback when the target is Kafka, and scripts/kafka-ref lists the JWKS URL in its JVM's
org.apache.kafka.sasl.oauthbearer.allowed.urls.
"""

from __future__ import annotations

import base64
import hmac
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

AUDIENCE = "runnel"
KID = "k1"
JAVA_LOGIN_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler"
JAVA_LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
# the JVM property Kafka 4's clients (and brokers) check every OAuth URL against; without it they refuse all
JAVA_ALLOWED_URLS = "org.apache.kafka.sasl.oauthbearer.allowed.urls"


def b64u(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_rsa_key(path: Path) -> Path:
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
                    str(path)], check=True, capture_output=True)
    return path


def jwks(key: Path, kid: str) -> dict:
    """The JWKS with key's public half under kid."""
    mod = subprocess.run(["openssl", "rsa", "-in", str(key), "-noout", "-modulus"], capture_output=True,
                         text=True, check=True).stdout.strip().split("=", 1)[1]
    return {"keys": [{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(bytes.fromhex(mod)),
                      "e": b64u((65537).to_bytes(3, "big"))}]}


def jwt(key: Path, kid: str, claims: dict) -> str:
    """A JWS (RS256, compact form) of claims, signed by key, its header naming kid."""
    head = b64u(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)], input=f"{head}.{body}".encode(),
                         capture_output=True, check=True).stdout
    return f"{head}.{body}.{b64u(sig)}"


@dataclass
class Registration:
    """A client registered at the endpoint: its secret, and claims of its tokens that differ from the usual
    ones (a value None drops the claim)."""
    secret: str
    claims: dict = field(default_factory=dict)


@dataclass
class Grant:
    client_id: str | None
    how: str | None          # "basic" (Authorization header) or "form" (client_id / client_secret fields)
    status: int              # 200 issued, else the refusal's HTTP status
    error: str | None = None


class TokenEndpoint:
    """The OIDC provider: start() serves on 127.0.0.1:0 from a daemon thread; url is its base (and the tokens'
    issuer), token_url the client_credentials endpoint, jwks_url the key set. grants records every token
    request, issued or refused. Tokens: iss, sub (the client id: the broker's principal), aud AUDIENCE, iat,
    exp (lifetime seconds on), jti, then the registration's own claims."""

    def __init__(self, key: Path, clients: dict[str, Registration], kid: str = KID, lifetime: int = 600):
        self.key, self.kid, self.clients, self.lifetime = key, kid, clients, lifetime
        self.jwks_doc = jwks(key, kid)
        self.grants: list[Grant] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def start(self) -> "TokenEndpoint":
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):  # quiet: the grants list is the record
                pass

            def _json(self, status: int, doc: dict, extra: dict | None = None):
                body = json.dumps(doc).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", "Content-Length": str(len(body)),
                             "Cache-Control": "no-store", **(extra or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path == "/jwks":
                    self._json(200, endpoint.jwks_doc)
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
                if self.path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                status, doc = endpoint.grant(self.headers.get("Authorization"), form)
                self._json(status, doc, {"WWW-Authenticate": 'Basic realm="test"'} if status == 401 else None)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="token-endpoint", daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def grant(self, authorization: str | None, form: dict) -> tuple[int, dict]:
        """The token request's answer: (HTTP status, JSON body)."""
        client_id = secret = how = None
        if authorization and authorization[:6].lower() == "basic ":
            try:
                cid, _, sec = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
            except ValueError:
                return self._refuse(None, None, 401, "invalid_client", "malformed Basic credentials")
            # RFC 6749 §2.3.1 form-encodes both before Basic; clients that do not are the same for plain ids
            client_id, secret, how = urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(sec), "basic"
        elif "client_id" in form:
            client_id, secret, how = form["client_id"][0], form.get("client_secret", [""])[0], "form"
        if form.get("grant_type") != ["client_credentials"]:
            return self._refuse(client_id, how, 400, "unsupported_grant_type", f"grant_type {form.get('grant_type')}")
        reg = self.clients.get(client_id or "")
        if reg is None or not hmac.compare_digest(reg.secret.encode(), (secret or "").encode()):
            return self._refuse(client_id, how, 401, "invalid_client", "unknown client or wrong secret")
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": client_id, "aud": AUDIENCE, "iat": now, "exp": now + self.lifetime,
                  "jti": uuid.uuid4().hex, **reg.claims}
        token = jwt(self.key, self.kid, {k: v for k, v in claims.items() if v is not None})
        self.grants.append(Grant(client_id, how, 200))
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime}

    def _refuse(self, client_id, how, status, error, description) -> tuple[int, dict]:
        self.grants.append(Grant(client_id, how, status, error))
        return status, {"error": error, "error_description": description}

    def issued_to(self, client_id: str) -> list[Grant]:
        return [g for g in self.grants if g.client_id == client_id and g.status == 200]

    def client(self, client_id: str, secret: str | None = None) -> "OAuthClient":
        """The client side of a registration (secret: another one than registered, for refusals)."""
        return OAuthClient(self.token_url, client_id, self.clients[client_id].secret if secret is None else secret)

    def java_jvm_options(self) -> list[str]:
        return [f"-D{JAVA_ALLOWED_URLS}={self.token_url}"]


def oauth_broker_sets(endpoint: TokenEndpoint, listeners: dict[str, str], certs=None) -> dict:
    """--set options for a broker whose SASL listeners take OAUTHBEARER tokens from endpoint (KIP-768)."""
    import security_helpers as sh
    return sh.listener_sets(listeners, certs, extra={
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "sasl.oauthbearer.jwks.endpoint.url": endpoint.jwks_url,
        "sasl.oauthbearer.expected.audience": AUDIENCE,
        "sasl.oauthbearer.expected.issuer": endpoint.issuer})


@dataclass
class OAuthClient:
    """One OAuth client's credentials at a token endpoint, as each Kafka client is configured with them."""
    token_url: str
    client_id: str
    client_secret: str

    def rdkafka_conf(self) -> dict:
        """librdkafka's built-in OIDC client (needs a librdkafka built with libcurl: builtin.features oidc)."""
        return {"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
                "sasl.oauthbearer.client.id": self.client_id, "sasl.oauthbearer.client.secret": self.client_secret,
                "sasl.oauthbearer.token.endpoint.url": self.token_url}

    def java_props(self) -> dict:
        """kafka-clients' OIDC login (its JVM needs java_jvm_options(), and jackson-databind on the classpath)."""
        return {"sasl.mechanism": "OAUTHBEARER", "sasl.login.callback.handler.class": JAVA_LOGIN_HANDLER,
                "sasl.oauthbearer.token.endpoint.url": self.token_url,
                "sasl.jaas.config": f'{JAVA_LOGIN_MODULE} required clientId="{self.client_id}" '
                                    f'clientSecret="{self.client_secret}";'}

    def kafka_python_conf(self) -> dict:
        return {"sasl_mechanism": "OAUTHBEARER", "sasl_oauth_token_provider": kafka_python_token_provider(self)}

    def fetch(self, timeout=10.0) -> tuple[str, int]:
        """(access token, expires_in) by the client_credentials grant, credentials in HTTP Basic."""
        basic = base64.b64encode(f"{urllib.parse.quote_plus(self.client_id)}:"
                                 f"{urllib.parse.quote_plus(self.client_secret)}".encode()).decode()
        req = urllib.request.Request(self.token_url, data=b"grant_type=client_credentials", method="POST",
                                     headers={"Authorization": f"Basic {basic}", "Accept": "application/json",
                                              "Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            doc = json.load(resp)
        assert doc.get("token_type", "").lower() == "bearer", doc
        return doc["access_token"], int(doc["expires_in"])


@dataclass
class UnsecuredJwt:
    """librdkafka's development-only OAUTHBEARER source (all kcat's librdkafka 2.0.2 offers without OIDC): an
    unsigned JWT (alg "none") it makes itself from sasl.oauthbearer.config. A validating broker refuses it."""
    principal: str

    def rdkafka_conf(self) -> dict:
        return {"sasl.mechanism": "OAUTHBEARER", "enable.sasl.oauthbearer.unsecure.jwt": "true",
                "sasl.oauthbearer.config": f"principal={self.principal}"}


def kafka_python_token_provider(client: OAuthClient):
    """A kafka-python token provider fetching from client's endpoint, keeping a token until a minute before it
    expires (kafka-python asks for one at every connection)."""
    try:
        from kafka.net.sasl.oauth import AbstractTokenProvider  # kafka-python 3
    except ImportError:
        from kafka.sasl.oauth import AbstractTokenProvider  # kafka-python 2

    class ClientCredentialsTokenProvider(AbstractTokenProvider):
        def __init__(self):
            super().__init__()
            self._token, self._until = None, 0.0

        def token(self):
            if self._token is None or time.monotonic() >= self._until:
                self._token, expires_in = client.fetch()
                self._until = time.monotonic() + max(expires_in - 60, 0)
            return self._token

    return ClientCredentialsTokenProvider()


def token_request_refused(client: OAuthClient) -> tuple[int, dict]:
    """For checking the endpoint itself: (HTTP status, error body) of a token request that must be refused."""
    try:
        client.fetch()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")
    raise AssertionError(f"the token endpoint issued a token to {client.client_id} "
                         f"with secret {client.client_secret!r}")
