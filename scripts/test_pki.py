"""The test services' certificates and credentials (run by scripts/services.sh, once per state dir).

Writes to DIR (kept when already there, so the services keep their trust across restarts):

* ``ca.pem``: a test certificate authority (trustme);
* ``server.pem``/``server.key``: a TLS certificate for 127.0.0.1, ::1 and localhost, signed by it;
* ``token.pem``/``token.key``: the key the test token issuer signs registry tokens with (RSA), and
  its certificate, signed by the CA (the registry's ``rootcertbundle`` is the CA);
* ``htpasswd``: bcrypt entries for the registry's htpasswd authentication;
* ``credentials.env``: the users and their (random) passwords, as shell variables.

Run with a Python that has ``trustme`` and ``bcrypt``: ``python test_pki.py DIR``.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import bcrypt
import trustme


def write_pki(folder: Path) -> None:
    ca = trustme.CA(organization_name="pytest-mlops test CA")
    server = ca.issue_cert("127.0.0.1", "::1", "localhost")
    signer = ca.issue_cert("pytest-mlops-token-issuer", key_type=trustme.KeyType.RSA)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    server.private_key_pem.write_to_path(str(folder / "server.key"))
    with (folder / "server.pem").open("wb") as chain:
        for blob in server.cert_chain_pems:
            chain.write(blob.bytes())
    signer.private_key_pem.write_to_path(str(folder / "token.key"))
    signer.cert_chain_pems[0].write_to_path(str(folder / "token.pem"))


def write_credentials(folder: Path) -> None:
    users = {
        "MLOPS_TEST_REGISTRY_USER": "mlops",
        "MLOPS_TEST_REGISTRY_PASSWORD": secrets.token_urlsafe(18),
        "MLOPS_TEST_REGISTRY_READER": "reader",
        "MLOPS_TEST_REGISTRY_READER_PASSWORD": secrets.token_urlsafe(18),
        "MLOPS_TEST_MLFLOW_USER": "admin",
        "MLOPS_TEST_MLFLOW_PASSWORD": secrets.token_urlsafe(18),
    }
    entries = [
        (users["MLOPS_TEST_REGISTRY_USER"], users["MLOPS_TEST_REGISTRY_PASSWORD"]),
        (users["MLOPS_TEST_REGISTRY_READER"], users["MLOPS_TEST_REGISTRY_READER_PASSWORD"]),
    ]
    lines = [
        f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()}"
        for user, password in entries
    ]
    (folder / "htpasswd").write_text("\n".join(lines) + "\n")
    (folder / "credentials.env").write_text(
        "".join(f"{key}={value}\n" for key, value in users.items())
    )


def main() -> int:
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "token.pem").is_file():
        write_pki(folder)
    if not (folder / "credentials.env").is_file():
        write_credentials(folder)
    for secret in ("server.key", "token.key", "credentials.env"):
        (folder / secret).chmod(0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
