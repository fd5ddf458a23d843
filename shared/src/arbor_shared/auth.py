"""OIDC bearer-token verification shared by every service's HTTP API.

Tokens are verified against the identity provider's JWKS with a fixed algorithm list,
issuer, audience and required expiry. The key type must match the algorithm, so an
HS256 token signed with an RSA public key (the algorithm-confusion attack) and
``alg=none`` tokens are refused before any signature check.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
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


class InvalidTokenError(Exception):
    """The bearer token is not acceptable; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token subject and its roles."""

    subject: str
    roles: frozenset[str]
    claims: dict[str, Any]

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


class TokenVerifier:
    """Verifies bearer tokens for one issuer and audience."""

    def __init__(self, *, issuer: str, audience: str, jwks_url: str) -> None:
        self._issuer = issuer
        self._audience = audience
        self._keys = JwksKeys(jwks_url)

    async def verify(self, token: str) -> Principal:
        """Return the principal of a valid token or raise InvalidTokenError."""
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
        return self._decode(token, key, algorithm)

    def _decode(self, token: str, key: jwt.PyJWK, algorithm: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list):
            raise InvalidTokenError("the roles claim must be a list")
        return Principal(str(claims["sub"]), frozenset(map(str, roles)), claims)


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
