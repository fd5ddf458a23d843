"""Bearer-token verification refuses every classic forgery."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from arbor_shared.auth import (
    InvalidTokenError,
    Principal,
    TokenVerifier,
    VerifiedToken,
    VerifiedTokenCache,
)
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


async def test_cached_token_is_refused_once_expired(issuer: LocalIssuer) -> None:
    cache = VerifiedTokenCache()
    verifier = TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=issuer.jwks_url,
        leeway_seconds=0,
        cache=cache,
    )
    expires = math.ceil(time.time() + 0.5)
    token = issuer.mint("cus-1", extra={"exp": expires})
    await verifier.verify(token)
    assert len(cache) == 1
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(InvalidTokenError, match="expired"):
        await verifier.verify(token)


async def test_token_with_another_signature_is_not_served_from_cache(
    issuer: LocalIssuer, verifier: TokenVerifier
) -> None:
    genuine = issuer.mint("cus-1")
    other_signature = issuer.mint("cus-1").rpartition(".")[2]
    await verifier.verify(genuine)
    forged = f"{genuine.rpartition('.')[0]}.{other_signature}"
    with pytest.raises(InvalidTokenError, match=r"(?i)signature"):
        await verifier.verify(forged)


async def test_repeated_token_is_answered_from_cache(
    issuer: LocalIssuer,
) -> None:
    cache = VerifiedTokenCache()
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url, cache=cache
    )
    token = issuer.mint("cus-1", roles=("operator",))
    first, second = await verifier.verify(token), await verifier.verify(token)
    assert (second, len(cache)) == (first, 1)


async def test_refused_token_is_not_cached(issuer: LocalIssuer) -> None:
    cache = VerifiedTokenCache()
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=issuer.jwks_url, cache=cache
    )
    token = issuer.mint("cus-1", audience="someone-else")
    for _ in range(2):
        with pytest.raises(InvalidTokenError, match=r"(?i)audience"):
            await verifier.verify(token)
    assert len(cache) == 0


def test_cache_entry_ends_at_token_expiry() -> None:
    cache = VerifiedTokenCache()
    cache.put("a.b.c", _entry(expires_at=1_000.0))
    assert cache.get("a.b.c", now=999.9) is not None
    assert cache.get("a.b.c", now=1_000.0) is None
    assert len(cache) == 0


def test_cache_answers_only_for_the_whole_token() -> None:
    cache = VerifiedTokenCache()
    cache.put("a.b.c", _entry(expires_at=1_000.0))
    assert cache.get("a.b.d", now=0.0) is None
    assert cache.get("a.b", now=0.0) is None


def test_cache_drops_least_recently_used_beyond_its_size() -> None:
    cache = VerifiedTokenCache(max_size=2)
    for token in ("t1", "t2"):
        cache.put(token, _entry(expires_at=1_000.0))
    cache.get("t1", now=0.0)
    cache.put("t3", _entry(expires_at=1_000.0))
    kept = [t for t in ("t1", "t2", "t3") if cache.get(t, now=0.0) is not None]
    assert (kept, len(cache)) == (["t1", "t3"], 2)


def _entry(*, expires_at: float) -> VerifiedToken:
    key = jwt.PyJWK({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"})
    principal = Principal("cus-1", frozenset(), {})
    return VerifiedToken(principal, "kid-1", key, expires_at)


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
