"""Test certificates made with the openssl CLI: a CA, the broker's certificate for 127.0.0.1 / localhost, a
client certificate (CN=alice,O=runnel), an expired server certificate, and a second CA nobody trusts with its
own server and client certificates. Keys are unencrypted PKCS#8, as `ssl.keystore.type=PEM` takes them."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


# ---------------------------------------------------------------- certificates (openssl CLI)

@dataclass
class Certs:
    dir: Path
    ca: Path               # CA certificate (the truststore of clients and broker)
    server: Path           # keystore PEM: PKCS#8 key + chain (server cert, CA), SAN IP:127.0.0.1, DNS:localhost
    client: Path           # keystore PEM of CN=alice,O=runnel (clientAuth)
    client_key: Path       # alice's key alone
    client_cert: Path      # alice's certificate chain alone
    expired_server: Path   # keystore PEM: same CA, valid 2020-01-01 .. 2021-01-01
    rogue_ca: Path         # a second CA nobody trusts
    rogue_server: Path     # keystore PEM from the rogue CA (SAN as the server's)
    rogue_client: Path     # keystore PEM of CN=alice,O=runnel from the rogue CA
    rogue_client_key: Path
    rogue_client_cert: Path


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)} exited {r.returncode}\n{r.stderr.decode(errors='replace')}"


_CA_CNF = """[ca]
default_ca = ca_sect
[ca_sect]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = pol
unique_subject = no
email_in_dn = no
[pol]
organizationName = optional
commonName = supplied
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""


def _new_key(d: Path, name: str) -> Path:
    # genpkey writes unencrypted PKCS#8 ("BEGIN PRIVATE KEY")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", f"{name}.key", cwd=d)
    return d / f"{name}.key"


def _new_ca(d: Path, name: str, cn: str) -> Path:
    cad = d / name
    cad.mkdir()
    (cad / "ca.cnf").write_text(_CA_CNF)
    (cad / "index.txt").write_text("")
    (cad / "serial").write_text("1000\n")
    _new_key(cad, "ca")
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", f"/O=runnel/CN={cn}", "-days", "3650",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", "ca.pem", cwd=cad)
    shutil.copy(cad / "ca.pem", d / f"{name}.pem")
    return cad


def _issue(d: Path, cad: Path, name: str, subj: str, ext: str, dates=None) -> tuple[Path, Path, Path]:
    """A key and certificate signed by the CA in cad; returns (keystore PEM = key + cert + CA, key, chain)."""
    key = _new_key(d, name)
    _openssl("req", "-new", "-key", str(key), "-subj", subj, "-out", f"{name}.csr", cwd=d)
    validity = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "825"]
    _openssl("ca", "-batch", "-notext", "-config", str(cad / "ca.cnf"), "-cert", str(cad / "ca.pem"),
             "-keyfile", str(cad / "ca.key"), "-extensions", ext, *validity, "-in", str(d / f"{name}.csr"),
             "-out", str(d / f"{name}.crt"), cwd=cad)
    chain = d / f"{name}.chain.pem"
    chain.write_text((d / f"{name}.crt").read_text() + (cad / "ca.pem").read_text())
    keystore = d / f"{name}.pem"
    keystore.write_text(key.read_text() + chain.read_text())
    return keystore, key, chain


def make_certs(d: Path) -> Certs:
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    ca = _new_ca(d, "ca", "Runnel Test CA")
    rogue = _new_ca(d, "rogue-ca", "Rogue Test CA")
    server, _, _ = _issue(d, ca, "server", "/O=runnel/CN=localhost", "server_ext")
    # subject /O=runnel/CN=alice prints as "CN=alice,O=runnel" (RFC 2253 order, what Kafka maps)
    client, client_key, client_chain = _issue(d, ca, "client", "/O=runnel/CN=alice", "client_ext")
    expired, _, _ = _issue(d, ca, "expired-server", "/O=runnel/CN=localhost", "server_ext",
                           dates=("20200101000000Z", "20210101000000Z"))
    rogue_server, _, _ = _issue(d, rogue, "rogue-server", "/O=runnel/CN=localhost", "server_ext")
    rogue_client, rogue_key, rogue_chain = _issue(d, rogue, "rogue-client", "/O=runnel/CN=alice", "client_ext")
    for k in d.glob("*.key"):
        assert k.read_text().startswith("-----BEGIN PRIVATE KEY-----"), f"{k} is not unencrypted PKCS#8"
    return Certs(dir=d, ca=d / "ca.pem", server=server, client=client, client_key=client_key,
                 client_cert=client_chain, expired_server=expired, rogue_ca=d / "rogue-ca.pem",
                 rogue_server=rogue_server, rogue_client=rogue_client, rogue_client_key=rogue_key,
                 rogue_client_cert=rogue_chain)


def renewed_server(certs: Certs, name: str = "renewed-server") -> tuple[Path, Path]:
    """A new key and certificate for the server: same CA, subject and SANs (what a renewal gives; Kafka
    refuses a replacement keystore whose DN or SANs differ). Returns (keystore PEM, certificate chain)."""
    keystore, _, chain = _issue(certs.dir, certs.dir / "ca", name, "/O=runnel/CN=localhost", "server_ext")
    return keystore, chain
