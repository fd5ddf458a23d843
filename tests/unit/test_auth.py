"""Bearer-token verification refuses every classic forgery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from arbor_shared.auth import InvalidTokenError, TokenVerifier
from arbor_shared.local_issuer import AUDIENCE, ISSUER, LocalIssuer


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> LocalIssuer:
    return LocalIssuer(tmp_path_factory.mktemp("issuer"))


@pytest.fixture
def verifier(issuer: LocalIssuer) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url)


async def test_valid_token_yields_subject_and_roles(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    principal = await verifier.verify(issuer.mint("ops", roles=("operator",)))
    assert (principal.subject, principal.is_operator) == ("ops", True)


async def test_expired_token_is_refused(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.mint("cus-1", lifetime=timedelta(minutes=-5))
    with pytest.raises(InvalidTokenError, match="expired"):
        await verifier.verify(token)


async def test_token_for_another_audience_is_refused(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    with pytest.raises(InvalidTokenError, match=r"(?i)audience"):
        await verifier.verify(issuer.mint("cus-1", audience="someone-else"))


async def test_token_from_another_issuer_is_refused(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    with pytest.raises(InvalidTokenError, match="issuer"):
        await verifier.verify(issuer.mint("cus-1", issuer="https://evil.example"))


async def test_unsigned_token_is_refused(verifier: TokenVerifier) -> None:
    header = _b64({"alg": "none", "typ": "JWT"})
    claims = _b64({"sub": "cus-1", "aud": AUDIENCE, "iss": ISSUER, "exp": 9999999999})
    with pytest.raises(InvalidTokenError, match="algorithm"):
        await verifier.verify(f"{header}.{claims}.")


async def test_hs256_signed_with_the_public_key_is_refused(
    issuer: LocalIssuer, verifier: TokenVerifier, tmp_path: Path
) -> None:
    public_pem = _public_pem(issuer)
    header = {"alg": "HS256", "kid": issuer.kid}
    claims = {"sub": "cus-1", "aud": AUDIENCE, "iss": ISSUER, "exp": 9999999999}
    forged = _hs256(claims, header, public_pem)
    with pytest.raises(InvalidTokenError, match="algorithm"):
        await verifier.verify(forged)


async def test_unknown_key_id_is_refused(
    tmp_path: Path, verifier: TokenVerifier
) -> None:
    stranger = LocalIssuer(tmp_path / "stranger")
    with pytest.raises(InvalidTokenError, match="unknown signing key"):
        await verifier.verify(stranger.mint("cus-1"))


def _b64(value: Mapping[str, object]) -> str:
    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_pem(issuer: LocalIssuer) -> bytes:
    jwk = json.loads(issuer.jwks_path.read_text())["keys"][0]
    key = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
    return key.public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hs256(claims: dict[str, object], header: dict[str, str], secret: bytes) -> str:
    signing_input = f"{_b64(header)}.{_b64(claims)}".encode()
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return f"{signing_input.decode()}.{signature}"
