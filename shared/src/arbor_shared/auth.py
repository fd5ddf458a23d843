"""OIDC bearer-token verification shared by every service's HTTP API.

Tokens are verified against the identity provider's JWKS with a fixed algorithm list,
issuer, audience and required expiry. The key type must match the algorithm, so an
HS256 token signed with an RSA public key (the algorithm-confusion attack) and
``alg=none`` tokens are refused before any signature check.

A token that passed every check is remembered, keyed by the whole token, until its
``exp``: the same bytes verify the same way again, so repeating the RSA check and the
claim checks on every request buys nothing. Failures are never remembered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
OPERATOR_ROLE = "operator"
_REFRESH_AFTER_SECONDS = 300
_MIN_REFETCH_SECONDS = 10
LEEWAY_SECONDS = 30
# About 2 KB per entry (token, claims, principal): 10,000 live tokens hold 20 MB.
MAX_CACHED_TOKENS = 10_000


class InvalidTokenError(Exception):
    """The bearer token is not acceptable; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token subject and its roles."""

    subject: str
    roles: frozenset[str]
    claims: Mapping[str, Any]

    @property
    def is_operator(self) -> bool:
        return OPERATOR_ROLE in self.roles


class JwksKeys:
    """The identity provider's signing keys, refetched when stale or a kid is new."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> jwt.PyJWK:
        now = time.monotonic()
        stale = now - self._fetched_at > _REFRESH_AFTER_SECONDS
        unknown = kid not in self._keys
        if stale or (unknown and now - self._fetched_at > _MIN_REFETCH_SECONDS):
            await self._refresh()
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidTokenError(f"unknown signing key {kid!r}") from None

    async def _refresh(self) -> None:
        async with self._lock:
            document = await _load_jwks(self._url)
            keys = jwt.PyJWKSet.from_dict(document).keys
            self._keys = {key.key_id: key for key in keys if key.key_id}
            self._fetched_at = time.monotonic()


async def _load_jwks(url: str) -> dict[str, Any]:
    if url.startswith("file://"):
        text = await asyncio.to_thread(Path(url.removeprefix("file://")).read_text)
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(url)
        response.raise_for_status()
        fetched: dict[str, Any] = response.json()
        return fetched


@dataclass(frozen=True)
class VerifiedToken:
    """What a successful verification found: who, with which key, valid until when."""

    principal: Principal
    kid: str
    key: jwt.PyJWK
    expires_at: float


class VerifiedTokenCache:
    """Verified tokens by their full text, least recently used dropped first."""

    def __init__(self, max_size: int = MAX_CACHED_TOKENS) -> None:
        self._max_size = max_size
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> VerifiedToken | None:
        """The entry for exactly ``token`` while ``now`` is before its ``exp``."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        # No leeway here: a cached verdict never outlives the token's own expiry;
        # past it the token goes through the full check again.
        if now >= entry.expires_at:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return entry

    def put(self, token: str, entry: VerifiedToken) -> None:
        self._entries[token] = entry
        self._entries.move_to_end(token)
        if len(self._entries) > self._max_size:
            self._entries.popitem(last=False)


class TokenVerifier:
    """Verifies bearer tokens for one issuer and audience."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        leeway_seconds: float = LEEWAY_SECONDS,
        cache: VerifiedTokenCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._keys = JwksKeys(jwks_url)
        # One cache per verifier: an entry only ever answers for this issuer and
        # audience, so a token accepted elsewhere is never accepted here by it.
        self._cache = cache if cache is not None else VerifiedTokenCache()
        self._clock = clock

    async def verify(self, token: str) -> Principal:
        """Return the principal of a valid token or raise InvalidTokenError."""
        cached = self._cache.get(token, self._clock())
        # The signing key is looked up again: a key the issuer withdrew or rotated
        # since the token was checked sends the token through the full check.
        if cached is not None and await self._keys.get(cached.kid) is cached.key:
            return cached.principal
        verified = await self._verify(token)
        self._cache.put(token, verified)
        return verified.principal

    async def _verify(self, token: str) -> VerifiedToken:
        header = _unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise InvalidTokenError(f"algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidTokenError("the token names no key id")
        key = await self._keys.get(kid)
        if key.algorithm_name != algorithm:
            raise InvalidTokenError(f"key {kid!r} is not a {algorithm} key")
        claims = self._decode(token, key, algorithm)
        return VerifiedToken(_principal(claims), kid, key, float(claims["exp"]))

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=self._leeway,
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        return claims


def _principal(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles", [])
    if not isinstance(roles, list):
        raise InvalidTokenError("the roles claim must be a list")
    subject, frozen = str(claims["sub"]), MappingProxyType(claims)
    return Principal(subject, frozenset(map(str, roles)), frozen)


def _unverified_header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"malformed token: {exc}") from exc


_bearer = HTTPBearer(auto_error=False)


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the verified caller, or 401."""
    if credentials is None:
        raise _unauthorized("a bearer token is required")
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return await verifier.verify(credentials.credentials)
    except InvalidTokenError as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc


async def operator(
    principal: Annotated[Principal, Depends(authenticated)],
) -> Principal:
    """FastAPI dependency: an authenticated caller with the operator role, or 403."""
    if not principal.is_operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the operator role is required")
    return principal


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


Caller = Annotated[Principal, Depends(authenticated)]
Operator = Annotated[Principal, Depends(operator)]
