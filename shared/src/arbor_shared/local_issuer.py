"""A local stand-in for the identity provider, for ``make run`` and the tests.

It keeps an RSA key pair in a folder, publishes the public half as a JWKS file, and
mints tokens. Services verify these with the production verifier in :mod:`.auth`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://issuer.arbor.local"
AUDIENCE = "arbor"


class LocalIssuer:
    """Signs RS256 tokens with a key kept under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._private_path = folder / "issuer-key.pem"
        self.jwks_path = folder / "jwks.json"
        self._key = self._load_or_create()
        self.kid = _kid(self._key)

    @property
    def jwks_url(self) -> str:
        return f"file://{self.jwks_path.resolve()}"

    def mint(
        self,
        subject: str,
        *,
        roles: tuple[str, ...] = (),
        lifetime: timedelta = timedelta(hours=1),
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A signed token for ``subject``."""
        now = datetime.now(UTC)
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
            "roles": list(roles),
            **(extra or {}),
        }
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.kid}
        )

    def _load_or_create(self) -> rsa.RSAPrivateKey:
        if self._private_path.exists():
            key = serialization.load_pem_private_key(
                self._private_path.read_bytes(), password=None
            )
            if not isinstance(key, rsa.RSAPrivateKey):
                raise TypeError(f"{self._private_path} is not an RSA key")
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.folder.mkdir(parents=True, exist_ok=True)
            self._private_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            self._private_path.chmod(0o600)
        self._write_jwks(key)
        return key

    def _write_jwks(self, key: rsa.RSAPrivateKey) -> None:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        public |= {"kid": _kid(key), "alg": "RS256", "use": "sig"}
        self.jwks_path.write_text(json.dumps({"keys": [public]}, indent=2))


def _kid(key: rsa.RSAPrivateKey) -> str:
    numbers = key.public_key().public_numbers()
    return uuid.uuid5(uuid.NAMESPACE_OID, str(numbers.n)).hex[:16]


def main(argv: list[str] | None = None) -> None:
    """``python -m arbor_shared.local_issuer init DIR`` or ``mint DIR SUBJECT``."""
    parser = argparse.ArgumentParser(
        prog="arbor-token", description="The local identity provider for dev and tests"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create the key pair and jwks.json")
    init.add_argument("folder", type=Path)
    mint = commands.add_parser("mint", help="print a signed token for a subject")
    mint.add_argument("folder", type=Path)
    mint.add_argument("subject")
    mint.add_argument("--role", action="append", default=[], help="e.g. operator")
    mint.add_argument("--hours", type=float, default=12.0)
    arguments = parser.parse_args(argv)

    issuer = LocalIssuer(arguments.folder)
    if arguments.command == "init":
        sys.stdout.write(f"{issuer.jwks_url}\n")
        return
    token = issuer.mint(
        arguments.subject,
        roles=tuple(arguments.role),
        lifetime=timedelta(hours=arguments.hours),
    )
    sys.stdout.write(f"{token}\n")


if __name__ == "__main__":
    main()
