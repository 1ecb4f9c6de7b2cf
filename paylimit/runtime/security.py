"""The secured local infra's secrets (`paylimit infra up --secure`): a CA, a broker certificate,
a client certificate and the user's passwords, made once with the system's `openssl`.

Under `PAYLIMIT_HOME/infra/secure`, readable by the owner only:
- `ca.crt` (and `ca.key`): the CA every client trusts (PAYLIMIT_KAFKA_SSL_CA_LOCATION);
- `broker.pem`: the broker's key and certificate (for 127.0.0.1 and localhost), Kafka's PEM keystore;
- `client.crt`, `client.key`: the client certificate the SASL_SSL listener requires (mutual TLS),
  its key encrypted with the key password;
- `credentials.json`: the SCRAM-SHA-512 user and password, the key password and Redis's password.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from paylimit.errors import InfraError

USERNAME = "paylimit"
MECHANISM = "SCRAM-SHA-512"
DAYS = "3650"  # a local CA: long enough that no run outlives it


@dataclass(frozen=True)
class Secrets:
    """Where the secured infra's files are, and its passwords (`credentials.json`)."""

    root: Path
    password: str
    key_password: str
    redis_password: str
    username: str = USERNAME

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    @property
    def broker_pem(self) -> Path:
        return self.root / "broker.pem"

    @property
    def client_cert(self) -> Path:
        return self.root / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.root / "client.key"

    def client_settings(self) -> dict[str, Any]:
        """The settings a Kafka client of the secured listener needs (bootstrap apart)."""
        return {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": MECHANISM,
                "kafka_sasl_username": self.username, "kafka_sasl_password": SecretStr(self.password),
                "kafka_ssl_ca_location": str(self.ca), "kafka_ssl_certificate_location": str(self.client_cert),
                "kafka_ssl_key_location": str(self.client_key), "kafka_ssl_key_password": SecretStr(self.key_password)}


def _credentials_file(root: Path) -> Path:
    return root / "credentials.json"


def load(root: Path) -> Secrets | None:
    """The secrets made earlier under `root`; None if there are none."""
    path = _credentials_file(root)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Secrets(root=root, **{k: v for k, v in data.items() if k != "root"})


def ensure(root: Path) -> Secrets:
    """The secrets under `root`, made on first use."""
    if made := load(root):
        return made
    if not shutil.which("openssl"):
        raise InfraError("openssl is needed for `paylimit infra up --secure`: apt-get install -y openssl")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    # hex: no character the SCRAM option of Kafka's storage tool or a URL would have to quote
    made = Secrets(root, password=secrets.token_hex(16), key_password=secrets.token_hex(16),
                   redis_password=secrets.token_hex(16))
    ca_key = root / "ca.key"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(made.ca),
             "-days", DAYS, "-subj", "/CN=paylimit local CA")
    broker_key = root / "broker.key"
    _signed(root, "broker", ca_key, made.ca, broker_key, "/CN=localhost",
            "subjectAltName=IP:127.0.0.1,DNS:localhost")
    made.broker_pem.write_text(broker_key.read_text() + (root / "broker.crt").read_text())
    plain_key = root / "client.plain.key"
    _signed(root, "client", ca_key, made.ca, plain_key, f"/CN={USERNAME}", "extendedKeyUsage=clientAuth")
    # the client key encrypted (PKCS#8), as the key password setting expects it
    _openssl("pkcs8", "-topk8", "-in", str(plain_key), "-out", str(made.client_key), "-v2", "aes-256-cbc",
             "-passout", "env:PAYLIMIT_KEY_PASSWORD", env={"PAYLIMIT_KEY_PASSWORD": made.key_password})
    plain_key.unlink()
    path = _credentials_file(root)
    path.write_text(json.dumps({k: v for k, v in asdict(made).items() if k != "root"}))
    for f in root.iterdir():
        f.chmod(0o600)
    return made


def _signed(root: Path, name: str, ca_key: Path, ca: Path, key: Path, subject: str, extension: str) -> None:
    csr = root / f"{name}.csr"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", subject)
    ext = root / f"{name}.ext"
    ext.write_text(extension + "\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(root / f"{name}.crt"), "-days", DAYS, "-extfile", str(ext))
    csr.unlink()
    ext.unlink()


def _openssl(*args: str, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True,
                          env={**os.environ, **env} if env else None)
    if proc.returncode != 0:
        raise InfraError(f"openssl {args[0]} failed: {' '.join(proc.stderr.split())[:300]}")
